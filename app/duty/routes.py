from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.duty import service as me
from app.http.deps import CurrentUser, SessionDep, VolunteerUser
from app.http.prefix import API_PREFIX
from app.http.problems import problem_responses
from app.models.auth import DeviceRegistration, User
from app.models.geo import Point
from app.models.team import DutyState, DutyUpdate

router = APIRouter(prefix=f"{API_PREFIX}/me", tags=["me"])

DeviceToken = Annotated[
    str,
    Path(
        min_length=8,
        max_length=4096,
        pattern=r"^[A-Za-z0-9:_\-.]+$",
        description="the push token the phone got from FCM (never logged)",
    ),
]


@router.get("", responses=problem_responses(401, 403))
async def get_me(user: CurrentUser) -> User:
    """Who the token belongs to: roles, teams, a dispatcher's area."""
    return user.to_user()


@router.put(
    "/devices/{token}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 422),
)
async def register_device(
    token: DeviceToken, body: DeviceRegistration, user: CurrentUser, session: SessionDep
) -> Response:
    """Register this phone for push notifications; doing it again is harmless.
    With `locale`, the person's alerts are written in that language."""
    await me.register_device(session, user, token, body.platform, body.locale)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/devices/{token}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 422),
)
async def delete_device(token: DeviceToken, user: CurrentUser, session: SessionDep) -> Response:
    """Stop pushing to this phone."""
    await me.remove_device(session, user, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/duty", responses=problem_responses(401, 403, 422))
async def update_duty(body: DutyUpdate, user: VolunteerUser, session: SessionDep) -> DutyState:
    """Go on duty (with a location) or off duty (the position is dropped).
    Not a team member → 403 `not_a_volunteer`."""
    return await me.set_duty(session, user, body)


@router.put(
    "/location",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 409, 422),
)
async def update_location(body: Point, user: CurrentUser, session: SessionDep) -> Response:
    """Report the latest position while on duty; not on duty (anyone who is
    not a team member on duty) → 409 `not_on_duty`."""
    await me.set_location(session, user, body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
