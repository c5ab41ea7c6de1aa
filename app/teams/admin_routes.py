from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from app.core.cursors import Cursor, PageLimit
from app.http.deps import OriginDep, SessionDep, SettingsDep, StaffUser
from app.http.prefix import API_PREFIX
from app.models.team import (
    MemberChanged,
    MemberCreate,
    MemberPublic,
    MemberUpdate,
    TeamCreate,
    TeamList,
    TeamPublic,
    TeamStatus,
)
from app.teams import admin, roster

TeamId = Annotated[uuid.UUID, Path(description="the team's id")]
MemberId = Annotated[uuid.UUID, Path(description="the member's person id")]

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


@router.get("/teams")
async def list_teams(
    user: StaffUser,
    session: SessionDep,
    settings: SettingsDep,
    status: Annotated[
        TeamStatus | None, Query(description="only teams with this status under the team rule")
    ] = None,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> TeamList:
    """The teams an admin (all) or a dispatcher (those of its area) acts on,
    newest first, each with its status under the team rule and the counts
    it reads (`?status=incomplete` for the teams that are offered nothing)."""
    data, next_cursor = await roster.list_teams(
        session, settings, user, status=status, limit=limit, cursor=cursor
    )
    return TeamList(data=data, next_cursor=next_cursor)


@router.put("/teams/{team_id}/members/{person_id}")
async def update_team_member(
    team_id: TeamId,
    person_id: MemberId,
    body: MemberUpdate,
    user: StaffUser,
    session: SessionDep,
    settings: SettingsDep,
    origin: OriginDep,
) -> MemberChanged:
    """Change a member's kind and/or roles (the roles given replace them
    all; what is left out is unchanged), with the team's status after it. A
    change that makes the team incomplete is allowed, and its dispatchers
    are told. A team outside a dispatcher's area, or a person not on the
    team → 404."""
    return await admin.update_member(session, settings, user, team_id, person_id, body, origin)


@router.delete("/teams/{team_id}/members/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_team_member(
    team_id: TeamId,
    person_id: MemberId,
    user: StaffUser,
    session: SessionDep,
    settings: SettingsDep,
    origin: OriginDep,
) -> Response:
    """Take a person off a team's roster (even its last full-time member:
    the team turns incomplete and its dispatchers are told). A person on no
    team any more goes off duty. A team outside a dispatcher's area, or a
    person not on the team → 404."""
    await admin.remove_member(session, settings, user, team_id, person_id, origin)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
