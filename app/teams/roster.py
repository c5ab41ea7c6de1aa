"""Reading teams as the organisation sees them: a team's profile (anyone
logged in) and the list of the teams of an area with their status (staff).

Neither shows a phone. Members who are disabled are left out of both, as
the team rule leaves them out of its counts (`app.teams.rules`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.activities.counts import team_activities_in_month
from app.areas import tree
from app.core import cursors
from app.core.config import Settings
from app.core.errors import NotFound
from app.core.months import Month
from app.identity.auth import PersonPrincipal
from app.models.area import AreaRef
from app.models.enums import MemberKind, MemberRole
from app.models.geo import Point
from app.models.team import RosterMember, TeamProfile, TeamStatus, TeamSummary
from app.teams import rules

_TEAM = text(
    f"""
    SELECT t.id, t.name, t.service_content, t.grid_id, g.name AS grid_name,
           ST_Y(t.base::geometry) AS lat, ST_X(t.base::geometry) AS lng,
           {rules.status_sql("t.id")} AS status
    FROM team t JOIN area g ON g.id = t.grid_id
    WHERE t.id = :team
    """  # noqa: S608 - constant fragments, values are bound
)
_MEMBERS = text(
    f"""
    SELECT p.id, p.display_name, m.kind, m.roles, coalesce(d.on_duty, false) AS on_duty
    FROM team_member m
    JOIN person p ON p.id = m.person_id
    LEFT JOIN duty d ON d.person_id = m.person_id
    WHERE m.team_id = :team AND {rules.counted("m")}
    ORDER BY {rules.full_time("m")} DESC, p.display_name, p.id
    """  # noqa: S608 - constant fragments, values are bound
)


async def profile(
    session: AsyncSession, settings: Settings, team_id: uuid.UUID, now: datetime | None = None
) -> TeamProfile:
    team = (await session.execute(_TEAM, {"team": team_id, **rules.params(settings)})).first()
    if team is None:
        raise NotFound("No such team.")
    members = [
        RosterMember(
            id=row.id,
            display_name=row.display_name,
            kind=MemberKind(row.kind),
            roles=[MemberRole(role) for role in row.roles],
            on_duty=row.on_duty,
        )
        for row in await session.execute(_MEMBERS, {"team": team_id})
    ]
    month = Month.of(now or datetime.now(UTC), settings.zone)
    return TeamProfile(
        id=team.id,
        name=team.name,
        grid=AreaRef(id=team.grid_id, name=team.grid_name),
        base=Point(lat=team.lat, lng=team.lng),
        service_content=team.service_content,
        status=TeamStatus(team.status),
        members=members,
        on_duty_count=sum(member.on_duty for member in members),
        activities_this_month=await team_activities_in_month(
            session, team_id, month, settings.zone
        ),
    )


# The teams of an area (all of them for an admin: `:area` null), newest
# first, with the counts the rule reads and its verdict on them.
_LIST = text(
    f"""
    WITH inside AS ({tree.inside(":area")}),
    page AS (
        SELECT t.id, t.name, t.grid_id, t.created_at, c.members, c.full_time, c.on_duty,
               CASE WHEN {rules.satisfied("c.members", "c.full_time")}
                    THEN '{TeamStatus.active.value}'
                    ELSE '{TeamStatus.incomplete.value}' END AS status
        FROM team t
        CROSS JOIN LATERAL (
            SELECT count(*) AS members,
                   count(*) FILTER (WHERE {rules.full_time("m")}) AS full_time,
                   count(*) FILTER (WHERE d.on_duty = true) AS on_duty
            FROM team_member m LEFT JOIN duty d ON d.person_id = m.person_id
            WHERE m.team_id = t.id AND {rules.counted("m")}
        ) c
        WHERE (CAST(:area AS uuid) IS NULL OR t.grid_id IN (SELECT id FROM inside))
          AND (CAST(:after_at AS timestamptz) IS NULL
               OR (t.created_at, t.id)
                  < (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
    )
    SELECT page.*, g.name AS grid_name
    FROM page JOIN area g ON g.id = page.grid_id
    WHERE CAST(:status AS varchar) IS NULL OR page.status = CAST(:status AS varchar)
    ORDER BY page.created_at DESC, page.id DESC
    LIMIT :limit
    """  # noqa: S608 - constant fragments, values are bound
)


async def list_teams(
    session: AsyncSession,
    settings: Settings,
    actor: PersonPrincipal,
    *,
    status: TeamStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[TeamSummary], str | None]:
    """The teams an admin (all) or a dispatcher (those of its area) acts on."""
    area = None if actor.is_admin or actor.dispatcher_area is None else actor.dispatcher_area.id
    rows = (
        await session.execute(
            _LIST,
            {
                "area": area,
                "status": status.value if status is not None else None,
                **cursors.bounds(cursor),
                **rules.params(settings),
                "limit": limit + 1,
            },
        )
    ).all()
    data = [
        TeamSummary(
            id=row.id,
            name=row.name,
            grid=AreaRef(id=row.grid_id, name=row.grid_name),
            status=TeamStatus(row.status),
            members=row.members,
            full_time_members=row.full_time,
            on_duty_count=row.on_duty,
            created_at=row.created_at,
        )
        for row in rows[:limit]
    ]
    return data, cursors.next_cursor(rows, limit)
