"""The fixture day of the KPI tests: calls of one grid around 12 June 2024
(district time), written as the services would leave them, with controlled
instants (the API cannot set the time of a press or an accept): the call
rows, their `call.updated` events (the snapshot's `status`, and `disputed`
after a dispute) and ratings. tests/kpis/test_kpis.py counts it by hand."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.areas.service import AreaIds
from app.core.config import Settings
from tests.principals import bearer, make_person, token_for
from tests.scene import Member, make_resident, offset

LAT, LNG = offset(22.762, 113.918, 0, 0)
SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2024, 6, 12)  # a Wednesday, long past: nothing else is counted in it


def local(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """An instant given in the district's clock."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SHANGHAI)


@dataclass
class Place:
    where: AreaIds
    lat: float
    lng: float


async def _call(
    session: AsyncSession,
    place: Place,
    resident: uuid.UUID,
    pressed: datetime,
    steps: list[tuple[float, str]],
    *,
    stars: int | None = None,
    disputed_after: float | None = None,
) -> uuid.UUID:
    """A call pressed at `pressed`, then its `call.updated` events at the
    given seconds after the press (status reached), as the services write
    them; a dispute escalates it with `disputed: true`."""
    call_id = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO call (id, resident_id, status, category, location, grid_id, community_id,
                              street_id, escalation_level, rounds, created_at, updated_at,
                              disputed_at)
            VALUES (:id, :r, 'searching', 'visit',
                    ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                    :g, :c, :s, 'grid', 1, :at, :at, :disputed)
            """
        ),
        {
            "id": call_id,
            "r": resident,
            "lat": place.lat,
            "lng": place.lng,
            "g": place.where.grid,
            "c": place.where.community,
            "s": place.where.street,
            "at": pressed,
            "disputed": (
                pressed + timedelta(seconds=disputed_after) if disputed_after is not None else None
            ),
        },
    )
    events = [(0.0, "searching", False), *((s, status, False) for s, status in steps)]
    if disputed_after is not None:
        events.append((disputed_after, "escalated", True))
    for seconds, status, disputed in events:
        await session.execute(
            text(
                "INSERT INTO event (call_id, type, at, data) "
                "VALUES (:c, 'call.updated', :at, CAST(:data AS jsonb))"
            ),
            {
                "c": call_id,
                "at": pressed + timedelta(seconds=seconds),
                "data": json.dumps({"id": str(call_id), "status": status, "disputed": disputed}),
            },
        )
    if stars is not None:
        await session.execute(
            text("INSERT INTO rating (call_id, resident_id, stars) VALUES (:c, :r, :s)"),
            {"c": call_id, "r": resident, "s": stars},
        )
    return call_id


async def _other_grid(session: AsyncSession, where: AreaIds) -> Place:
    """A point inside another grid of the same community."""
    row = (
        await session.execute(
            text(
                """
                SELECT ST_Y(p) AS lat, ST_X(p) AS lng FROM (
                    SELECT ST_PointOnSurface(g.boundary::geometry) AS p, g.code
                    FROM area g JOIN area b ON b.id = g.parent_id
                    WHERE g.level = 'grid' AND b.parent_id = :c AND g.id <> :g
                ) x ORDER BY code LIMIT 1
                """
            ),
            {"c": where.community, "g": where.grid},
        )
    ).one()
    other = await areas.locate_ids(session, row.lat, row.lng)
    assert other.grid != where.grid
    assert other.community == where.community
    return Place(other, row.lat, row.lng)


async def dispatcher_of(session: AsyncSession, settings: Settings, area: uuid.UUID) -> Member:
    person_id = await make_person(session, "指标调度")
    await session.execute(
        text("INSERT INTO dispatcher (person_id, area_id) VALUES (:p, :a)"),
        {"p": person_id, "a": area},
    )
    return Member(person_id, bearer(await token_for(session, settings, person_id)))


@pytest.fixture
async def day(session: AsyncSession, settings: Settings) -> dict[str, Any]:
    """Calls of one grid around 12 June 2024 (district time), counted by hand
    in the tests below, and one call in another grid of the community."""
    where = await areas.locate_ids(session, LAT, LNG)
    place = Place(where, LAT, LNG)
    resident = (await make_resident(session, settings)).person_id
    d = DAY
    # C1 09:00 accepted at 20 s, on site 300 s, resolved 1200 s, 5 stars.
    await _call(session, place, resident, local(d, 9), [(20, "accepted"), (120, "en_route"),
                (300, "on_site"), (1200, "resolved")], stars=5)  # fmt: skip
    # C2 10:00 accepted 45 s, on site 600 s, resolved, 4 stars, then disputed
    # (its escalation is the dispute's, not counted as escalated).
    await _call(session, place, resident, local(d, 10), [(45, "accepted"), (600, "on_site"),
                (1500, "resolved")], stars=4, disputed_after=3600)  # fmt: skip
    # C3 11:00 offered, escalated at 225 s (no team took it), a dispatcher
    # assigned it and it was accepted at 300 s, on site 900 s, resolved, 2 stars.
    await _call(session, place, resident, local(d, 11), [(1, "offered"), (225, "escalated"),
                (250, "offered"), (300, "accepted"), (900, "on_site"), (2000, "resolved")],
                stars=2)  # fmt: skip
    # C4 14:00 accepted 90 s, then cancelled by the caller.
    await _call(session, place, resident, local(d, 14), [(90, "accepted"), (200, "cancelled")])
    # C5 23:59:30 offered, escalated at 600 s (the next day): never accepted.
    await _call(session, place, resident, local(d, 23, 59, 30), [(1, "offered"),
                (600, "escalated")])  # fmt: skip
    # C6 00:00:00, the day's first instant: accepted at exactly 60 s, on site
    # 400 s, resolved, 4 stars.
    await _call(session, place, resident, local(d, 0), [(60, "accepted"), (400, "on_site"),
                (800, "resolved")], stars=4)  # fmt: skip
    # C7 the day before at 23:59:59: accepted at 10 s, nothing more.
    await _call(session, place, resident, local(d, 0) - timedelta(seconds=1), [(10, "accepted")])
    # C8 the day after at 00:00:00: still searching.
    await _call(session, place, resident, local(d + timedelta(days=1), 0), [])
    # C9 in another grid of the community, 12:00: accepted at 30 s.
    other = await _other_grid(session, where)
    await _call(session, other, resident, local(d, 12), [(30, "accepted")])
    return {"where": where, "other": other.where}
