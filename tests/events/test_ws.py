"""The live stream, in-process with httpx-ws, on committed data (the event
hub reads what other transactions committed, as in production)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls import state
from app.core.config import Settings
from app.events import hub as live
from app.events import ws as ws_module
from app.main import create_app
from app.models.call import EventType
from tests.conftest import make_settings
from tests.events.test_asyncapi import server_frame_validator
from tests.live import delete_committed
from tests.scene import Member, SceneTeam, make_resident, make_team, offset

# A spot of its own; the scene's members stand on the very point pressed.
LAT, LNG = offset(22.765, 113.925, 0, 0)


@pytest.fixture
async def scene(engine: AsyncEngine, database_url: str) -> AsyncIterator[dict[str, Any]]:
    """A team on duty at the spot and a resident, committed; removed after."""
    settings = make_settings(database_url)
    async with AsyncSession(engine) as session:
        team = await make_team(session, settings, LAT, LNG, members=2, name="直播队")
        resident = await make_resident(session, settings)
        await session.commit()
    yield {"team": team, "resident": resident}
    people = [m.person_id for m in team.members] + [resident.person_id]
    async with engine.begin() as conn:
        await delete_committed(conn, people, [team.id])


def connect(
    url: str, client: httpx.AsyncClient, headers: dict[str, str] | None = None
) -> AbstractAsyncContextManager[AsyncWebSocketSession]:
    return aconnect_ws(url, client, headers=dict(headers or {}))


@dataclass
class Live:
    app: FastAPI
    http: httpx.AsyncClient  # plain requests
    sockets: httpx.AsyncClient  # WebSockets (httpx-ws's in-process transport)


Factory = Callable[..., AbstractAsyncContextManager[Live]]


@pytest.fixture
def live_app(database_url: str) -> Factory:
    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[Live]:
        app = create_app(make_settings(database_url, **overrides))
        async with LifespanManager(app):
            hub: live.EventHub = app.state.hub
            await asyncio.wait_for(hub.connected.wait(), 5)
            async with (
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://t"
                ) as http,
                httpx.AsyncClient(
                    transport=ASGIWebSocketTransport(app), base_url="http://t"
                ) as sockets,
            ):
                yield Live(app, http, sockets)

    return factory


async def _next(ws: Any, kind: str | None = None, wait: float = 5.0) -> dict[str, Any]:
    """The next message (of `kind`), skipping heartbeats."""
    while True:
        message: dict[str, Any] = json.loads(await ws.receive_text(timeout=wait))
        if message["type"] == "heartbeat":
            continue
        if kind is None or message["type"] == kind:
            return message


async def _status(ws: Any, status: str) -> dict[str, Any]:
    """The call.updated that says `status`. Events committed before the socket
    connected may still arrive first, when the hub had not yet read them."""
    while True:
        message = await _next(ws, "call.updated")
        if message["data"]["status"] == status:
            return message


async def _close_code(ws: Any) -> int:
    """Read until the server closes the socket; its close code."""
    try:
        while True:
            await ws.receive_text(timeout=8)
    except WebSocketDisconnect as closed:
        code: int = closed.code
        return code


async def _press(http: httpx.AsyncClient, resident: Member) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/calls", json={"location": {"lat": LAT, "lng": LNG}}, headers=resident.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _two_calls(http: httpx.AsyncClient, resident: Member) -> tuple[uuid.UUID, uuid.UUID]:
    """Two calls of the resident, apart: events of one call are serialised
    by its row lock, of two calls they may commit in any order."""
    first = uuid.UUID((await _press(http, resident))["id"])
    far = dict(zip(("lat", "lng"), offset(LAT, LNG, 0, 600), strict=True))
    pressed = await http.post("/api/v1/calls", json={"location": far}, headers=resident.headers)
    assert pressed.status_code == 201, pressed.text
    return first, uuid.UUID(pressed.json()["id"])


async def _settled(ws: Any) -> None:
    """The socket is live and what was written before has arrived."""
    await ws.send_text(json.dumps({"type": "ping"}))
    await _next(ws, "pong")
    with contextlib.suppress(TimeoutError):
        while True:
            await _next(ws, "call.updated", wait=0.5)


async def test_events_flow_to_who_may_see_them(live_app: Factory, scene: dict[str, Any]) -> None:
    team: SceneTeam = scene["team"]
    resident: Member = scene["resident"]
    volunteer = team.members[1]
    token = resident.headers["Authorization"].split()[1]
    async with live_app() as lv:
        http = lv.http
        async with (
            connect("/api/v1/ws", lv.sockets, headers=volunteer.headers) as vws,
            connect(f"/api/v1/ws?token={token}", lv.sockets) as rws,
        ):
            for sock in (vws, rws):
                await sock.send_text(json.dumps({"type": "ping"}))
                assert await _next(sock) == {"type": "pong"}
            call = await _press(http, resident)

            offer = await _next(vws, "offer.created")
            assert offer["call_id"] == call["id"]
            assert offer["data"]["team"]["id"] == str(team.id)
            assert offer["data"]["approx_location"]["accuracy_m"] == 100.0
            assert set(offer["data"]) >= {"id", "status", "category", "distance_m", "expires_at"}

            mine = await _status(rws, "offered")
            assert mine["data"]["location"]["lat"] == pytest.approx(LAT)

            accepted = await http.post(
                f"/api/v1/offers/{offer['data']['id']}/accept", headers=volunteer.headers
            )
            assert accepted.status_code == 200
            update = await _status(rws, "accepted")
            assert update["data"]["responder"]["id"] == str(volunteer.person_id)
            assert update["id"] > mine["id"]
            # The resident never gets offer events.
            with pytest.raises(TimeoutError):
                await _next(rws, "offer.closed", wait=0.5)


async def test_resume_replays_exactly_and_in_order(
    live_app: Factory, scene: dict[str, Any]
) -> None:
    resident: Member = scene["resident"]
    async with live_app() as lv:
        http = lv.http
        call = await _press(http, resident)
        await http.post(f"/api/v1/calls/{call['id']}/cancel", headers=resident.headers)
        history = (
            await http.get(f"/api/v1/calls/{call['id']}/events", headers=resident.headers)
        ).json()["data"]
        assert len(history) >= 3
        async with connect("/api/v1/ws", lv.sockets, headers=resident.headers) as ws:
            await ws.send_text(json.dumps({"type": "resume", "after": history[0]["id"]}))
            replayed = [await _next(ws) for _ in history[1:]]
        assert [m["id"] for m in replayed] == [e["id"] for e in history[1:]]
        assert [m["data"]["status"] for m in replayed] == [e["data"]["status"] for e in history[1:]]
        assert replayed[-1]["data"]["status"] == "cancelled"


async def test_refused_without_a_valid_token(live_app: Factory) -> None:
    async with live_app() as lv:
        for url, headers in (
            ("/api/v1/ws", {}),
            ("/api/v1/ws?token=garbage", {}),
            ("/api/v1/ws", {"Authorization": "Bearer not.a.jwt"}),
        ):
            async with connect(url, lv.sockets, headers=headers) as ws:
                with pytest.raises(WebSocketDisconnect) as closed:
                    await ws.receive_text(timeout=5)
            assert closed.value.code == ws_module.CLOSE_NOT_AUTHENTICATED


async def test_origin_allow_list(live_app: Factory, scene: dict[str, Any]) -> None:
    resident: Member = scene["resident"]
    async with live_app(ws_allowed_origins=["https://app.example"]) as lv:
        headers = {**resident.headers, "Origin": "https://evil.example"}
        with pytest.raises(Exception):  # noqa: B017 - the handshake is refused
            async with connect("/api/v1/ws", lv.sockets, headers=headers) as ws:
                await ws.receive_text(timeout=2)
        good = {**resident.headers, "Origin": "https://app.example"}
        async with connect("/api/v1/ws", lv.sockets, headers=good) as ws:
            await ws.send_text(json.dumps({"type": "ping"}))
            assert await _next(ws) == {"type": "pong"}
        # The web app served by this server (/app/) is of the host it asks.
        own = {**resident.headers, "Origin": "https://hulian.example", "Host": "hulian.example"}
        async with connect("/api/v1/ws", lv.sockets, headers=own) as ws:
            await ws.send_text(json.dumps({"type": "ping"}))
            assert await _next(ws) == {"type": "pong"}
        # Another site's page naming our host in its own origin's place cannot.
        spoof = {**resident.headers, "Origin": "https://evil.example", "Host": "hulian.example"}
        with pytest.raises(Exception):  # noqa: B017 - the handshake is refused
            async with connect("/api/v1/ws", lv.sockets, headers=spoof) as ws:
                await ws.receive_text(timeout=2)


async def test_a_slow_consumer_is_closed(
    live_app: Factory, scene: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The socket never starts its live stream (no resume, a long window), so
    # its queue fills: it must be closed, not left to grow.
    monkeypatch.setattr(live, "QUEUE_SIZE", 2)
    monkeypatch.setattr(ws_module, "RESUME_WINDOW_S", 60.0)
    resident: Member = scene["resident"]
    async with live_app() as lv:
        http = lv.http
        async with connect("/api/v1/ws", lv.sockets, headers=resident.headers) as ws:
            call = await _press(http, resident)
            await http.post(f"/api/v1/calls/{call['id']}/cancel", headers=resident.headers)
            assert await _close_code(ws) == ws_module.CLOSE_TOO_SLOW


async def test_token_expiry_and_logout_close_the_socket(
    live_app: Factory, scene: dict[str, Any], database_url: str, engine: AsyncEngine
) -> None:
    resident: Member = scene["resident"]
    async with live_app(access_token_ttl_seconds=2) as lv:
        settings: Settings = lv.app.state.settings
        async with AsyncSession(engine) as session:
            from app.identity.auth import start_session

            pair = await start_session(session, settings, resident.person_id)
            await session.commit()
        async with connect(
            "/api/v1/ws", lv.sockets, headers={"Authorization": f"Bearer {pair.access_token}"}
        ) as ws:
            assert await _close_code(ws) == ws_module.CLOSE_SESSION_ENDED

    async with live_app(ws_auth_recheck_seconds=0.2) as lv:
        http = lv.http
        async with connect("/api/v1/ws", lv.sockets, headers=resident.headers) as ws:
            await ws.send_text(json.dumps({"type": "ping"}))
            assert await _next(ws) == {"type": "pong"}
            logout = await http.post("/api/v1/auth/logout", headers=resident.headers)
            assert logout.status_code == 204
            assert await _close_code(ws) == ws_module.CLOSE_SESSION_ENDED


async def test_big_and_bad_messages(live_app: Factory, scene: dict[str, Any]) -> None:
    resident: Member = scene["resident"]
    async with live_app() as lv:
        async with connect("/api/v1/ws", lv.sockets, headers=resident.headers) as ws:
            await ws.send_text("not json")
            assert (await _next(ws))["code"] == "unknown_message"
            await ws.send_text(json.dumps({"type": "resume", "after": "yesterday"}))
            assert (await _next(ws))["code"] == "bad_resume"
            await ws.send_text("x" * (64 * 1024 + 1))
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_text(timeout=5)
        assert closed.value.code == ws_module.CLOSE_MESSAGE_TOO_BIG


@pytest.mark.parametrize(
    "hostile",
    [
        # Small enough to pass the size limit, deep enough to exhaust json's recursion.
        pytest.param("[" * 50_000, id="nested-arrays"),
        pytest.param('{"a":' * 10_000 + "1" + "}" * 10_000, id="nested-objects"),
        pytest.param(b"\x00\x01binary", id="binary-frame"),
    ],
)
async def test_hostile_messages_close_as_bad_data_not_as_a_crash(
    live_app: Factory, scene: dict[str, Any], hostile: str | bytes
) -> None:
    resident: Member = scene["resident"]
    async with (
        live_app() as lv,
        connect("/api/v1/ws", lv.sockets, headers=resident.headers) as ws,
    ):
        if isinstance(hostile, bytes):
            await ws.send_bytes(hostile)
        else:
            await ws.send_text(hostile)
        code = await _close_code(ws)
    # RFC 6455: 1003, a kind of data the endpoint does not accept (it speaks
    # text only); 1007, data that does not fit the message type. Never 1011.
    assert code == (1003 if isinstance(hostile, bytes) else 1007)


async def test_a_resume_beyond_bigint_is_a_bad_resume(
    live_app: Factory, scene: dict[str, Any]
) -> None:
    resident: Member = scene["resident"]
    async with (
        live_app() as lv,
        connect("/api/v1/ws", lv.sockets, headers=resident.headers) as ws,
    ):
        for after in (2**63, 10**40):
            await ws.send_text(json.dumps({"type": "resume", "after": after}))
            assert (await _next(ws))["code"] == "bad_resume"
        await ws.send_text(json.dumps({"type": "ping"}))
        assert await _next(ws) == {"type": "pong"}, "the socket stays open"


async def test_no_event_is_lost_when_the_listener_connection_dies(
    live_app: Factory, scene: dict[str, Any], engine: AsyncEngine
) -> None:
    resident: Member = scene["resident"]
    async with live_app() as lv:
        http = lv.http
        hub: live.EventHub = lv.app.state.hub
        async with connect("/api/v1/ws", lv.sockets, headers=resident.headers) as ws:
            await ws.send_text(json.dumps({"type": "ping"}))
            await _next(ws, "pong")
            call = await _press(http, resident)
            async with engine.connect() as conn:
                killed = (
                    await conn.execute(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = :name AND datname = current_database()"
                        ),
                        {"name": live.LISTENER_NAME},
                    )
                ).scalar_one()
            assert killed >= 1
            # Written while the listener is gone.
            await http.post(f"/api/v1/calls/{call['id']}/cancel", headers=resident.headers)
            expected = [
                e["id"]
                for e in (
                    await http.get(f"/api/v1/calls/{call['id']}/events", headers=resident.headers)
                ).json()["data"]
            ]
            got: list[int] = []
            while len(got) < len(expected):
                got.append((await _next(ws, "call.updated", wait=10))["id"])
            assert got == expected
            assert hub.reconnects >= 1


async def test_the_caller_follows_the_responder_on_the_way(
    live_app: Factory, scene: dict[str, Any]
) -> None:
    team: SceneTeam = scene["team"]
    resident: Member = scene["resident"]
    responder, teammate = team.members[0], team.members[1]
    async with live_app() as lv:
        http = lv.http
        call = await _press(http, resident)
        offers = (await http.get("/api/v1/offers", headers=responder.headers)).json()["data"]
        offer = next(o for o in offers if o["call_id"] == call["id"])
        await http.post(f"/api/v1/offers/{offer['id']}/accept", headers=responder.headers)
        async with (
            connect("/api/v1/ws", lv.sockets, headers=resident.headers) as rws,
            connect("/api/v1/ws", lv.sockets, headers=teammate.headers) as tws,
        ):
            for sock in (rws, tws):
                await sock.send_text(json.dumps({"type": "ping"}))
                await _next(sock, "pong")
            here = {"lat": LAT + 0.001, "lng": LNG, "accuracy_m": 9}
            # Accepted but not yet on the way: nothing is shared.
            await http.put("/api/v1/me/location", json=here, headers=responder.headers)
            await http.post(
                f"/api/v1/calls/{call['id']}/progress",
                json={"status": "en_route"},
                headers=responder.headers,
            )
            await _status(rws, "en_route")
            moved = await http.put("/api/v1/me/location", json=here, headers=responder.headers)
            assert moved.status_code == 204
            position = await _next(rws, "responder.location")
            assert position["call_id"] == call["id"]
            assert position["data"] == here
            # At most one every 5 s.
            await http.put(
                "/api/v1/me/location", json={**here, "lat": LAT + 0.002}, headers=responder.headers
            )
            with pytest.raises(TimeoutError):
                await _next(rws, "responder.location", wait=0.5)
            # Teammates of the responder never see it.
            with pytest.raises(TimeoutError):
                await _next(tws, "responder.location", wait=0.3)


async def test_a_teammate_hears_that_the_offer_closed_and_nothing_after(
    live_app: Factory, scene: dict[str, Any]
) -> None:
    team: SceneTeam = scene["team"]
    resident: Member = scene["resident"]
    responder, teammate = team.members[0], team.members[1]
    async with live_app() as lv:
        http = lv.http
        async with connect("/api/v1/ws", lv.sockets, headers=teammate.headers) as tws:
            await tws.send_text(json.dumps({"type": "ping"}))
            await _next(tws, "pong")
            call = await _press(http, resident)
            offer = await _next(tws, "offer.created")
            assert offer["call_id"] == call["id"]
            accepted = await http.post(
                f"/api/v1/offers/{offer['data']['id']}/accept", headers=responder.headers
            )
            assert accepted.status_code == 200, accepted.text
            closed = await _next(tws, "offer.closed")
            assert closed["data"]["id"] == offer["data"]["id"]
            assert closed["data"]["status"] == "accepted"
            moved = await http.post(
                f"/api/v1/calls/{call['id']}/progress",
                json={"status": "en_route", "note": "五分钟到"},
                headers=responder.headers,
            )
            assert moved.status_code == 200, moved.text
            # Their offer is closed: the call goes on without them.
            with contextlib.suppress(TimeoutError):
                while True:
                    message = await _next(tws, "call.updated", wait=0.7)
                    assert message["data"]["status"] in ("searching", "offered"), message


async def test_the_track_is_forgotten_when_the_call_ends(
    live_app: Factory, scene: dict[str, Any], engine: AsyncEngine
) -> None:
    team: SceneTeam = scene["team"]
    resident: Member = scene["resident"]
    responder = team.members[0]
    async with live_app() as lv:
        http = lv.http
        call = await _press(http, resident)
        offers = (await http.get("/api/v1/offers", headers=responder.headers)).json()["data"]
        offer = next(o for o in offers if o["call_id"] == call["id"])
        await http.post(f"/api/v1/offers/{offer['id']}/accept", headers=responder.headers)
        progress = f"/api/v1/calls/{call['id']}/progress"
        await http.post(progress, json={"status": "on_site"}, headers=responder.headers)
        here = {"lat": LAT + 0.0005, "lng": LNG, "accuracy_m": 5}
        assert (
            await http.put("/api/v1/me/location", json=here, headers=responder.headers)
        ).status_code == 204
        await http.post(progress, json={"status": "resolved"}, headers=responder.headers)

        query = (
            "SELECT count(*) FROM event WHERE call_id = :c AND (type = 'responder.location' "
            "OR jsonb_typeof(data -> 'responder' -> 'location') = 'object')"
        )
        async with engine.connect() as conn:
            left = (await conn.execute(text(query), {"c": call["id"]})).scalar_one()
        assert left == 0, "no position of the responder outlives the call"
        history = (
            await http.get(f"/api/v1/calls/{call['id']}/events", headers=resident.headers)
        ).json()["data"]
        assert [e["data"]["status"] for e in history][-1] == "resolved"


async def test_an_idle_socket_gets_heartbeats(live_app: Factory, scene: dict[str, Any]) -> None:
    resident: Member = scene["resident"]
    async with (
        live_app(ws_heartbeat_seconds=0.2) as lv,
        connect("/api/v1/ws", lv.sockets, headers=resident.headers) as ws,
    ):
        beats = [json.loads(await ws.receive_text(timeout=3)) for _ in range(2)]
    assert [b["type"] for b in beats] == ["heartbeat", "heartbeat"]
    assert all(b["at"] for b in beats)


async def test_ids_stay_in_order_across_commit_order_and_rollbacks(
    live_app: Factory, scene: dict[str, Any], engine: AsyncEngine
) -> None:
    resident: Member = scene["resident"]

    async def append_in(session: AsyncSession, call_id: uuid.UUID) -> int:
        # A call.updated of the call as it stands (the one way to write one).
        event_id = (await state.publish_call(session, call_id)).last_event_id
        assert event_id is not None
        return event_id

    async with live_app() as lv:
        hub: live.EventHub = lv.app.state.hub
        call_id, other_id = await _two_calls(lv.http, resident)
        async with (
            connect("/api/v1/ws", lv.sockets, headers=resident.headers) as ws,
            AsyncSession(engine) as hold,
            AsyncSession(engine) as first,
            AsyncSession(engine) as second,
            AsyncSession(engine) as doomed,
        ):
            await _settled(ws)
            # An unrelated writing transaction stays open all along: the hub
            # must not depend on the cluster's oldest transaction.
            await hold.execute(text("INSERT INTO rate_limit_hit (bucket) VALUES ('hold')"))

            early = await append_in(first, call_id)  # takes the lower id, not committed
            late = await append_in(second, other_id)
            read_before = hub.rows_read
            await second.commit()
            assert late > early
            # Held back behind the hole: nothing at or after `early` arrives.
            held: list[int] = []
            with contextlib.suppress(TimeoutError):
                while True:
                    held.append((await _next(ws, "call.updated", wait=0.5))["id"])
            assert all(i < early for i in held), (held, early, late)
            await first.commit()
            got: list[int] = []
            while len(got) < 2:
                message_id = (await _next(ws, "call.updated"))["id"]
                if message_id >= early:
                    got.append(message_id)
            assert got == [early, late]
            # The hole was rechecked every GAP_RECHECK_S for over half a
            # second; what was read past it (`late`) was not read again.
            assert hub.rows_read - read_before <= 2 + len(held), hub.rows_read - read_before

            # A rolled-back id is stepped over promptly.
            await append_in(doomed, call_id)
            await doomed.rollback()
            after = await append_in(second, other_id)
            await second.commit()
            message = await _next(ws, "call.updated", wait=2)
            while message["id"] < after:  # anything older still in flight
                message = await _next(ws, "call.updated", wait=2)
            assert message["id"] == after
            await hold.rollback()


async def test_a_long_hole_holds_back_a_bounded_number_of_events(
    live_app: Factory, scene: dict[str, Any], engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a hole holds, what is read past it waits in memory, up to
    `AHEAD_MAX` events; beyond that newer events stay in the table until
    the hole closes, and then all arrive, in order."""
    resident: Member = scene["resident"]
    monkeypatch.setattr(live, "AHEAD_MAX", 2)
    async with live_app() as lv:
        hub: live.EventHub = lv.app.state.hub
        call_id, other_id = await _two_calls(lv.http, resident)
        async with (
            connect("/api/v1/ws", lv.sockets, headers=resident.headers) as ws,
            AsyncSession(engine) as first,
        ):
            await _settled(ws)
            early = (await state.publish_call(first, call_id)).last_event_id
            assert early is not None
            read_before = hub.rows_read
            later: list[int] = []
            for _ in range(4):  # one at a time: each is read on its own
                async with AsyncSession(engine) as second:
                    event_id = (await state.publish_call(second, other_id)).last_event_id
                    await second.commit()
                assert event_id is not None
                later.append(event_id)
                await asyncio.sleep(0.15)
            assert hub.rows_read - read_before == 2  # AHEAD_MAX, then no more
            await first.commit()
            got = [(await _next(ws, "call.updated"))["id"] for _ in range(5)]
            assert got == [early, *later]
            assert hub.rows_read - read_before == 5  # each read once


async def test_writers_committing_out_of_order_each_event_arrives_once_in_order(
    live_app: Factory, scene: dict[str, Any], engine: AsyncEngine
) -> None:
    """Many writers at once, committing in a shuffled order, some rolling
    back: the socket gets every committed event once, in id order, and the
    hub reads each event row once however many holes it waited on."""
    resident: Member = scene["resident"]
    writers = 6
    rng = random.Random(13)

    async with live_app(max_open_calls_per_resident=writers) as lv:
        hub: live.EventHub = lv.app.state.hub
        calls = []
        for i in range(writers):  # a call each: one call's events are serialised
            spot = dict(zip(("lat", "lng"), offset(LAT, LNG, 0, 400 * i), strict=True))
            pressed = await lv.http.post(
                "/api/v1/calls", json={"location": spot}, headers=resident.headers
            )
            assert pressed.status_code == 201, pressed.text
            calls.append(uuid.UUID(pressed.json()["id"]))
        async with connect("/api/v1/ws", lv.sockets, headers=resident.headers) as ws:
            await _settled(ws)
            async with engine.connect() as conn:
                start = (await conn.execute(text("SELECT max(id) FROM event"))).scalar_one()
            read_before = hub.rows_read

            async def write(call_id: uuid.UUID, delay: float, keep: bool) -> int | None:
                async with AsyncSession(engine) as session:
                    event_id = (await state.publish_call(session, call_id)).last_event_id
                    await asyncio.sleep(delay)
                    if not keep:
                        await session.rollback()
                        return None
                    await session.commit()
                    return event_id

            committed: list[int] = []
            for _ in range(5):
                done = await asyncio.gather(
                    *(write(c, rng.uniform(0, 0.08), rng.random() > 0.25) for c in calls)
                )
                committed += [i for i in done if i is not None]
            got: list[int] = []
            while len(got) < len(committed):
                got.append((await _next(ws, "call.updated", wait=5))["id"])
            assert got == sorted(committed)
            async with engine.connect() as conn:
                since = text("SELECT count(*) FROM event WHERE id > :s")
                written = (await conn.execute(since, {"s": start})).scalar_one()
            assert written == len(committed)
            assert hub.rows_read - read_before == written


async def test_a_change_of_teams_or_area_ends_the_socket_as_logout_does(
    live_app: Factory, scene: dict[str, Any], engine: AsyncEngine
) -> None:
    """A socket does not go on with what its person may no longer see: a
    member taken off a team, a dispatcher moved to another area. It is
    closed with 4003 within the session check's interval; the client
    reconnects (with `resume`) under its new access."""
    team: SceneTeam = scene["team"]
    volunteer = team.members[1]
    async with live_app(ws_auth_recheck_seconds=0.2) as lv:
        async with connect("/api/v1/ws", lv.sockets, headers=volunteer.headers) as ws:
            await ws.send_text(json.dumps({"type": "ping"}))
            assert await _next(ws) == {"type": "pong"}
            with pytest.raises(TimeoutError):
                await _next(ws, wait=0.6)  # unchanged access: the socket stays
            async with engine.begin() as conn:
                await conn.execute(
                    text("DELETE FROM team_member WHERE person_id = :p"),
                    {"p": volunteer.person_id},
                )
            assert await _close_code(ws) == ws_module.CLOSE_ACCESS_CHANGED

        # Reconnected: the socket now serves the person as they are (no team).
        async with connect("/api/v1/ws", lv.sockets, headers=volunteer.headers) as ws:
            await ws.send_text(json.dumps({"type": "ping"}))
            assert await _next(ws) == {"type": "pong"}
            with pytest.raises(TimeoutError):
                await _next(ws, wait=0.6)


def _forgotten(event: dict[str, Any]) -> dict[str, Any]:
    """The event as stored once its call closed: no `at` (written +00:00 by the
    socket, Z by REST), no responder's position (forgotten at the close)."""
    data = event["data"]
    if event["type"] == "call.updated" and data["responder"] is not None:
        data = {**data, "responder": {**data["responder"], "location": None}}
    return {**event, "at": None, "data": data}


async def test_every_frame_matches_the_asyncapi_document(
    live_app: Factory, scene: dict[str, Any]
) -> None:
    """Real frames of a whole call (press, offer, accept, on the way, the
    responder's position, resolved), pongs, heartbeats and errors, each
    validated against openapi/asyncapi.json; and each event frame is the
    object GET /calls/{id}/events returns."""
    team: SceneTeam = scene["team"]
    resident: Member = scene["resident"]
    responder, teammate = team.members[0], team.members[1]
    validator = server_frame_validator()
    frames: dict[str, list[dict[str, Any]]] = {"resident": [], "responder": [], "teammate": []}

    async def until(ws: Any, who: str, done: Callable[[dict[str, Any]], bool]) -> None:
        # Heartbeats keep coming: a deadline of its own, not the read's timeout.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while loop.time() < deadline:
            frame = json.loads(await ws.receive_text(timeout=5))
            frames[who].append(frame)
            if done(frame):
                return
        raise AssertionError([f for f in frames[who] if f["type"] != "heartbeat"])

    def status(value: str) -> Callable[[dict[str, Any]], bool]:
        return lambda f: f["type"] == "call.updated" and f["data"]["status"] == value

    async with live_app(ws_heartbeat_seconds=0.2) as lv:
        http = lv.http
        async with (
            connect("/api/v1/ws", lv.sockets, headers=resident.headers) as rws,
            connect("/api/v1/ws", lv.sockets, headers=responder.headers) as vws,
            connect("/api/v1/ws", lv.sockets, headers=teammate.headers) as tws,
        ):
            for ws, who in ((rws, "resident"), (vws, "responder"), (tws, "teammate")):
                await ws.send_text(json.dumps({"type": "ping"}))
                await until(ws, who, lambda f: f["type"] == "pong")
                await ws.send_text("not json")
                await ws.send_text(json.dumps({"type": "resume", "after": -1}))
                await until(ws, who, lambda f: f.get("code") == "bad_resume")
                await until(ws, who, lambda f: f["type"] == "heartbeat")
            call = await _press(http, resident)
            await until(vws, "responder", lambda f: f["type"] == "offer.created")
            offer = frames["responder"][-1]["data"]
            accepted = await http.post(
                f"/api/v1/offers/{offer['id']}/accept", headers=responder.headers
            )
            assert accepted.status_code == 200
            await until(vws, "responder", status("accepted"))
            await until(tws, "teammate", lambda f: f["type"] == "offer.closed")
            here = {"lat": LAT + 0.001, "lng": LNG, "accuracy_m": 9}
            await http.put("/api/v1/me/location", json=here, headers=responder.headers)
            progress = f"/api/v1/calls/{call['id']}/progress"
            await http.post(progress, json={"status": "en_route"}, headers=responder.headers)
            await until(rws, "resident", status("en_route"))
            await http.put("/api/v1/me/location", json=here, headers=responder.headers)
            await until(rws, "resident", lambda f: f["type"] == "responder.location")
            for step in ({"status": "on_site"}, {"status": "resolved", "note": "好了"}):
                done = await http.post(progress, json=step, headers=responder.headers)
                assert done.status_code == 200, done.text
            await until(rws, "resident", status("resolved"))
            await until(vws, "responder", status("resolved"))

        for who in frames:
            for frame in frames[who]:
                errors = [e.message for e in validator.iter_errors(frame)]
                assert errors == [], (who, frame)
        # The caller's part never changes, so REST shows it what the socket did
        # (a member's does: offered, then responding).
        listed = (
            await http.get(f"/api/v1/calls/{call['id']}/events", headers=resident.headers)
        ).json()["data"]
        by_id = {event["id"]: event for event in listed}
        sent = [f for f in frames["resident"] if f.get("call_id") == call["id"]]
        assert {f["id"] for f in sent if f["type"] == "call.updated"} <= set(by_id)
        # Positions shared on the way are deleted when the call closes.
        for frame in (f for f in sent if f["id"] in by_id):
            # The same instant; the socket writes `at` as +00:00, REST as Z.
            rest = by_id[frame["id"]]
            assert datetime.fromisoformat(frame["at"]) == datetime.fromisoformat(rest["at"])
            assert _forgotten(frame) == _forgotten(rest), json.dumps([frame, rest])

    kinds = {f["type"] for sent in frames.values() for f in sent}
    assert kinds >= {"pong", "heartbeat", "error", *(kind.value for kind in EventType)}
    # The validator has teeth: a frame off the document fails.
    assert not validator.is_valid({"type": "pong", "extra": 1})
    assert not validator.is_valid({**frames["resident"][-1], "data": {"lat": 1}})


async def test_a_socket_that_connects_while_sessions_are_checked_stays_open(
    live_app: Factory,
    scene: dict[str, Any],
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The session check asks about the sockets it saw when it started; one
    that connected while the query ran (it was checked as it connected) is
    not in the answer and must not be taken for a dead session. The check's
    query is made slow here (pg_sleep), so the sockets connect during one."""
    slow = f"SELECT * FROM ({live._LIVE_SESSIONS}) AS alive, pg_sleep(0.3)"
    monkeypatch.setattr(live, "_LIVE_SESSIONS", slow)
    resident: Member = scene["resident"]
    async with live_app(ws_auth_recheck_seconds=0.05) as lv, contextlib.AsyncExitStack() as stack:
        async with AsyncSession(engine) as session:
            from app.identity.auth import start_session

            # A session each: each socket is its own row in the check.
            pairs = [
                await start_session(session, lv.app.state.settings, resident.person_id)
                for _ in range(6)
            ]
            await session.commit()
        sockets = []
        for pair in pairs:
            headers = {"Authorization": f"Bearer {pair.access_token}"}
            ws = await stack.enter_async_context(connect("/api/v1/ws", lv.sockets, headers=headers))
            await ws.send_text(json.dumps({"type": "ping"}))
            assert await _next(ws) == {"type": "pong"}
            sockets.append(ws)
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.8)  # at least two more checks
        for ws in sockets:
            await ws.send_text(json.dumps({"type": "ping"}))
            assert await _next(ws) == {"type": "pong"}, "the socket is still open"


async def test_an_idle_socket_keeps_no_task_and_is_forgotten_when_it_closes(
    live_app: Factory, scene: dict[str, Any]
) -> None:
    """Idle, a socket is its ASGI call and one object: no task of its own
    (its writer runs only while there is something to send), filed with the
    hub and the process's ticker, and dropped from both when it closes."""
    resident: Member = scene["resident"]
    volunteer = scene["team"].members[0]

    def own_tasks() -> list[asyncio.Task[Any]]:
        return [
            t
            for t in asyncio.all_tasks()
            if getattr(t.get_coro(), "__qualname__", "").startswith("LiveSocket.")
        ]

    async with live_app() as lv:
        hub: live.EventHub = lv.app.state.hub
        async with (
            connect("/api/v1/ws", lv.sockets, headers=resident.headers) as rws,
            connect("/api/v1/ws", lv.sockets, headers=volunteer.headers) as vws,
        ):
            for ws in (rws, vws):
                await ws.send_text(json.dumps({"type": "ping"}))
                assert await _next(ws) == {"type": "pong"}
            await _press(lv.http, resident)
            await _next(vws, "offer.created")
            await _status(rws, "offered")
            await asyncio.sleep(0.1)
            assert own_tasks() == []
            assert hub.subscriber_count == 2
            assert len(hub.ticker) == 2
        for _ in range(50):
            if hub.subscriber_count == 0 and len(hub.ticker) == 0:
                break
            await asyncio.sleep(0.05)
        assert (hub.subscriber_count, len(hub.ticker)) == (0, 0)
        assert own_tasks() == []
