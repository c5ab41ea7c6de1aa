"""The live map of an area (GET /dispatch/map): its open calls, its teams and
its on-duty members, as one GeoJSON FeatureCollection built by PostgreSQL
in one round trip (one subquery per kind of feature). The live stream keeps
it current: call events and `duty.updated` (app/events/duty.py).

Each rule it shows is asked where it lives, never written again here:
which calls the person sees as staff (`call_view.visible_sql`, the staff
rules), whether a team is active (`team_rules.status_sql`, with
`team_rules.counted` as the team lists count), whether dispatch could
offer a member a call (`availability.available_member`).

Who is on the map: every member on duty (`on_duty = true`, which always
has a position), busy or not, fresh position or not, each marked
`available` by the dispatch rule; a team's `on_duty_count` counts them as
the team lists do, its `available_count` those dispatch could offer to.
A responder on the way is on the map, as a dispatcher expects, but not
`available`. docs/dispatch-platform.md, "The live map".
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import tree
from app.calls import visibility as call_view
from app.core.config import Settings
from app.core.errors import Forbidden, NotFound
from app.duty import availability
from app.identity.auth import PersonPrincipal
from app.models.call import OPEN_CALL
from app.models.enums import sql_values
from app.models.live_map import MapArea
from app.teams import rules as team_rules

_OPEN = sql_values(OPEN_CALL)

# `inside`: the area drawn and every area under it (all of them when :area
# is null: an admin's whole district). Coordinates keep 7 decimals (1 cm).
MAP_SQL = text(
    f"""
    WITH inside AS ({tree.inside(":area", everything_when_null=True)}),
    calls AS (
        SELECT 1 AS part, extract(epoch FROM c.created_at) AS sort, c.id::text AS tie,
               json_build_object(
                   'type', 'Feature', 'id', c.id,
                   'geometry', ST_AsGeoJSON(c.location, 7)::json,
                   'properties', json_build_object(
                       'kind', 'call', 'id', c.id, 'status', c.status, 'category', c.category,
                       'escalation_level', c.escalation_level,
                       'disputed', c.disputed_at IS NOT NULL, 'accuracy_m', c.accuracy_m,
                       'grid_id', c.grid_id, 'team_id', c.team_id,
                       'responder_id', c.responder_id,
                       'created_at', c.created_at, 'updated_at', c.updated_at)) AS feature
        FROM call c
        WHERE c.status IN {_OPEN}
          AND c.grid_id IN (SELECT id FROM inside)
          AND {call_view.visible_sql(viewers={call_view.Viewer.staff})}
    ),
    teams AS (
        SELECT 2 AS part, 0::float8 AS sort, t.name || t.id::text AS tie,
               json_build_object(
                   'type', 'Feature', 'id', t.id,
                   'geometry', ST_AsGeoJSON(t.base, 7)::json,
                   'properties', json_build_object(
                       'kind', 'team', 'id', t.id, 'name', t.name, 'grid_id', t.grid_id,
                       'status', {team_rules.status_sql("t.id")},
                       'on_duty_count', n.on_duty, 'available_count', n.available)) AS feature
        FROM team t
        CROSS JOIN LATERAL (
            SELECT count(*) FILTER (WHERE d.on_duty = true) AS on_duty,
                   count(*) FILTER (WHERE {availability.available_member("d")}) AS available
            FROM team_member m LEFT JOIN duty d ON d.person_id = m.person_id
            WHERE m.team_id = t.id AND {team_rules.counted("m")}
        ) n
        WHERE t.grid_id IN (SELECT id FROM inside)
    ),
    members AS (
        SELECT 3 AS part, 0::float8 AS sort, p.display_name || p.id::text AS tie,
               json_build_object(
                   'type', 'Feature', 'id', p.id,
                   'geometry', ST_AsGeoJSON(d.location, 7)::json,
                   'properties', json_build_object(
                       'kind', 'member', 'id', p.id, 'display_name', p.display_name,
                       'team_ids', mine.team_ids, 'located_at', d.located_at,
                       'accuracy_m', d.accuracy_m,
                       'available', {availability.available_member("d")})) AS feature
        FROM duty d
        JOIN person p ON p.id = d.person_id
        CROSS JOIN LATERAL (
            SELECT array_agg(m.team_id ORDER BY m.team_id) AS team_ids
            FROM team_member m JOIN team t ON t.id = m.team_id
            WHERE m.person_id = d.person_id AND t.grid_id IN (SELECT id FROM inside)
        ) mine
        WHERE d.on_duty = true AND mine.team_ids IS NOT NULL
    )
    SELECT coalesce(json_agg(x.feature ORDER BY x.part, x.sort, x.tie), '[]'::json)::text
    FROM (SELECT * FROM calls UNION ALL SELECT * FROM teams UNION ALL SELECT * FROM members) x
    """  # noqa: S608 - constant fragments of the rules' modules, values are bound
)


async def area_for(
    session: AsyncSession, person: PersonPrincipal, area_id: uuid.UUID | None
) -> MapArea | None:
    """The area to draw: the one asked for (404 when there is none; a
    dispatcher only its own area or one inside it, else 403
    `outside_your_area`), else the dispatcher's own; None: an admin's whole
    district."""
    if area_id is None:
        if person.dispatcher_area is not None:
            area_id = person.dispatcher_area.id
        else:
            return None  # an admin (require_staff let no one else in)
    found = await tree.lineage(session, area_id)
    if found is None:
        raise NotFound("No such area.")
    if not person.is_admin and (
        person.dispatcher_area is None or not found.within(person.dispatcher_area.id)
    ):
        raise Forbidden("This area lies outside your area.", code="outside_your_area")
    return MapArea(id=found.id, name=found.name, level=found.level)


async def feature_collection(
    session: AsyncSession, settings: Settings, person: PersonPrincipal, area: MapArea | None
) -> str:
    """The map as GeoJSON text (RFC 7946): calls, then teams, then members."""
    generated_at = datetime.now(UTC)
    features: str = (
        await session.execute(
            MAP_SQL,
            {
                "area": area.id if area is not None else None,
                **call_view.NAMED.values(person),
                **team_rules.params(settings),
                **availability.params(settings),
            },
        )
    ).scalar_one()
    area_json = area.model_dump_json() if area is not None else "null"
    return (
        '{"type": "FeatureCollection", "area": '
        + area_json
        + ', "generated_at": "'
        + generated_at.isoformat()
        + '", "features": '
        + features
        + "}"
    )
