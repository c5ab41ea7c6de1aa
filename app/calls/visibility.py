"""Who may see a call, and what each of them sees.

One full snapshot of a call is built (what the caller sees, responder
position included while the responder is on the way or on site); every
reader gets it through `redact`, by the part they play:

| viewer | location | note | responder | responder's position |
|---|---|---|---|---|
| caller (the resident) | exact | yes | yes | while en route / on site |
| responder | exact | yes | yes | no |
| staff (dispatcher of the area, admin) | exact | yes | yes | no |
| team (offered, not responding) | rounded to ~100 m | no | no | no |

Anyone else is told the call does not exist (404).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.phones import mask_phone
from app.identity.auth import PersonPrincipal
from app.models.call import CallStatus

# About 100 m: three decimals of a degree of latitude are 111 m.
ROUND_DECIMALS = 3
ROUNDED_ACCURACY_M = 100.0
SHOWS_RESPONDER_POSITION = (CallStatus.en_route.value, CallStatus.on_site.value)


class Viewer(StrEnum):
    caller = "caller"
    responder = "responder"
    staff = "staff"
    team = "team"


# Which events each part in a call receives (the event log, the live stream).
EVENT_TYPES_FOR: dict[Viewer, frozenset[str]] = {
    Viewer.caller: frozenset({"call.updated", "responder.location"}),
    Viewer.responder: frozenset({"call.updated"}),
    Viewer.staff: frozenset({"call.updated", "offer.created", "offer.closed"}),
    Viewer.team: frozenset({"call.updated", "offer.created", "offer.closed"}),
}


@dataclass(frozen=True)
class CallFacts:
    """What visibility is decided on."""

    id: uuid.UUID
    resident_id: uuid.UUID
    responder_id: uuid.UUID | None
    community_id: uuid.UUID
    street_id: uuid.UUID
    offered_team_ids: frozenset[uuid.UUID]


def viewer_of(person: PersonPrincipal, call: CallFacts) -> Viewer | None:
    if call.resident_id == person.person_id:
        return Viewer.caller
    if call.responder_id is not None and call.responder_id == person.person_id:
        return Viewer.responder
    if person.is_admin:
        return Viewer.staff
    area = person.dispatcher_area
    if area is not None and area.id in (call.community_id, call.street_id):
        return Viewer.staff
    if person.team_ids & call.offered_team_ids:
        return Viewer.team
    return None


_FACTS = text(
    """
    SELECT c.id, c.resident_id, c.responder_id, c.community_id, c.street_id,
           coalesce(array_agg(DISTINCT o.team_id) FILTER (WHERE o.team_id IS NOT NULL), '{}')
             AS offered_team_ids
    FROM call c LEFT JOIN offer o ON o.call_id = c.id
    WHERE c.id = :id
    GROUP BY c.id
    """
)


async def facts(session: AsyncSession, call_id: uuid.UUID) -> CallFacts | None:
    row = (await session.execute(_FACTS, {"id": call_id})).first()
    return facts_from_row(row) if row is not None else None


async def require_viewer(
    session: AsyncSession, person: PersonPrincipal, call_id: uuid.UUID
) -> Viewer:
    """The part the person plays in the call; 404 when none."""
    call = await facts(session, call_id)
    viewer = viewer_of(person, call) if call is not None else None
    if viewer is None:
        raise NotFound("No such call.")
    return viewer


SNAPSHOT_SQL = """
    SELECT c.id, c.status, c.category, c.note, c.escalation_level, c.created_at, c.updated_at,
           c.last_event_id, c.accuracy_m,
           ST_Y(c.location::geometry) AS lat, ST_X(c.location::geometry) AS lng,
           g.id AS grid_id, g.name AS grid_name,
           t.id AS team_id, t.name AS team_name,
           p.id AS responder_id, p.display_name AS responder_name, p.phone AS responder_phone,
           ST_Y(d.location::geometry) AS responder_lat, ST_X(d.location::geometry) AS responder_lng,
           d.accuracy_m AS responder_accuracy,
           c.resident_id, c.community_id, c.street_id,
           ARRAY(SELECT DISTINCT o.team_id FROM offer o WHERE o.call_id = c.id)
             AS offered_team_ids
    FROM call c
    JOIN area g ON g.id = c.grid_id
    LEFT JOIN team t ON t.id = c.team_id
    LEFT JOIN person p ON p.id = c.responder_id
    LEFT JOIN duty d ON d.person_id = c.responder_id AND d.on_duty = true
"""
_ONE = text(SNAPSHOT_SQL + " WHERE c.id = :id")


def facts_from_row(row: Any) -> CallFacts:
    """The visibility facts of a row of SNAPSHOT_SQL."""
    return CallFacts(
        id=row.id,
        resident_id=row.resident_id,
        responder_id=row.responder_id,
        community_id=row.community_id,
        street_id=row.street_id,
        offered_team_ids=frozenset(row.offered_team_ids),
    )


def snapshot_from_row(row: Any) -> dict[str, Any]:
    """The full view of a call, as JSON-ready data."""
    responder = None
    if row.responder_id is not None:
        position = None
        if row.status in SHOWS_RESPONDER_POSITION and row.responder_lat is not None:
            position = {
                "lat": row.responder_lat,
                "lng": row.responder_lng,
                "accuracy_m": row.responder_accuracy,
            }
        responder = {
            "id": str(row.responder_id),
            "display_name": row.responder_name,
            "phone_masked": mask_phone(row.responder_phone),
            "location": position,
        }
    return {
        "id": str(row.id),
        "status": row.status,
        "category": row.category,
        "note": row.note,
        "location": {"lat": row.lat, "lng": row.lng, "accuracy_m": row.accuracy_m},
        "grid": {"id": str(row.grid_id), "name": row.grid_name},
        "team": {"id": str(row.team_id), "name": row.team_name} if row.team_id else None,
        "responder": responder,
        "escalation_level": row.escalation_level,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "last_event_id": row.last_event_id,
    }


async def snapshot(session: AsyncSession, call_id: uuid.UUID) -> dict[str, Any]:
    row = (await session.execute(_ONE, {"id": call_id})).one()
    return snapshot_from_row(row)


def rounded(point: dict[str, Any]) -> dict[str, Any]:
    return {
        "lat": round(point["lat"], ROUND_DECIMALS),
        "lng": round(point["lng"], ROUND_DECIMALS),
        "accuracy_m": ROUNDED_ACCURACY_M,
    }


def redact(full: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """What `viewer` may see of a full snapshot."""
    view = dict(full)
    if viewer is Viewer.caller:
        return view
    if view.get("responder") is not None:
        view["responder"] = {**view["responder"], "location": None}
    if viewer is Viewer.team:
        view["location"] = rounded(view["location"])
        view["note"] = None
        view["responder"] = None
    return view
