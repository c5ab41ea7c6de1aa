from __future__ import annotations

from fastapi import APIRouter

from app.http.deps import CurrentUser
from app.http.prefix import API_PREFIX
from app.models.auth import User

router = APIRouter(prefix=f"{API_PREFIX}/me", tags=["me"])


@router.get("")
async def get_me(user: CurrentUser) -> User:
    """Who the token belongs to: roles, teams, a dispatcher's area."""
    return user.to_user()
