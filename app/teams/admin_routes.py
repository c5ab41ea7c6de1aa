from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status

from app.http.deps import OriginDep, SessionDep, SettingsDep, StaffUser
from app.http.prefix import API_PREFIX
from app.models.team import MemberCreate, MemberPublic, TeamCreate, TeamPublic
from app.teams import admin

router = APIRouter(prefix=f"{API_PREFIX}/admin", tags=["admin"])


@router.post("/teams", status_code=status.HTTP_201_CREATED)
async def create_team(
    body: TeamCreate, user: StaffUser, session: SessionDep, origin: OriginDep
) -> TeamPublic:
    """Create a team; its grid is the one that contains its base. A dispatcher
    may only place it within its own area (403 `outside_your_area`)."""
    return await admin.create_team(session, user, body, origin)


@router.post(
    "/teams/{team_id}/members",
    status_code=status.HTTP_201_CREATED,
)
async def add_team_member(
    team_id: Annotated[uuid.UUID, Path(description="the team's id")],
    body: MemberCreate,
    user: StaffUser,
    session: SessionDep,
    settings: SettingsDep,
    origin: OriginDep,
) -> MemberPublic:
    """Put a phone on a team's roster; it then logs in by OTP as a volunteer.
    A person who exists keeps their own name. A team outside a dispatcher's
    area → 404; a phone whose person belongs to something outside it → 403
    `cannot_enrol_phone`, whoever they are."""
    return await admin.add_member(session, settings, user, team_id, body, origin)
