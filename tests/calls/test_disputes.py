"""POST /calls/{id}/dispute: the caller sends a resolved call back to the
community's dispatchers, once, within DISPUTE_WINDOW_HOURS."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.areas import service as areas
from app.calls import retention, state
from app.calls.state import InvalidTransition
from app.core.config import Settings
from app.events import hub as live
from app.main import create_app
from app.models.call import CallCategory, CallStatus
from tests.conftest import make_settings
from tests.live import Ledger, committed_person, committed_team, live_app, park
from tests.principals import bearer, make_person, token_for
from tests.problems import assert_problem
from tests.scene import (
    Member,
    SceneTeam,
    clear_duty_near,
    make_resident,
    make_team,
    offset,
    tx_now,
)

LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}
REASON = "志愿者说修好了，其实没有修好"


@pytest.fixture
async def team(session: AsyncSession, settings: Settings) -> SceneTeam:
    await clear_duty_near(session, LAT, LNG, 5000)
    return await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)


async def _dispatcher(session: AsyncSession, settings: Settings) -> Member:
    """A dispatcher of the community the test's calls are in."""
    community = (await areas.locate_ids(session, LAT, LNG)).community
    person_id = await make_person(session, "社区调度")
    await session.execute(
        text("INSERT INTO dispatcher (person_id, area_id) VALUES (:p, :a)"),
        {"p": person_id, "a": community},
    )
    return Member(person_id, bearer(await token_for(session, settings, person_id)))


async def _accept_and_resolve(
    http: httpx.AsyncClient, call_id: str, member: Member
) -> dict[str, Any]:
    offers = (await http.get("/api/v1/offers?status=open", headers=member.headers)).json()
    offer = next(o for o in offers["data"] if o["call_id"] == call_id)
    accepted = await http.post(f"/api/v1/offers/{offer['id']}/accept", headers=member.headers)
    assert accepted.status_code == 200, accepted.text
    for step in ("en_route", "on_site", "resolved"):
        moved = await http.post(
            f"/api/v1/calls/{call_id}/progress", json={"status": step}, headers=member.headers
        )
        assert moved.status_code == 200, moved.text
    body: dict[str, Any] = moved.json()
    assert body["status"] == "resolved"
    return body


async def _resolved_call(
    http: httpx.AsyncClient, resident: Member, team: SceneTeam, category: str = "visit"
) -> dict[str, Any]:
    pressed = await http.post(
        "/api/v1/calls",
        json={"location": POINT, "category": category, "note": "水管漏水"},
        headers=resident.headers,
    )
    assert pressed.status_code == 201, pressed.text
    resolved = await _accept_and_resolve(http, pressed.json()["id"], team.members[1])
    assert resolved["disputed"] is False
    return resolved


async def _dispute(
    http: httpx.AsyncClient, call_id: str, who: Member, reason: str = REASON
) -> httpx.Response:
    return await http.post(
        f"/api/v1/calls/{call_id}/dispute", json={"reason": reason}, headers=who.headers
    )


async def test_a_dispute_sends_the_call_back_to_the_community(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    connection: AsyncConnection,
) -> None:
    resident = await make_resident(session, settings)
    dispatcher = await _dispatcher(session, settings)
    call = await _resolved_call(anon_client, resident, team)
    responder = team.members[1]

    disputed = await _dispute(anon_client, call["id"], resident)
    assert disputed.status_code == 200, disputed.text
    body = disputed.json()
    assert body["status"] == "escalated"
    assert body["escalation_level"] == "community"
    assert body["disputed"] is True
    assert body["responder"] is None, "nobody is on it until a dispatcher acts"
    assert body["team"] is None

    row = (
        await connection.execute(
            text(
                "SELECT dispute_reason, disputed_at IS NOT NULL AS disputed, closed_at, "
                "escalated_at IS NOT NULL AS escalated FROM call WHERE id = :id"
            ),
            {"id": call["id"]},
        )
    ).one()
    assert row.dispute_reason == REASON
    assert row.disputed
    assert row.escalated
    assert row.closed_at is None, "a disputed call is open again"
    activity = (
        await connection.execute(
            text("SELECT person_id, disputed FROM activity WHERE call_id = :c"), {"c": call["id"]}
        )
    ).one()
    assert activity == (responder.person_id, True)

    # The event, with the reason as its note, for the caller and the dispatcher.
    for who in (resident, dispatcher):
        events = (
            await anon_client.get(f"/api/v1/calls/{call['id']}/events", headers=who.headers)
        ).json()["data"]
        last = events[-1]
        assert last["type"] == "call.updated"
        assert last["data"]["status"] == "escalated"
        assert last["data"]["disputed"] is True
        assert last["note"] == REASON
        assert last["id"] == body["last_event_id"]
        # Earlier snapshots stay as they were: not disputed then.
        earlier = [e for e in events[:-1] if e["type"] == "call.updated"]
        assert earlier
        assert all(e["data"]["disputed"] is False for e in earlier)
        seen = (await anon_client.get(f"/api/v1/calls/{call['id']}", headers=who.headers)).json()
        assert seen["disputed"] is True

    # The community's dispatchers are told, as of any escalation, in words
    # that say why; the resident is told it went to the community.
    alerts = (await anon_client.get("/api/v1/me/notifications", headers=dispatcher.headers)).json()[
        "data"
    ]
    escalation = next(a for a in alerts if a["call_id"] == call["id"])
    assert escalation["kind"] == "escalation"
    assert "异议" in escalation["body"]
    assert REASON not in escalation["body"], "no personal text in alerts"
    mine = (await anon_client.get("/api/v1/me/notifications", headers=resident.headers)).json()
    assert mine["data"][0]["call_id"] == call["id"]
    assert mine["data"][0]["kind"] == "call_status"

    # The former responder no longer sees the note nor the exact point.
    former = (
        await anon_client.get(f"/api/v1/calls/{call['id']}", headers=responder.headers)
    ).json()
    assert former["note"] is None
    assert former["location"]["accuracy_m"] == 100.0

    # What the dispatchers do next is the escalated flow: another team this time.
    other = await make_team(session, settings, *offset(LAT, LNG, -60, -50), name="第二队")
    assigned = await anon_client.post(
        f"/api/v1/dispatch/calls/{call['id']}/assign",
        json={"team_id": str(other.id)},
        headers=dispatcher.headers,
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "offered"
    assert assigned.json()["disputed"] is True
    again = await _accept_and_resolve(anon_client, call["id"], other.members[0])
    assert again["responder"]["id"] == str(other.members[0].person_id)
    assert again["disputed"] is True, "a call once disputed says so"
    closed = (
        await connection.execute(
            text("SELECT closed_at IS NOT NULL FROM call WHERE id = :id"), {"id": call["id"]}
        )
    ).scalar_one()
    assert closed
    # The call is an activity of each member who resolved it; only the first
    # one is disputed.
    activities = (
        await connection.execute(
            text("SELECT person_id, disputed FROM activity WHERE call_id = :c ORDER BY disputed"),
            {"c": call["id"]},
        )
    ).all()
    assert [tuple(a) for a in activities] == [
        (other.members[0].person_id, False),
        (responder.person_id, True),
    ]

    # Once only.
    twice = await _dispute(anon_client, call["id"], resident)
    assert_problem(twice, 409, "already_disputed")


async def test_after_the_window_the_dispute_is_refused(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    connection: AsyncConnection,
) -> None:
    resident = await make_resident(session, settings)
    late = await _resolved_call(anon_client, resident, team)
    hours = settings.dispute_window_hours
    await session.execute(
        text("UPDATE call SET closed_at = now() - make_interval(hours => :h) WHERE id = :id"),
        {"h": hours + 1, "id": late["id"]},
    )
    refused = await _dispute(anon_client, late["id"], resident)
    assert_problem(refused, 409, "dispute_window_closed")
    status = (
        await connection.execute(
            text("SELECT status, disputed_at FROM call WHERE id = :id"), {"id": late["id"]}
        )
    ).one()
    assert status == ("resolved", None)

    # Just inside the window it is taken.
    await session.execute(
        text("UPDATE call SET closed_at = now() - make_interval(hours => :h) WHERE id = :id"),
        {"h": hours - 1, "id": late["id"]},
    )
    taken = await _dispute(anon_client, late["id"], resident)
    assert taken.status_code == 200, taken.text
    assert taken.json()["disputed"] is True


async def test_only_the_caller_disputes_and_only_a_resolved_call(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
) -> None:
    resident = await make_resident(session, settings)
    stranger = await make_resident(session, settings)
    dispatcher = await _dispatcher(session, settings)
    call = await _resolved_call(anon_client, resident, team)

    assert_problem(await _dispute(anon_client, call["id"], stranger), 404, "not_found")
    assert_problem(await _dispute(anon_client, call["id"], team.members[1]), 403, "not_the_caller")
    assert_problem(await _dispute(anon_client, call["id"], dispatcher), 403, "not_the_caller")
    empty = await anon_client.post(
        f"/api/v1/calls/{call['id']}/dispute", json={"reason": ""}, headers=resident.headers
    )
    assert_problem(empty, 422, "validation_error")
    missing = await anon_client.post(
        f"/api/v1/calls/{call['id']}/dispute", json={}, headers=resident.headers
    )
    assert_problem(missing, 422, "validation_error")

    pressed = await anon_client.post(
        "/api/v1/calls", json={"location": POINT}, headers=stranger.headers
    )
    assert pressed.json()["status"] == "offered"
    open_call = await _dispute(anon_client, pressed.json()["id"], stranger)
    assert_problem(open_call, 409, "invalid_transition")


async def test_the_state_machine_leaves_resolved_only_by_a_dispute(
    session: AsyncSession,
) -> None:
    resident = await make_person(session, "状态机争议")
    where = await areas.locate_ids(session, LAT, LNG)
    call_id = uuid.uuid4()
    await state.insert(
        session,
        call_id,
        resident=resident,
        category=CallCategory.visit,
        note=None,
        lat=LAT,
        lng=LNG,
        accuracy=None,
        grid=where.grid,
        grid_name=where.grid_name,
        at=await tx_now(session),
        community=where.community,
        street=where.street,
    )
    await session.execute(
        text("UPDATE call SET status = 'resolved', closed_at = now() WHERE id = :id"),
        {"id": call_id},
    )
    call = await state.lock_call(session, call_id)
    assert call is not None
    assert {CallStatus.resolved: CallStatus.escalated} == state.REOPENINGS
    with pytest.raises(InvalidTransition):
        await state.transition(session, call, CallStatus.escalated, escalation_level="community")
    moved = await state.reopen_disputed(session, call, "原因", timedelta(hours=1))
    assert moved.status is CallStatus.escalated
    assert moved.escalation_level.value == "community"


async def test_anonymising_drops_the_reason_and_keeps_the_fact(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    connection: AsyncConnection,
) -> None:
    resident = await make_resident(session, settings)
    dispatcher = await _dispatcher(session, settings)
    call = await _resolved_call(anon_client, resident, team)
    assert (await _dispute(anon_client, call["id"], resident)).status_code == 200
    # A dispatcher closes it (cancelled), long ago as far as retention knows.
    cancelled = await anon_client.post(
        f"/api/v1/calls/{call['id']}/cancel", json={}, headers=dispatcher.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    await session.execute(
        text("UPDATE call SET closed_at = '2000-01-01T00:00:00Z' WHERE id = :id"),
        {"id": call["id"]},
    )
    assert await retention.anonymise_closed(session, settings) >= 1
    row = (
        await connection.execute(
            text(
                "SELECT dispute_reason, disputed_at IS NOT NULL AS disputed, anonymised_at "
                "FROM call WHERE id = :id"
            ),
            {"id": call["id"]},
        )
    ).one()
    assert row.dispute_reason is None
    assert row.disputed
    assert row.anonymised_at is not None
    notes = (
        await connection.execute(
            text("SELECT count(*) FROM event WHERE call_id = :id AND note IS NOT NULL"),
            {"id": call["id"]},
        )
    ).scalar_one()
    assert notes == 0


# ---- the live stream (committed: the hub reads what other transactions commit) ----------

SPOT = offset(22.775, 113.935, 0, 0)


def _socket(
    client: httpx.AsyncClient, who: Member
) -> AbstractAsyncContextManager[AsyncWebSocketSession]:
    return aconnect_ws("/api/v1/ws", client, headers=dict(who.headers))


async def _next_status(ws: Any, status: str, wait: float = 5.0) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await ws.receive_text(timeout=wait))
        if message.get("type") == "call.updated" and message["data"]["status"] == status:
            return message


async def test_the_dispute_reaches_the_caller_and_the_dispatchers_sockets(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    settings = make_settings(database_url)
    lat, lng = SPOT
    await park(engine, ledger, lat, lng, 5000)
    team = await committed_team(engine, settings, ledger, lat, lng, name="争议队")
    resident = await committed_person(engine, settings, ledger)
    async with AsyncSession(engine) as session:
        community = (await areas.locate_ids(session, lat, lng)).community
    dispatcher = await committed_person(
        engine, settings, ledger, "争议调度", dispatcher_of=community
    )
    app = create_app(settings)
    async with LifespanManager(app):
        hub: live.EventHub = app.state.hub
        await asyncio.wait_for(hub.connected.wait(), 5)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
            httpx.AsyncClient(transport=ASGIWebSocketTransport(app), base_url="http://t") as ws,
        ):
            pressed = await http.post(
                "/api/v1/calls",
                json={"location": {"lat": lat, "lng": lng}, "category": "hardship"},
                headers=resident.headers,
            )
            assert pressed.status_code == 201, pressed.text
            call_id = pressed.json()["id"]
            resolved = await _accept_and_resolve(http, call_id, team.members[0])
            after = resolved["last_event_id"]
            async with (
                _socket(ws, resident) as mine,
                _socket(ws, dispatcher) as theirs,
            ):
                sockets: tuple[AsyncWebSocketSession, ...] = (mine, theirs)
                for socket in sockets:
                    await socket.send_text(json.dumps({"type": "resume", "after": after}))
                disputed = await _dispute(http, call_id, resident)
                assert disputed.status_code == 200, disputed.text
                for socket in sockets:
                    event = await _next_status(socket, "escalated")
                    assert event["call_id"] == call_id
                    assert event["data"]["disputed"] is True
                    assert event["data"]["escalation_level"] == "community"
                    assert event["note"] == REASON
                    assert event["id"] == disputed.json()["last_event_id"]


async def test_two_disputes_at_once_one_is_taken(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    """A double tap on "dispute": the call's row lock decides, once."""
    settings = make_settings(database_url)
    lat, lng = offset(*SPOT, 0, 600)
    await park(engine, ledger, lat, lng, 5000)
    team = await committed_team(engine, settings, ledger, lat, lng, name="双击队")
    resident = await committed_person(engine, settings, ledger)
    async with live_app(settings) as (_, http):
        pressed = await http.post(
            "/api/v1/calls", json={"location": {"lat": lat, "lng": lng}}, headers=resident.headers
        )
        assert pressed.status_code == 201, pressed.text
        call_id = pressed.json()["id"]
        await _accept_and_resolve(http, call_id, team.members[0])
        answers = await asyncio.gather(
            _dispute(http, call_id, resident), _dispute(http, call_id, resident)
        )
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert_problem(next(a for a in answers if a.status_code == 409), 409, "already_disputed")
    async with engine.connect() as conn:
        events = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM event WHERE call_id = :c AND type = 'call.updated' "
                    "AND data ->> 'status' = 'escalated'"
                ),
                {"c": call_id},
            )
        ).scalar_one()
    assert events == 1
