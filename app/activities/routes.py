"""Activities and the monthly rule (API.md 1.1): logging one, a team's
activities of a month, and who is short of the quota in a dispatcher's area."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status

from app.activities import quota
from app.activities import service as activities
from app.core.cursors import Cursor, PageLimit
from app.core.months import MonthQuery, chosen
from app.http.deps import CurrentUser, SessionDep, SettingsDep, StaffUser
from app.http.prefix import API_PREFIX
from app.models.activity import (
    ActivityCreate,
    ActivityList,
    ActivityPublic,
    MyMonth,
    QuotaReport,
)

router = APIRouter(prefix=API_PREFIX)


@router.post("/activities", status_code=status.HTTP_201_CREATED, tags=["activities"])
async def create_activity(
    body: ActivityCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> ActivityPublic:
    """Log a service activity of one's own with one of one's teams (403
    `not_a_member` otherwise). `at` may not lie in the future (422
    `activity_in_future`) nor before the current month, or the previous one
    in the first few days of a month (422 `activity_too_old`); a household
    named must be paired with the member (422 `household_not_paired`)."""
    return await activities.log_activity(session, settings, user, body)


@router.get("/teams/{team_id}/activities", tags=["activities"])
async def list_team_activities(
    team_id: Annotated[uuid.UUID, Path(description="the team's id")],
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    month: MonthQuery = None,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> ActivityList:
    """The team's activities of a month, newest first: for its members, the
    dispatchers of its area and admins (anyone else 403 `not_allowed`; an
    unknown team 404). The note of an activity that names a household is
    shown only to its author and to staff."""
    data, next_cursor = await activities.team_activities(
        session,
        settings,
        user,
        team_id,
        chosen(month, settings.zone),
        limit=limit,
        cursor=cursor,
    )
    return ActivityList(data=data, next_cursor=next_cursor)


@router.get("/me/activities", tags=["me"])
async def list_my_activities(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    month: MonthQuery = None,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> MyMonth:
    """The caller's own activities of a month (every team, newest first) and
    the month against the monthly rule: `counted` as the quota counts
    (disputed ones excepted), `required`, and `short_by` for a full-time
    member (0 for anyone else, whom the rule does not bind)."""
    return await activities.my_month(
        session, settings, user, chosen(month, settings.zone), limit=limit, cursor=cursor
    )


@router.get("/dispatch/quota", tags=["dispatch"])
async def list_quota_shortfalls(
    user: StaffUser, session: SessionDep, settings: SettingsDep, month: MonthQuery = None
) -> QuotaReport:
    """The full-time members of the dispatcher's community or street (an
    admin's: everywhere) with fewer activities in the month than the quota
    (`required`), fewest first. Disputed activities do not count; a member of
    several teams is listed once, with all their activities counted."""
    picked = chosen(month, settings.zone)
    area = None if user.is_admin or user.dispatcher_area is None else user.dispatcher_area.id
    return QuotaReport(
        month=str(picked),
        required=settings.monthly_activity_quota,
        data=await quota.shortfalls(session, settings, picked, area),
        next_cursor=None,
    )
