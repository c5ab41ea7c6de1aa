"""Offer deadlines across real server processes: `python -m app serve`
subprocesses on the test database, each with its own sweeper. Two sweepers
never move the same offer, and a process killed outright loses nothing:
whoever runs next does its due work at once. Scenes are committed, and
deleted at the end."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from tests.conftest import make_settings
from tests.live import (
    Ledger,
    LiveServer,
    committed_person,
    committed_team,
    eventually,
    park,
    spots,
)
from tests.scene import Member, SceneTeam, offset

pytestmark = pytest.mark.processes

RADIUS_M = 400

Start = Callable[..., LiveServer]


@pytest.fixture
def settings_for_tokens(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def start_server(
    database_url: str, settings_for_tokens: Settings, ledger: Ledger, tmp_path: Path
) -> Iterator[Start]:
    """Start `python -m app serve` processes; every one is stopped (before
    the ledger's cleanup, which this fixture depends on) at the end."""
    started: list[LiveServer] = []

    def start(name: str, **env: object) -> LiveServer:
        values: dict[str, object] = {
            "secret_key": settings_for_tokens.secret_key,
            "search_radius_m": RADIUS_M,
            "double_tap_seconds": 0,
            "double_tap_meters": 0,
            "max_open_calls_per_resident": 1000,
            "run_sweeper": "true",
            "sweep_interval_seconds": 0.1,
            "offer_timeout_seconds": 1,
            "max_offer_rounds": 3,
            "community_escalation_seconds": 3600,
            "db_pool_size": 5,
            "db_max_overflow": 5,
            **env,
        }
        server = LiveServer(database_url, tmp_path / f"{name}.log", values)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def scene(
    engine: AsyncEngine,
    settings: Settings,
    ledger: Ledger,
    lat: float,
    lng: float,
    teams_at: tuple[float, ...],
) -> list[SceneTeam]:
    """Teams north of a spot, at these distances, two members each on duty;
    the seeded volunteers around it off duty."""
    await park(engine, ledger, lat, lng, RADIUS_M + 400)
    return [
        await committed_team(engine, settings, ledger, *offset(lat, lng, d, 0), members=2)
        for d in teams_at
    ]


async def press(http: httpx.AsyncClient, resident: Member, lat: float, lng: float) -> str:
    response = await http.post(
        "/api/v1/calls", json={"location": {"lat": lat, "lng": lng}}, headers=resident.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "offered"
    call_id: str = response.json()["id"]
    return call_id


def no_failures(*servers: LiveServer) -> None:
    for server in servers:
        log = server.log()
        for bad in ("sweep failed", "Traceback", "deadlock", '"level": "error"'):
            assert bad not in log, log[-4000:]


async def test_two_sweeping_processes_close_each_lapsed_offer_exactly_once(
    engine: AsyncEngine,
    settings_for_tokens: Settings,
    ledger: Ledger,
    start_server: Start,
) -> None:
    settings = settings_for_tokens
    servers = [start_server("a"), start_server("b")]
    places = await spots(engine, 6, 2 * RADIUS_M + 800)
    scenes = [await scene(engine, settings, ledger, *p, (20.0, 70.0, 130.0)) for p in places]
    residents = [await committed_person(engine, settings, ledger) for _ in places]
    await asyncio.gather(*(s.wait_ready() for s in servers))

    clients = [httpx.AsyncClient(base_url=s.url, timeout=10) for s in servers]
    try:
        # 30 calls, five at each spot, half through each process.
        calls = await asyncio.gather(
            *(
                press(clients[(n + j) % 2], residents[n], *offset(*places[n], 5.0 * j, 0))
                for n in range(len(places))
                for j in range(5)
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    assert len(set(calls)) == 30
    # Every first offer falls due at the same moment: both sweepers go for
    # them. (Calls locked first, as the app does, or this could deadlock with
    # a sweeper already closing the earliest ones.)
    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT id FROM call WHERE id = ANY(CAST(:c AS uuid[])) ORDER BY id FOR UPDATE"),
            {"c": calls},
        )
        await conn.execute(
            text(
                "UPDATE offer SET expires_at = now() "
                "WHERE call_id = ANY(CAST(:c AS uuid[])) AND status = 'open'"
            ),
            {"c": calls},
        )

    async def all_escalated() -> bool:
        (row,) = await rows(
            engine,
            "SELECT count(*) FILTER (WHERE status = 'escalated') AS done FROM call "
            "WHERE id = ANY(CAST(:c AS uuid[]))",
            c=calls,
        )
        return bool(row.done == len(calls))

    took = await eventually(all_escalated, within_s=30)
    assert took < 15, "three rounds of one second each, twice over at most"
    assert all(s.process.poll() is None for s in servers), "both processes still serving"
    no_failures(*servers)

    offers = await rows(
        engine,
        "SELECT id, call_id, team_id, round, status, created_at, closed_at FROM offer "
        "WHERE call_id = ANY(CAST(:c AS uuid[])) ORDER BY call_id, round, created_at",
        c=calls,
    )
    events = await rows(
        engine,
        "SELECT call_id, offer_id, type, data->>'status' AS status FROM event "
        "WHERE call_id = ANY(CAST(:c AS uuid[])) ORDER BY id",
        c=calls,
    )
    closed = Counter(e.offer_id for e in events if e.type == "offer.closed")
    created = Counter(e.offer_id for e in events if e.type == "offer.created")
    assert len(offers) == 90, "three rounds for each of 30 calls, no more"
    for offer in offers:
        assert offer.status == "expired"
        assert closed[offer.id] == 1, "closed exactly once"
        assert created[offer.id] == 1
    assert {e.status for e in events if e.type == "offer.closed"} == {"expired"}

    team_of_scene = {str(c): scenes[n // 5] for n, c in enumerate(calls)}
    by_call: dict[str, list[Any]] = {}
    for offer in offers:
        by_call.setdefault(str(offer.call_id), []).append(offer)
    for call_id, mine in by_call.items():
        assert [o.round for o in mine] == [1, 2, 3], "one offer per round, in order"
        assert [o.team_id for o in mine] == [t.id for t in team_of_scene[call_id]], (
            "nearest first, each team once"
        )
        for before, after in itertools.pairwise(mine):
            assert after.created_at >= before.closed_at, "never two open offers at once"
        updates = [
            e.status for e in events if str(e.call_id) == call_id and e.type == "call.updated"
        ]
        assert updates == ["searching", "offered", "offered", "offered", "escalated"]


async def test_a_killed_process_loses_nothing(
    engine: AsyncEngine,
    settings_for_tokens: Settings,
    ledger: Ledger,
    start_server: Start,
) -> None:
    settings = settings_for_tokens
    (two_teams, one_team) = await spots(engine, 2, 2 * RADIUS_M + 800)
    near, far = await scene(engine, settings, ledger, *two_teams, (20.0, 80.0))
    (alone,) = await scene(engine, settings, ledger, *one_team, (20.0,))
    resident = await committed_person(engine, settings, ledger)

    doomed = start_server("doomed", offer_timeout_seconds=3)
    await doomed.wait_ready()
    async with httpx.AsyncClient(base_url=doomed.url, timeout=10) as http:
        re_dispatched = [
            await press(http, resident, *offset(*two_teams, 0, 5.0 * j)) for j in range(6)
        ]
        escalated = [await press(http, resident, *offset(*one_team, 0, 5.0 * j)) for j in range(4)]
    calls = re_dispatched + escalated
    first_offers = await rows(
        engine,
        "SELECT id, team_id, expires_at FROM offer WHERE call_id = ANY(CAST(:c AS uuid[])) "
        "AND status = 'open'",
        c=calls,
    )
    assert len(first_offers) == 10, "every call offered, and still open"
    assert Counter(o.team_id for o in first_offers) == {near.id: 6, alone.id: 4}

    doomed.kill()
    assert doomed.process.returncode == -signal.SIGKILL

    # Past every deadline, nobody has moved them.
    (wait,) = await rows(
        engine,
        "SELECT extract(epoch FROM max(expires_at) - clock_timestamp()) AS s FROM offer "
        "WHERE id = ANY(CAST(:o AS uuid[]))",
        o=[o.id for o in first_offers],
    )
    await asyncio.sleep(max(float(wait.s), 0) + 0.3)
    still = await rows(
        engine,
        "SELECT id FROM offer WHERE id = ANY(CAST(:o AS uuid[])) AND status = 'open'",
        o=[o.id for o in first_offers],
    )
    assert len(still) == 10

    spawned = time.monotonic()
    survivor = start_server("survivor", offer_timeout_seconds=120)

    async def all_moved_on() -> bool:
        (row,) = await rows(
            engine,
            "SELECT count(*) AS n FROM offer WHERE id = ANY(CAST(:o AS uuid[])) "
            "AND status = 'expired'",
            o=[o.id for o in first_offers],
        )
        return bool(row.n == len(first_offers))

    ready = await survivor.wait_ready()
    await eventually(all_moved_on, within_s=10, interval=0.02)
    done = time.monotonic()
    assert done - ready < 2.0, "the survivor does the dead process's due work at once"
    assert done - spawned < 20.0

    for call_id in re_dispatched:
        (call,) = await rows(
            engine, "SELECT status, team_id, rounds FROM call WHERE id = :c", c=call_id
        )
        assert (call.status, call.team_id, call.rounds) == ("offered", far.id, 2)
        (open_offer,) = await rows(
            engine, "SELECT team_id FROM offer WHERE call_id = :c AND status = 'open'", c=call_id
        )
        assert open_offer.team_id == far.id
    for call_id in escalated:
        (call,) = await rows(
            engine, "SELECT status, escalation_level FROM call WHERE id = :c", c=call_id
        )
        assert (call.status, call.escalation_level) == ("escalated", "community")
    closed = await rows(
        engine,
        "SELECT offer_id, data->>'status' AS status FROM event "
        "WHERE type = 'offer.closed' AND offer_id = ANY(CAST(:o AS uuid[]))",
        o=[o.id for o in first_offers],
    )
    assert sorted((str(c.offer_id), c.status) for c in closed) == sorted(
        (str(o.id), "expired") for o in first_offers
    ), "each lapsed offer closed once"
    no_failures(survivor)
