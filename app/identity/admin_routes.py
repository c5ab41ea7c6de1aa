from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status

from app.http.deps import AdminUser, OriginDep, SessionDep, SettingsDep
from app.http.prefix import API_PREFIX
from app.identity import admin
from app.models.auth import DispatcherCreate, DispatcherPublic, PersonDisabled

router = APIRouter(prefix=f"{API_PREFIX}/admin", tags=["admin"])


@router.post(
    "/dispatchers",
    status_code=status.HTTP_201_CREATED,
)
async def create_dispatcher(
    body: DispatcherCreate,
    user: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    origin: OriginDep,
) -> DispatcherPublic:
    """Make a phone the dispatcher of a community or of the street (admin
    only); a person who exists keeps their own name."""
    return await admin.create_dispatcher(session, settings, user, body, origin)


@router.post("/persons/{person_id}/disable")
async def disable_person(
    person_id: Annotated[uuid.UUID, Path(description="the person's id")],
    user: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    origin: OriginDep,
) -> PersonDisabled:
    """Disable a person (admin only): every session of theirs ends at once."""
    return await admin.disable_person(session, settings, user, person_id, origin)
