"""The monthly rule (BRIEF.md: a full-time grid party member takes part in at
least 3 service activities a month): the one place that says who is short.
GET /dispatch/quota lists them, the reminder job (app/activities/reminders.py)
reminds them; both ask `shortfalls`.

- Who: full-time members (`team_member.kind = 'full_time'`) of a team,
  disabled people excepted. A person full-time on several teams is one
  person with one quota; in an area's list they appear once, under the
  first (by name, then id) of their full-time teams in that area.
- What counts: every activity of the person whose `at` lies in the month
  (district time, `TIMEZONE`), whatever team it was with and whatever its
  source (logged, or a resolved call), except those `disputed`: a resident
  said the help behind it was not given, so it counts again only if the
  dispute is settled and the flag cleared.
- Short: fewer than `MONTHLY_ACTIVITY_QUOTA` of them.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import tree
from app.core.config import Settings
from app.core.months import Month
from app.models.activity import QuotaShortfall
from app.models.call import TeamRef
from app.models.enums import MemberKind

# An activity that counts toward the quota, over the activity `a`.
COUNTS = "NOT a.disputed"

# `:area` NULL: everywhere; else an area (a dispatcher's community or
# street, a report's area of any level), which holds the teams whose grid
# lies in it (`tree.grids_within`).
_SHORTFALLS = text(
    f"""
    WITH full_time AS (
        SELECT DISTINCT ON (m.person_id) m.person_id, t.id AS team_id, t.name AS team_name
        FROM team_member m
        JOIN team t ON t.id = m.team_id
        JOIN person p ON p.id = m.person_id
        JOIN ({tree.grids_within(":area", everything_when_null=True)}) g ON g.id = t.grid_id
        WHERE m.kind = '{MemberKind.full_time.value}' AND p.disabled_at IS NULL
        ORDER BY m.person_id, t.name, t.id
    )
    SELECT f.person_id, p.display_name, f.team_id, f.team_name,
           (SELECT count(*) FROM activity a
             WHERE a.person_id = f.person_id AND a.at >= :start AND a.at < :end
               AND {COUNTS}) AS activities
    FROM full_time f JOIN person p ON p.id = f.person_id
    """  # noqa: S608 - constant fragments, values are bound
)


async def shortfalls(
    session: AsyncSession, settings: Settings, month: Month, area_id: uuid.UUID | None
) -> list[QuotaShortfall]:
    """The full-time members of the area (None: everywhere) short of the
    quota in `month`, fewest activities first, then by name and id."""
    required = settings.monthly_activity_quota
    rows = (
        await session.execute(
            _SHORTFALLS,
            {
                "area": area_id,
                "start": month.start(settings.zone),
                "end": month.end(settings.zone),
            },
        )
    ).all()
    short = sorted(
        (row for row in rows if row.activities < required),
        key=lambda row: (row.activities, row.display_name, row.person_id),
    )
    return [
        QuotaShortfall(
            person_id=row.person_id,
            display_name=row.display_name,
            team=TeamRef(id=row.team_id, name=row.team_name),
            activities=row.activities,
            short_by=required - row.activities,
        )
        for row in short
    ]
