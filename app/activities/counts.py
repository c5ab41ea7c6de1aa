"""Counting activities by month: what a team profile shows, and what the
monthly rule and the stars may count with. A month is the half-open
interval of `app.core.months.Month` in the district's time zone."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.months import Month

# On `ix_activity_team_id_at`. Every activity counts, disputed or not: the
# count says what the team did, the stars weigh disputes.
_TEAM_IN_MONTH = text(
    """
    SELECT count(*) FROM activity
    WHERE team_id = :team AND at >= :start AND at < :end
    """
)


async def team_activities_in_month(
    session: AsyncSession, team_id: uuid.UUID, month: Month, zone: ZoneInfo
) -> int:
    """The activities of a team (logged, and written for resolved calls)
    that took place in `month`."""
    return int(
        (
            await session.execute(
                _TEAM_IN_MONTH,
                {"team": team_id, "start": month.start(zone), "end": month.end(zone)},
            )
        ).scalar_one()
    )
