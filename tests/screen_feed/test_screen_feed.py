"""The public screens' feed: its content against a committed scene, that it
names and locates no resident, that it is computed once per area and
period however many ask, its rate limit, and the stream of a screen that
stays open (a real server: an update arrives without reconnecting)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.errors import NotFound
from app.core.phones import mask_phone
from app.screen_feed.cache import ScreenFeeds
from tests.conftest import make_settings
from tests.live import Ledger, LiveServer, committed_person, committed_team, live_app, spots

RESIDENT = "屏幕隐私测试王秀英"
ADDRESS = "幸福路八十八号隐私小区3栋402室"
NOTE = "请到幸福路八十八号，我家老人摔倒了"
TEAM = "屏幕测试服务队"
SERVICE = "助老、调解、代办"


@dataclass
class Scene:
    lat: float
    lng: float
    grid: uuid.UUID
    community: uuid.UUID
    resident: uuid.UUID
    phone: str
    team: uuid.UUID
    # Minutes ago of the resolved call and of the fresh one, and a screen
    # delay between them: both calls fall on today in the district, even
    # just after its midnight (then the minutes are shorter).
    resolved_ago: float = 20.0
    fresh_ago: float = 1.0

    @property
    def delay_seconds(self) -> int:
        return min(300, int((self.resolved_ago + self.fresh_ago) / 2 * 60))


def _minutes_of_today(settings: Settings) -> float:
    """Minutes since midnight in the district."""
    now = datetime.now(settings.zone)
    return (now - now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds() / 60


async def _call(
    engine: AsyncEngine, scene: Scene, team: uuid.UUID, *, status: str, minutes_ago: float
) -> uuid.UUID:
    """A committed call of the scene's resident at its spot, with a note."""
    call_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO call (id, resident_id, status, category, note, location, grid_id,
                                  community_id, street_id, team_id, escalation_level, rounds,
                                  created_at, closed_at)
                SELECT :id, :resident, CAST(:status AS varchar), 'visit', :note,
                       ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                       g.id, c.id, c.parent_id, :team, 'grid', 1,
                       now() - make_interval(secs => :ago),
                       CASE WHEN CAST(:status AS varchar) = 'resolved' THEN now() END
                FROM area g JOIN area b ON b.id = g.parent_id JOIN area c ON c.id = b.parent_id
                WHERE g.id = :grid
                """
            ),
            {
                "id": call_id,
                "resident": scene.resident,
                "status": status,
                "note": NOTE,
                "lat": scene.lat,
                "lng": scene.lng,
                "team": team,
                "ago": minutes_ago * 60,
                "grid": scene.grid,
            },
        )
    return call_id


@pytest.fixture
async def scene(engine: AsyncEngine, settings: Settings, ledger: Ledger) -> AsyncIterator[Scene]:
    """A team in a grid; a resident of a household with an address there; a
    call of theirs resolved 20 minutes ago (less just after midnight; accepted after 30 s, rated 5,
    with a note) and one pressed a minute ago."""
    ((lat, lng),) = await spots(engine, 1, 1000)
    team = await committed_team(engine, settings, ledger, lat, lng, name=TEAM)
    resident = await committed_person(engine, settings, ledger, RESIDENT)
    household = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE team SET service_content = :s WHERE id = :t"),
            {"s": SERVICE, "t": team.id},
        )
        grid = (
            await conn.execute(text("SELECT grid_id FROM team WHERE id = :t"), {"t": team.id})
        ).scalar_one()
        community = (
            await conn.execute(
                text(
                    "SELECT b.parent_id FROM area g JOIN area b ON b.id = g.parent_id "
                    "WHERE g.id = :g"
                ),
                {"g": grid},
            )
        ).scalar_one()
        phone = (
            await conn.execute(
                text("SELECT phone FROM person WHERE id = :p"), {"p": resident.person_id}
            )
        ).scalar_one()
        await conn.execute(
            text(
                """
                INSERT INTO household (id, address, grid_id, location, vulnerabilities)
                VALUES (:h, :address, :grid,
                        ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography, ARRAY['elderly'])
                """
            ),
            {"h": household, "address": ADDRESS, "grid": grid, "lat": lat, "lng": lng},
        )
        await conn.execute(
            text("INSERT INTO household_resident (person_id, household_id) VALUES (:p, :h)"),
            {"p": resident.person_id, "h": household},
        )
    today = _minutes_of_today(settings)
    the_scene = Scene(
        lat,
        lng,
        grid,
        community,
        resident.person_id,
        phone,
        team.id,
        resolved_ago=min(20.0, today * 0.8),
        fresh_ago=min(1.0, today * 0.1),
    )
    resolved = await _call(
        engine, the_scene, team.id, status="resolved", minutes_ago=the_scene.resolved_ago
    )
    responder = team.members[0].person_id
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE call SET responder_id = :r WHERE id = :c"),
            {"r": responder, "c": resolved},
        )
        await conn.execute(
            text(
                """
                INSERT INTO offer (id, call_id, team_id, status, round, distance_m, accepted_by,
                                   created_at, expires_at, closed_at)
                SELECT gen_random_uuid(), id, :team, 'accepted', 1, 10, :r, created_at,
                       created_at + interval '1 h', created_at + interval '30 s'
                FROM call WHERE id = :c
                """
            ),
            {"team": team.id, "r": responder, "c": resolved},
        )
        # Its steps in the event log, which the day's figures are read from
        # (the KPIs' definitions): accepted after 30 s, resolved after 10 min.
        await conn.execute(
            text(
                """
                INSERT INTO event (call_id, type, at, data)
                SELECT id, 'call.updated', created_at + CAST(step.after AS interval),
                       jsonb_build_object('status', step.status)
                FROM call,
                     (VALUES ('30 s', 'accepted'), ('10 min', 'resolved')) AS step(after, status)
                WHERE id = :c
                """
            ),
            {"c": resolved},
        )
        await conn.execute(
            text(
                "INSERT INTO activity (id, person_id, team_id, call_id, kind, source, at) "
                "VALUES (gen_random_uuid(), :r, :team, :c, 'visit', 'call', now())"
            ),
            {"team": team.id, "r": responder, "c": resolved},
        )
        await conn.execute(
            text(
                "INSERT INTO rating (call_id, resident_id, responder_id, stars, comment) "
                "VALUES (:c, :p, :r, 5, :comment)"
            ),
            {"c": resolved, "p": resident.person_id, "r": responder, "comment": NOTE},
        )
    await _call(engine, the_scene, team.id, status="offered", minutes_ago=the_scene.fresh_ago)
    yield the_scene
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM household WHERE id = :h"), {"h": household})


# ---- privacy ---------------------------------------------------------------------------------

COORDINATE_KEYS = {"lat", "lng", "long", "location", "coordinates", "geometry", "base", "point"}
PERSONAL_KEYS = {"phone", "address", "note", "comment", "resident_id", "person_id", "household"}
ALLOWED_FRACTIONS = {"accept_p50_s", "satisfaction_avg"}


def _walk(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)
    else:
        yield key, value


def assert_anonymous(raw: str, scene: Scene) -> None:
    """Nothing in the feed names or locates the resident: no name, phone
    (whole, masked, or any phone-like run of digits), address, note, key
    of a point or of personal data, nor any number that could be a
    coordinate."""
    for secret in (RESIDENT, ADDRESS, NOTE, "幸福路", scene.phone, mask_phone(scene.phone)):
        assert secret not in raw, secret
    assert scene.phone[-8:] not in raw
    assert not re.search(r"\d{7,}", re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "", raw)), raw
    assert "****" not in raw
    body = json.loads(raw)
    for key, value in _walk(body):
        assert key not in COORDINATE_KEYS | PERSONAL_KEYS, key
        if isinstance(value, float) and key not in ALLOWED_FRACTIONS:
            raise AssertionError(f"{key}: a fraction where none belongs: {value}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert abs(value - scene.lat) > 0.5, (key, value)
            assert abs(value - scene.lng) > 0.5, (key, value)


# ---- the feed --------------------------------------------------------------------------------


async def test_the_feed_counts_the_day_and_shows_no_one(scene: Scene, settings: Settings) -> None:
    delayed = settings.model_copy(update={"screen_delay_seconds": scene.delay_seconds})
    async with live_app(delayed) as (_, http):
        answer = await http.get(f"/api/v1/public/screens/{scene.grid}")
        community = await http.get(f"/api/v1/public/screens/{scene.community}")
    assert answer.status_code == 200, answer.text
    feed = answer.json()
    assert set(feed) == {"area", "today", "on_duty_members", "teams", "recent", "stars"}
    assert feed["area"]["id"] == str(scene.grid)
    assert feed["area"]["level"] == "grid"
    # Both calls were pressed today; one resolved, accepted after 30 s, rated 5.
    assert feed["today"] == {
        "calls": 2,
        "resolved": 1,
        "accept_p50_s": 30.0,
        "satisfaction_avg": 5.0,
    }
    mine = [t for t in feed["teams"] if t["name"] == TEAM]
    assert mine == [{"name": TEAM, "service_content": SERVICE, "on_duty_count": 3}]
    assert feed["on_duty_members"] >= 3
    # Only the call older than SCREEN_DELAY_SECONDS (300, less just after
    # midnight), at a quarter hour.
    assert len(feed["recent"]) == 1
    (recent,) = feed["recent"]
    assert recent["category"] == "visit"
    assert recent["status"] == "resolved"
    assert recent["grid"]["id"] == str(scene.grid)
    at = datetime.fromisoformat(recent["at"])
    assert (at.minute % 15, at.second, at.microsecond) == (0, 0, 0)
    assert set(feed["stars"]) == {"month", "governance", "service"}
    for star in feed["stars"]["service"] + feed["stars"]["governance"]:
        assert set(star) == {"display_name", "team", "score"}
    # The responder resolved a call this month: a Service Star, by name and team.
    assert any(s["team"] == TEAM for s in feed["stars"]["service"])
    assert_anonymous(answer.text, scene)
    # The community holds the grid: the same calls at least.
    assert community.status_code == 200
    assert community.json()["today"]["calls"] >= 2
    assert_anonymous(community.text, scene)


async def test_an_unknown_area_is_a_problem(settings: Settings) -> None:
    async with live_app(settings) as (_, http):
        answer = await http.get(f"/api/v1/public/screens/{uuid.uuid4()}")
        stream = await http.get(f"/api/v1/public/screens/{uuid.uuid4()}/stream")
        bad = await http.get("/api/v1/public/screens/not-an-id")
    for response, status in ((answer, 404), (stream, 404), (bad, 422)):
        assert response.status_code == status
        assert response.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "not_found"


# ---- one computation per area and period ---------------------------------------------------


async def test_concurrent_misses_make_one_computation(
    scene: Scene, engine: AsyncEngine, settings: Settings
) -> None:
    now = [0.0]
    feeds = ScreenFeeds(
        async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False),
        settings,
        clock=lambda: now[0],
    )
    results = await asyncio.gather(*(feeds.get(scene.grid) for _ in range(25)))
    assert feeds.computations == 1
    assert all(r == results[0] for r in results)
    now[0] += settings.screen_cache_seconds / 2
    await feeds.get(scene.grid)
    assert feeds.computations == 1
    now[0] += settings.screen_cache_seconds
    await asyncio.gather(*(feeds.get(scene.grid) for _ in range(5)))
    assert feeds.computations == 2
    # Another area is its own entry; an unknown one is kept as "none" too.
    unknown = uuid.uuid4()
    for _ in range(3):
        with pytest.raises(NotFound):
            await feeds.get(unknown)
    assert feeds.computations == 3


async def test_many_screens_asking_at_once_cost_one_computation(
    scene: Scene, settings: Settings
) -> None:
    async with live_app(make_settings(settings.database_url_str, screen_cache_seconds=60)) as (
        app,
        http,
    ):
        answers = await asyncio.gather(
            *(http.get(f"/api/v1/public/screens/{scene.grid}") for _ in range(20))
        )
        assert [a.status_code for a in answers] == [200] * 20
        assert len({a.text for a in answers}) == 1
        assert app.state.screen_feeds.computations == 1


async def test_too_many_requests_from_one_address(scene: Scene, settings: Settings) -> None:
    limited = make_settings(settings.database_url_str, screen_requests_per_minute=2)
    async with live_app(limited) as (_, http):
        path = f"/api/v1/public/screens/{scene.grid}"
        first, second, third = [await http.get(path) for _ in range(3)]
        stream = await http.get(f"{path}/stream")
    assert (first.status_code, second.status_code) == (200, 200)
    for refused in (third, stream):
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1


# ---- the stream -------------------------------------------------------------------------------


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(kind, payload) of each message: ("retry", ms), ("feed", json), (":", comment)."""
    event, data = "", ""
    async for line in response.aiter_lines():
        if line.startswith("retry:"):
            yield "retry", line[6:].strip()
        elif line.startswith(":"):
            yield ":", line[1:].strip()
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and event:
            yield event, data
            event, data = "", ""


async def test_a_stream_sends_the_feed_then_its_changes(
    scene: Scene, engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    server = LiveServer(
        settings.database_url_str,
        tmp_path / "server.log",
        {
            "screen_delay_seconds": 0,
            "screen_cache_seconds": 0.2,
            "screen_stream_seconds": 0.3,
            "run_sweeper": "false",
            "run_push_worker": "false",
        },
    )
    try:
        await server.wait_ready()
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10) as http,
            http.stream("GET", f"/api/v1/public/screens/{scene.grid}/stream") as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = _events(response)
            assert await anext(events) == ("retry", "1000")
            kind, first = await anext(events)
            assert kind == "feed"
            assert_anonymous(first, scene)
            before = json.loads(first)
            # With no delay, both of the scene's calls are recent already.
            assert before["today"]["calls"] == 2
            assert len(before["recent"]) == 2
            await _call(engine, scene, scene.team, status="offered", minutes_ago=0)
            async with asyncio.timeout(10):
                async for kind, payload in events:
                    if kind == ":":
                        continue  # nothing changed yet: a keep-alive
                    assert kind == "feed"
                    assert_anonymous(payload, scene)
                    after = json.loads(payload)
                    if after["today"]["calls"] == 3:
                        break
            assert len(after["recent"]) == 3
            assert after["recent"][0]["status"] == "offered"
    finally:
        server.stop()
