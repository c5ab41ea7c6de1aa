"""GET /stars: the monthly Governance Star and Service Star of an area,
against a month counted by hand; frozen once the month is closed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.areas import service as areas
from app.core.config import Settings
from app.core.months import Month
from app.stars import service as stars
from tests.conftest import make_settings
from tests.principals import bearer, make_person, token_for
from tests.problems import assert_problem
from tests.scene import SceneTeam, make_resident, make_team, offset

# A spot of its own, and months long past: nothing else of the demo district
# is counted in them.
LAT, LNG = offset(22.762, 113.918, 0, 0)
MARCH = Month(2024, 3)
MAY = Month(2024, 5)


class Instants:
    """Instants inside a month, in the district's time zone."""

    def __init__(self, month: Month, settings: Settings) -> None:
        self.start = month.start(settings.zone)
        self.end = month.end(settings.zone)

    def day(self, n: int, hour: int = 10) -> datetime:
        return self.start + timedelta(days=n - 1, hours=hour)


async def _logged(
    session: AsyncSession, team: uuid.UUID, person: uuid.UUID, kind: str, at: datetime
) -> None:
    await session.execute(
        text(
            "INSERT INTO activity (id, person_id, team_id, kind, source, at) "
            "VALUES (:id, :p, :t, :k, 'logged', :at)"
        ),
        {"id": uuid.uuid4(), "p": person, "t": team, "k": kind, "at": at},
    )


async def _call(
    session: AsyncSession,
    team: uuid.UUID,
    person: uuid.UUID,
    resident: uuid.UUID,
    category: str,
    at: datetime,
    *,
    stars_given: int | None = None,
    accept_seconds: float = 30,
    disputed: bool = False,
) -> uuid.UUID:
    """A call `person` resolved at `at` (its activity, offer and rating)."""
    call_id = uuid.uuid4()
    where = await areas.locate_ids(session, LAT, LNG)
    await session.execute(
        text(
            """
            INSERT INTO call (id, resident_id, status, category, location, grid_id, community_id,
                              street_id, team_id, responder_id, escalation_level, rounds,
                              created_at, closed_at, disputed_at)
            VALUES (:id, :r, 'resolved', :cat,
                    ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                    :g, :c, :s, :t, :p, 'grid', 1, :created, :at, :disputed)
            """
        ),
        {
            "id": call_id,
            "r": resident,
            "cat": category,
            "lat": LAT,
            "lng": LNG,
            "g": where.grid,
            "c": where.community,
            "s": where.street,
            "t": team,
            "p": person,
            "created": at - timedelta(hours=1),
            "at": at,
            "disputed": at + timedelta(hours=2) if disputed else None,
        },
    )
    offered = at - timedelta(hours=1)
    await session.execute(
        text(
            """
            INSERT INTO offer (id, call_id, team_id, status, round, distance_m, accepted_by,
                               created_at, expires_at, closed_at)
            VALUES (:id, :c, :t, 'accepted', 1, 50, :p, :o, :o, :closed)
            """
        ),
        {
            "id": uuid.uuid4(),
            "c": call_id,
            "t": team,
            "p": person,
            "o": offered,
            "closed": offered + timedelta(seconds=accept_seconds),
        },
    )
    kind = "hardship" if category == "urgent" else category
    await session.execute(
        text(
            "INSERT INTO activity (id, person_id, team_id, kind, source, call_id, at, disputed) "
            "VALUES (:id, :p, :t, :k, 'call', :c, :at, :d)"
        ),
        {"id": uuid.uuid4(), "p": person, "t": team, "k": kind, "c": call_id, "at": at,
         "d": disputed},
    )  # fmt: skip
    if stars_given is not None:
        await session.execute(
            text(
                "INSERT INTO rating (call_id, resident_id, responder_id, stars) "
                "VALUES (:c, :r, :p, :s)"
            ),
            {"c": call_id, "r": resident, "p": person, "s": stars_given},
        )
    return call_id


@pytest.fixture
async def march(session: AsyncSession, settings: Settings) -> dict[str, Any]:
    """Three members of one team and their March, counted by hand below."""
    team = await make_team(session, settings, LAT, LNG, members=3, on_duty=0, name="星级队")
    a, b, c = (m.person_id for m in team.members)
    resident = (await make_resident(session, settings)).person_id
    m = Instants(MARCH, settings)
    # A: two calls (one fast and rated 5, one mediation rated 2 and slow),
    # a visit, a mediation, and an event at the very first instant of March.
    await _call(session, team.id, a, resident, "visit", m.day(3), stars_given=5, accept_seconds=30)
    await _call(
        session, team.id, a, resident, "mediation", m.day(9), stars_given=2, accept_seconds=120
    )
    await _logged(session, team.id, a, "visit", m.day(4))
    await _logged(session, team.id, a, "mediation", m.day(5))
    await _logged(session, team.id, a, "event", m.start)
    # ...and one at the first instant of April, which is not March's.
    await _logged(session, team.id, a, "visit", m.end)
    # B: a call the caller disputed (rated 1, accepted fast), four safety
    # patrols and a hardship visit.
    await _call(session, team.id, b, resident, "urgent", m.day(12), stars_given=1, disputed=True)
    for day in (13, 14, 15, 16):
        await _logged(session, team.id, b, "safety", m.day(day))
    await _logged(session, team.id, b, "hardship", m.day(17))
    # C: one community event, on the last evening of March.
    await _logged(session, team.id, c, "event", m.end - timedelta(hours=2))
    where = await areas.locate_ids(session, LAT, LNG)
    return {
        "team": team,
        "a": a,
        "b": b,
        "c": c,
        "grid": where.grid,
        "community": where.community,
        "resident": resident,
    }


def _parts(star: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {name: (p["value"], p["points"]) for name, p in star["breakdown"].items()}


async def test_the_stars_of_a_month_counted_by_hand(
    client: httpx.AsyncClient, march: dict[str, Any]
) -> None:
    team: SceneTeam = march["team"]
    answer = await client.get(
        "/api/v1/stars", params={"month": "2024-03", "area_id": str(march["grid"])}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["month"] == "2024-03"
    assert body["frozen"] is True

    # Service Star (weights 10, 2, 3, 4, -15): only A scores above 0.
    #   A: 2 resolved calls 20, ratings (5-3)+(2-3) = 1 → 2, 1 fast → 3,
    #      1 visit → 4, no dispute: 29.
    #   B: 0 calls, rating 1-3 = -2 → -4, 1 hardship → 4, 1 dispute -15: -15.
    #   C: 0.
    assert [s["person_id"] for s in body["service"]] == [str(march["a"])]
    a_service = body["service"][0]
    assert a_service["score"] == 29
    assert _parts(a_service) == {
        "resolved_calls": (2, 20),
        "ratings": (1, 2),
        "fast_responses": (1, 3),
        "service_activities": (1, 4),
        "disputes": (0, 0),
    }
    assert a_service["breakdown"]["resolved_calls"]["weight"] == 10
    assert a_service["team"] == {"id": str(team.id), "name": "星级队"}
    assert a_service["display_name"] == "星级队队员0"

    # Governance Star (weights 5, 5, 3, -15):
    #   A: 1 mediation 5, 1 mediation call 5, 1 event 3: 13.
    #   B: 4 safety 20, 1 dispute -15: 5.
    #   C: 1 event 3.
    governance = body["governance"]
    assert [(s["person_id"], s["score"]) for s in governance] == [
        (str(march["a"]), 13),
        (str(march["b"]), 5),
        (str(march["c"]), 3),
    ]
    assert _parts(governance[0]) == {
        "governance_activities": (1, 5),
        "governance_calls": (1, 5),
        "events": (1, 3),
        "disputes": (0, 0),
    }
    assert _parts(governance[1]) == {
        "governance_activities": (4, 20),
        "governance_calls": (0, 0),
        "events": (0, 0),
        "disputes": (1, -15),
    }
    for star in governance:
        assert star["score"] == sum(p["points"] for p in star["breakdown"].values())

    # The same members from the community the grid lies in.
    assert body["area_id"] == str(march["grid"])
    community = await client.get(
        "/api/v1/stars", params={"month": "2024-03", "area_id": str(march["community"])}
    )
    assert community.json()["governance"] == governance


async def test_a_closed_month_is_frozen(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    march: dict[str, Any],
) -> None:
    params = {"month": "2024-03", "area_id": str(march["grid"])}
    first = (await client.get("/api/v1/stars", params=params)).json()
    # Written into March later: a visit by C and a late dispute of A's call.
    team: SceneTeam = march["team"]
    await _logged(session, team.id, march["c"], "visit", Instants(MARCH, settings).day(20))
    await session.execute(
        text("UPDATE activity SET disputed = true WHERE person_id = :a AND source = 'call'"),
        {"a": march["a"]},
    )
    again = (await client.get("/api/v1/stars", params=params)).json()
    assert again == first, "a closed month's stars never change"
    # Counted now, the month would differ: the freeze is what keeps it.
    now = await stars.compute(session, settings, march["grid"], MARCH)
    assert [s["person_id"] for s in now["service"]] == [str(march["c"])]


async def test_ties_are_broken_by_activities_then_person_id(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    team = await make_team(
        session, settings, *offset(LAT, LNG, 30, 30), members=3, on_duty=0, name="平局队"
    )
    d, e, f = (m.person_id for m in team.members)
    m = Instants(MAY, settings)
    for person in (d, e, f):
        await _logged(session, team.id, person, "event", m.day(2))  # governance 3 each
    await _logged(session, team.id, e, "visit", m.day(3))  # E: one activity more
    grid = (await areas.locate_ids(session, *offset(LAT, LNG, 30, 30))).grid
    body = (
        await client.get("/api/v1/stars", params={"month": "2024-05", "area_id": str(grid)})
    ).json()
    ranked = [(s["person_id"], s["score"]) for s in body["governance"]]
    d_f = sorted([str(d), str(f)])
    assert ranked == [(str(e), 3), (d_f[0], 3), (d_f[1], 3)]


async def test_the_current_month_is_counted_live(
    app: Any, session: AsyncSession, settings: Settings, march: dict[str, Any]
) -> None:
    team: SceneTeam = march["team"]
    reader = team.members[2]  # any logged-in person may read the stars
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        params = {"area_id": str(march["grid"])}

        async def mine() -> dict[str, Any] | None:
            answer = await http.get("/api/v1/stars", params=params, headers=reader.headers)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["frozen"] is False
            assert body["month"] == str(Month.of(datetime.now(UTC), settings.zone))
            return next((s for s in body["service"] if s["person_id"] == str(march["c"])), None)

        assert await mine() is None
        now = datetime.now(UTC) - timedelta(minutes=1)
        await _logged(session, team.id, march["c"], "hardship", now)
        assert _parts(await mine() or {})["service_activities"] == (1, 4)
        await _logged(session, team.id, march["c"], "visit", now)
        assert _parts(await mine() or {})["service_activities"] == (2, 8)


async def test_which_area_and_month(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, anon_client: Any
) -> None:
    needs_area = await client.get("/api/v1/stars", params={"month": "2024-03"})
    assert_problem(needs_area, 422, "area_required")
    unknown = await client.get("/api/v1/stars", params={"area_id": str(uuid.uuid4())})
    assert_problem(unknown, 404, "not_found")
    grid = (await areas.locate_ids(session, LAT, LNG)).grid
    early = await client.get("/api/v1/stars", params={"month": "1999-12", "area_id": str(grid)})
    assert_problem(early, 422, "invalid_month")
    bad = await client.get("/api/v1/stars", params={"month": "2024-13", "area_id": str(grid)})
    assert_problem(bad, 422, "validation_error")
    # A dispatcher's own area when none is named.
    where = await areas.locate_ids(session, LAT, LNG)
    dispatcher = await make_person(session, "星级调度")
    await session.execute(
        text("INSERT INTO dispatcher (person_id, area_id) VALUES (:p, :a)"),
        {"p": dispatcher, "a": where.community},
    )
    headers = bearer(await token_for(session, settings, dispatcher))
    own = await anon_client.get("/api/v1/stars", params={"month": "2024-03"}, headers=headers)
    assert own.status_code == 200, own.text
    assert own.json()["area_id"] == str(where.community)


async def test_two_first_reads_of_a_closed_month_keep_one_ranking(
    engine: AsyncEngine, database_url: str
) -> None:
    settings = make_settings(database_url)
    month = Month(2024, 6)
    async with AsyncSession(engine) as session:
        grid = (await areas.locate_ids(session, LAT, LNG)).grid

    async def read() -> Any:
        async with AsyncSession(engine) as session:
            answer = await stars.rankings(session, settings, grid, month)
            await session.commit()
            return answer

    try:
        first, second = await asyncio.gather(read(), read())
        assert first.frozen
        assert second.frozen
        assert first == second, "both answer the one ranking kept"
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT count(*) FROM star_ranking WHERE area_id = :a AND month = :m"),
                    {"a": grid, "m": str(month)},
                )
            ).scalar_one()
        assert rows == 1
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM star_ranking WHERE area_id = :a AND month = :m"),
                {"a": grid, "m": str(month)},
            )
