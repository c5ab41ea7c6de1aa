from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.duty import service as duty
from app.http.deps import CurrentUser, SessionDep, VolunteerUser
from app.http.prefix import API_PREFIX
from app.models.geo import Point
from app.models.team import DutyState, DutyUpdate

router = APIRouter(prefix=f"{API_PREFIX}/me", tags=["me"])


@router.put("/duty")
async def update_duty(body: DutyUpdate, user: VolunteerUser, session: SessionDep) -> DutyState:
    """Go on duty (with a location) or off duty (the position is dropped).
    Not a team member → 403 `not_a_volunteer`."""
    return await duty.set_duty(session, user, body)


@router.put(
    "/location",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def update_location(body: Point, user: CurrentUser, session: SessionDep) -> Response:
    """Report the latest position while on duty; not on duty (anyone who is
    not a team member on duty) → 409 `not_on_duty`."""
    await duty.set_location(session, user, body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
