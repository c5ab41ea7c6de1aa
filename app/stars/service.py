"""The monthly stars of an area: the month's facts counted in one query, the
formula (`app.stars.formula`) applied, and a closed month frozen.

A month is closed STARS_FREEZE_AFTER_HOURS after its end in the district's
time zone (late logs and disputes of its last days still count until then).
The first read of a closed month computes its ranking and keeps it
(`star_ranking`); every later read answers what was kept, whatever was
written into that month since. Two first reads at once both compute; the
row's key lets one of them in (`ON CONFLICT DO NOTHING`) and both answer
the row that won. A month not yet closed is counted live on every read.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import tree
from app.core.config import Settings
from app.core.errors import NotFound, Unprocessable
from app.core.months import Month
from app.identity.auth import PersonPrincipal
from app.models.activity import ActivitySource
from app.models.call import TeamRef
from app.models.enums import sql_values
from app.models.star import Star, StarPart, StarRankings
from app.stars import formula
from app.stars.formula import MemberMonth, Score, Weights

_CALL = ActivitySource.call.value
_LOGGED = ActivitySource.logged.value

# Every member of a team whose grid lies in the area (a grid, grid branch,
# community or street), with their team there (the first by name when they
# are on several), and what they did in the month on the area's teams.
_FACTS = text(
    f"""
    WITH area_teams AS (
        SELECT t.id, t.name
        FROM ({tree.grids_within(":area")}) g JOIN team t ON t.grid_id = g.id
    ),
    members AS (
        SELECT DISTINCT ON (m.person_id) m.person_id, t.id AS team_id, t.name AS team_name
        FROM team_member m JOIN area_teams t ON t.id = m.team_id
        ORDER BY m.person_id, t.name, t.id
    )
    SELECT mb.person_id, p.display_name, mb.team_id, mb.team_name,
           count(*) AS activities,
           count(*) FILTER (WHERE a.source = '{_CALL}' AND NOT a.disputed) AS resolved_calls,
           count(*) FILTER (WHERE a.source = '{_CALL}' AND NOT a.disputed
                              AND a.kind IN {sql_values(formula.GOVERNANCE_KINDS)})
             AS governance_calls,
           coalesce(sum(r.stars - {formula.NEUTRAL_STARS}), 0) AS rating_points,
           count(*) FILTER (WHERE a.source = '{_CALL}' AND NOT a.disputed AND fast.fast)
             AS fast_responses,
           count(*) FILTER (WHERE a.source = '{_LOGGED}'
                              AND a.kind IN {sql_values(formula.SERVICE_KINDS)})
             AS service_activities,
           count(*) FILTER (WHERE a.source = '{_LOGGED}'
                              AND a.kind IN {sql_values(formula.GOVERNANCE_KINDS)})
             AS governance_activities,
           count(*) FILTER (WHERE a.source = '{_LOGGED}'
                              AND a.kind IN {sql_values(formula.EVENT_KINDS)}) AS events,
           count(*) FILTER (WHERE a.source = '{_CALL}' AND a.disputed) AS disputes
    FROM members mb
    JOIN person p ON p.id = mb.person_id AND p.disabled_at IS NULL
    JOIN activity a ON a.person_id = mb.person_id
         AND a.team_id IN (SELECT id FROM area_teams)
         AND a.at >= :start AND a.at < :end
    LEFT JOIN rating r ON r.call_id = a.call_id AND r.responder_id = a.person_id
    LEFT JOIN LATERAL (
        SELECT bool_or(o.closed_at - o.created_at <= CAST(:fast AS interval)) AS fast
        FROM offer o
        WHERE o.call_id = a.call_id AND o.accepted_by = a.person_id AND o.status = 'accepted'
    ) fast ON true
    GROUP BY mb.person_id, p.display_name, mb.team_id, mb.team_name
    """  # noqa: S608 - constants of our modules, values are bound
)

_AREA_EXISTS = text("SELECT EXISTS (SELECT 1 FROM area WHERE id = :id)")
_STORED = text("SELECT body, computed_at FROM star_ranking WHERE area_id = :area AND month = :m")
_FREEZE = text(
    """
    INSERT INTO star_ranking (area_id, month, body, closed_at)
    VALUES (:area, :m, CAST(:body AS jsonb), :closed)
    ON CONFLICT (area_id, month) DO NOTHING
    """
)


def closes_at(month: Month, settings: Settings) -> datetime:
    """When a month's stars freeze: its end in the district, plus the grace."""
    return month.end(settings.zone) + timedelta(hours=settings.stars_freeze_after_hours)


async def area_of(
    session: AsyncSession, person: PersonPrincipal, area_id: uuid.UUID | None
) -> uuid.UUID:
    """The area asked for (404 when there is none), else the dispatcher's own;
    anyone else must name one (422 `area_required`)."""
    if area_id is None:
        if person.dispatcher_area is None:
            raise Unprocessable(
                "Name the area to rank with `area_id` (a street, community, grid branch or grid).",
                code="area_required",
            )
        return person.dispatcher_area.id
    if not (await session.execute(_AREA_EXISTS, {"id": area_id})).scalar_one():
        raise NotFound("No such area.")
    return area_id


def _star(m: MemberMonth, score: Score) -> Star:
    return Star(
        person_id=m.person_id,
        display_name=m.display_name,
        team=TeamRef(id=m.team_id, name=m.team_name),
        score=score.total,
        breakdown={
            name: StarPart(value=part.value, weight=part.weight, points=part.points)
            for name, part in score.parts.items()
        },
    )


def _ranking(members: list[MemberMonth], scored: dict[uuid.UUID, Score], top: int) -> list[Star]:
    ranked = sorted(
        (m for m in members if scored[m.person_id].total > 0),
        key=lambda m: formula.rank_key(scored[m.person_id], m),
    )
    return [_star(m, scored[m.person_id]) for m in ranked[:top]]


async def compute(
    session: AsyncSession, settings: Settings, area_id: uuid.UUID, month: Month
) -> dict[str, Any]:
    """The area's two rankings for the month, as of now (JSON-ready)."""
    rows = await session.execute(
        _FACTS,
        {
            "area": area_id,
            "start": month.start(settings.zone),
            "end": month.end(settings.zone),
            "fast": timedelta(seconds=settings.star_fast_response_seconds),
        },
    )
    members = [MemberMonth(**row._asdict()) for row in rows]
    weights = Weights.of(settings)
    governance: dict[uuid.UUID, Score] = {}
    service: dict[uuid.UUID, Score] = {}
    for m in members:
        governance[m.person_id], service[m.person_id] = formula.scores(m, weights)
    top = settings.stars_top_n
    return {
        "month": str(month),
        "area_id": str(area_id),
        "governance": [s.model_dump(mode="json") for s in _ranking(members, governance, top)],
        "service": [s.model_dump(mode="json") for s in _ranking(members, service, top)],
    }


async def rankings(
    session: AsyncSession,
    settings: Settings,
    area_id: uuid.UUID,
    month: Month,
    now: datetime | None = None,
) -> StarRankings:
    """The stars of the area for the month: frozen once the month is closed,
    live before."""
    now = now or datetime.now(UTC)
    closed = closes_at(month, settings)
    if now < closed:
        body = await compute(session, settings, area_id, month)
        return StarRankings.model_validate({**body, "frozen": False, "computed_at": now})
    key = {"area": area_id, "m": str(month)}
    stored = (await session.execute(_STORED, key)).first()
    if stored is None:
        body = await compute(session, settings, area_id, month)
        await session.execute(_FREEZE, {**key, "body": _json(body), "closed": closed})
        stored = (await session.execute(_STORED, key)).one()
    return StarRankings.model_validate(
        {**stored.body, "frozen": True, "computed_at": stored.computed_at}
    )


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False)
