"""The feed of an area's public screen, computed from the database: counts
and medians of today's calls, the teams with their on-duty counts, the
latest calls by category and grid only, and the month's stars.

Anonymised by construction: the queries select no person id, phone,
address, note or point, so nothing that names or locates a resident can
reach a screen (docs/privacy.md, "Public screens"). The finest place shown
is a grid's name; a recent call's time is rounded down to the quarter hour
and only calls older than SCREEN_DELAY_SECONDS are listed, so a screen
cannot be watched to tell who just pressed. The members named are the
month's stars, by display name and team name (public recognition, as
`GET /stars` is to anyone logged in), without their ids.

An area is any level of the tree (a street, community, grid branch or
grid): what happens in its grids. The day is today in `TIMEZONE`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import tree
from app.core.config import Settings
from app.core.months import Month
from app.kpis import service as kpis
from app.models.area import AreaRef
from app.models.call import CallCategory, CallStatus
from app.models.enums import AreaLevel
from app.models.kpi import KpiBucket
from app.models.screen_feed import (
    ScreenArea,
    ScreenCall,
    ScreenFeed,
    ScreenStar,
    ScreenStars,
    ScreenTeam,
    ScreenToday,
)
from app.models.star import Star
from app.stars import service as stars
from app.teams import rules

RECENT_CALLS = 20
TEAMS_SHOWN = 100
# A recent call's time on a screen, rounded down to this.
AT_GRAIN = timedelta(minutes=15)

# The grids of the area (itself, when it is one) and the communities they
# lie in: calls are found through their (community_id, created_at) index.
_SCOPE = f"""
    WITH inside AS ({tree.inside(":area")}),
    grids AS (SELECT id FROM inside WHERE level = '{AreaLevel.grid.value}'),
    communities AS (
        SELECT DISTINCT b.parent_id AS id
        FROM grids JOIN area g ON g.id = grids.id JOIN area b ON b.id = g.parent_id
    )
"""  # noqa: S608 - a constant

_AREA = text("SELECT id, name, level FROM area WHERE id = :area")

# On duty as a team's roster counts it (`app.teams.roster`): members who
# count under the team rule (not disabled) with their duty switched on.
_TEAMS = text(
    f"""
    {_SCOPE}
    SELECT t.name, t.service_content, n.on_duty
    FROM team t
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE d.on_duty = true) AS on_duty
        FROM team_member m LEFT JOIN duty d ON d.person_id = m.person_id
        WHERE m.team_id = t.id AND {rules.counted("m")}
    ) n
    WHERE t.grid_id IN (SELECT id FROM grids)
    ORDER BY n.on_duty DESC, t.name, t.id
    LIMIT :limit
    """  # noqa: S608 - constant fragments, values are bound
)
_ON_DUTY = text(
    f"""
    {_SCOPE}
    SELECT count(DISTINCT m.person_id)
    FROM team t
    JOIN team_member m ON m.team_id = t.id
    JOIN duty d ON d.person_id = m.person_id
    WHERE t.grid_id IN (SELECT id FROM grids) AND d.on_duty = true AND {rules.counted("m")}
    """  # noqa: S608 - constant fragments, values are bound
)
# The newest calls of each community, read backwards along its index and
# stopped at the limit, then the newest of those: a street's screen reads
# a few rows per community, not every call of the street and a sort
# (tests/screen_feed/test_recent_calls.py reads the plan).
_RECENT = text(
    f"""
    {_SCOPE}
    SELECT c.category, c.status, c.grid_id, g.name AS grid_name,
           date_bin(CAST(:grain AS interval), c.created_at, TIMESTAMPTZ '2000-01-01 00:00Z')
             AS at
    FROM communities k
    CROSS JOIN LATERAL (
        SELECT c.category, c.status, c.grid_id, c.created_at, c.id FROM call c
        WHERE c.community_id = k.id AND c.grid_id IN (SELECT id FROM grids)
          AND c.created_at <= CAST(:until AS timestamptz)
        ORDER BY c.created_at DESC, c.id DESC
        LIMIT :limit
    ) c
    JOIN area g ON g.id = c.grid_id
    ORDER BY c.created_at DESC, c.id DESC
    LIMIT :limit
    """  # noqa: S608 - constant fragments, values are bound
)


def _screen_star(star: Star) -> ScreenStar:
    return ScreenStar(display_name=star.display_name, team=star.team.name, score=star.score)


async def compute(
    session: AsyncSession, settings: Settings, area_id: uuid.UUID, now: datetime
) -> ScreenFeed | None:
    """The area's feed as of `now`; None when there is no such area."""
    area = (await session.execute(_AREA, {"area": area_id})).first()
    if area is None:
        return None
    scope = {"area": area_id}
    # Today's figures are the KPIs' (one definition of each, docs/kpis.md).
    day = now.astimezone(settings.zone).date()
    (today,) = await kpis.rows(session, settings, area_id, day, day, KpiBucket.day)
    teams = await session.execute(_TEAMS, {**scope, "limit": TEAMS_SHOWN})
    on_duty = (await session.execute(_ON_DUTY, scope)).scalar_one()
    recent = await session.execute(
        _RECENT,
        {
            **scope,
            "until": now - timedelta(seconds=settings.screen_delay_seconds),
            "grain": AT_GRAIN,
            "limit": RECENT_CALLS,
        },
    )
    month = Month.of(now, settings.zone)
    ranking = await stars.rankings(session, settings, area_id, month, now)
    return ScreenFeed(
        area=ScreenArea(id=area.id, name=area.name, level=AreaLevel(area.level)),
        today=ScreenToday(
            calls=today.calls,
            resolved=today.resolved,
            accept_p50_s=today.accept_p50_s,
            satisfaction_avg=today.satisfaction_avg,
        ),
        on_duty_members=on_duty,
        teams=[
            ScreenTeam(name=t.name, service_content=t.service_content, on_duty_count=t.on_duty)
            for t in teams
        ],
        recent=[
            ScreenCall(
                category=CallCategory(c.category),
                grid=AreaRef(id=c.grid_id, name=c.grid_name),
                status=CallStatus(c.status),
                at=c.at,
            )
            for c in recent
        ],
        stars=ScreenStars(
            month=ranking.month,
            governance=[_screen_star(s) for s in ranking.governance],
            service=[_screen_star(s) for s in ranking.service],
        ),
    )
