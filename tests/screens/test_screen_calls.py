"""Public screens: registering them, their call button, its guards, and the
texts to a walk-up caller (docs/dispatch-platform.md, "Calls from screens
and other systems")."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.areas import service as areas
from app.core.config import Settings
from app.identity.auth import PersonPrincipal
from app.identity.sms import ConsoleSms, SmsUnavailable
from app.main import create_app
from app.models.geo import Point
from app.models.screen import ScreenCreate
from app.notifications import sms_worker
from app.screens import service as screens
from tests.conftest import make_settings
from tests.live import delete_committed
from tests.principals import bearer, make_person, token_for
from tests.problems import assert_problem
from tests.scene import SceneTeam, clear_duty_near, make_team, offset

LAT, LNG = 22.77, 113.93
SCREEN_AT = {"lat": LAT, "lng": LNG}


class RecordingSms:
    """An SMS backend that keeps what it was asked to send (or fails)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.texts: list[tuple[str, str, str]] = []

    async def send_code(self, phone_e164: str, code: str, ttl_seconds: int) -> str | None:
        return None

    async def send_text(self, phone_e164: str, message: str, purpose: str) -> None:
        if self.fail:
            raise SmsUnavailable("down")
        self.texts.append((phone_e164, message, purpose))

    async def close(self) -> None:
        return None


@pytest.fixture
async def team(session: AsyncSession, settings: Settings) -> SceneTeam:
    await clear_duty_near(session, LAT, LNG, 5000)
    return await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)


async def _admin(session: AsyncSession, settings: Settings) -> dict[str, str]:
    admin = await make_person(session, "管理员", is_admin=True)
    return bearer(await token_for(session, settings, admin))


async def _dispatcher(
    session: AsyncSession, settings: Settings, area_id: uuid.UUID
) -> dict[str, str]:
    person = await make_person(session, "调度员")
    await session.execute(
        text("INSERT INTO dispatcher (person_id, area_id) VALUES (:p, :a)"),
        {"p": person, "a": area_id},
    )
    return bearer(await token_for(session, settings, person))


async def _register(
    http: httpx.AsyncClient, headers: dict[str, str], area_id: uuid.UUID, **point: Any
) -> httpx.Response:
    return await http.post(
        "/api/v1/admin/screens",
        json={"name": "党群服务中心大堂", "area_id": str(area_id), "location": point or SCREEN_AT},
        headers=headers,
    )


@pytest.fixture
async def screen(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> dict[str, str]:
    here = await areas.locate_ids(session, LAT, LNG)
    made = await _register(anon_client, await _admin(session, settings), here.community)
    assert made.status_code == 201, made.text
    body: dict[str, str] = made.json()
    return body


async def _press(
    http: httpx.AsyncClient, screen: dict[str, str], key: str | None = None, **body: Any
) -> httpx.Response:
    headers = {"X-Screen-Key": key if key is not None else screen["key"]}
    return await http.post(
        f"/api/v1/public/screens/{screen['id']}/calls", json=body, headers=headers
    )


async def test_a_screen_press_reaches_a_volunteer_as_an_offer(
    anon_client: httpx.AsyncClient, session: AsyncSession, team: SceneTeam, screen: dict[str, str]
) -> None:
    pressed = await _press(anon_client, screen, category="safety", note="路口井盖松动")
    assert pressed.status_code == 201, pressed.text
    call = pressed.json()
    assert call["status"] == "offered"
    assert call["location"]["lat"] == pytest.approx(LAT)
    assert call["location"]["lng"] == pytest.approx(LNG)
    assert call["team"]["id"] == str(team.id)
    offers = (
        await anon_client.get("/api/v1/offers?status=open", headers=team.members[0].headers)
    ).json()
    assert [o["category"] for o in offers["data"] if o["call_id"] == call["id"]] == ["safety"]
    row = (
        await session.execute(
            text("SELECT resident_id, screen_id, api_key_id FROM call WHERE id = :id"),
            {"id": call["id"]},
        )
    ).one()
    assert row.resident_id is None, "no phone left: no resident"
    assert str(row.screen_id) == screen["id"]
    assert row.api_key_id is None


async def test_wrong_missing_and_revoked_keys_are_refused(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    screen: dict[str, str],
) -> None:
    assert_problem(await _press(anon_client, screen, key="hs_wrong"), 401, "invalid_screen_key")
    missing = await anon_client.post(f"/api/v1/public/screens/{screen['id']}/calls", json={})
    assert_problem(missing, 401, "invalid_screen_key")
    other = {"id": str(uuid.uuid4()), "key": screen["key"]}
    assert_problem(await _press(anon_client, other), 401, "invalid_screen_key")

    assert (await _press(anon_client, screen)).status_code == 201
    admin = await _admin(session, settings)
    revoked = await anon_client.delete(f"/api/v1/admin/screens/{screen['id']}", headers=admin)
    assert revoked.status_code == 204
    assert_problem(await _press(anon_client, screen), 401, "invalid_screen_key")
    again = await anon_client.delete(f"/api/v1/admin/screens/{screen['id']}", headers=admin)
    assert_problem(again, 404, "not_found")


async def test_a_double_tap_at_a_screen_answers_the_same_call(
    anon_client: httpx.AsyncClient, team: SceneTeam, screen: dict[str, str]
) -> None:
    first = await _press(anon_client, screen)
    # Another passer-by's phone within the window: still the first press.
    second = await _press(anon_client, screen, phone="13800138123")
    assert first.status_code == 201
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]


async def test_a_screen_is_rate_limited(
    anon_client: httpx.AsyncClient, app: Any, screen: dict[str, str]
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"screen_calls_per_hour": 2, "double_tap_seconds": 0}
    )
    for _ in range(2):
        assert (await _press(anon_client, screen)).status_code == 201
    refused = await _press(anon_client, screen)
    assert_problem(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) > 0


async def test_registering_a_screen_is_for_staff_in_their_area(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    here = await areas.locate_ids(session, LAT, LNG)
    elsewhere = (
        await session.execute(
            text("SELECT id FROM area WHERE level = 'community' AND id <> :c LIMIT 1"),
            {"c": here.community},
        )
    ).scalar_one()
    mine = await _dispatcher(session, settings, here.community)
    made = await _register(anon_client, mine, here.grid)
    assert made.status_code == 201, made.text
    assert made.json()["key"].startswith("hs_")
    # Above its area (the street) or in another community: refused.
    assert_problem(await _register(anon_client, mine, here.street), 403, "outside_your_area")
    other = await _dispatcher(session, settings, elsewhere)
    assert_problem(await _register(anon_client, other, here.community), 403, "outside_your_area")
    # The location must lie in the area.
    admin = await _admin(session, settings)
    assert_problem(await _register(anon_client, admin, elsewhere), 422, "location_outside_area")
    outside = await _register(anon_client, admin, here.street, lat=0.0, lng=0.0)
    assert_problem(outside, 422, "outside_service_area")
    resident = bearer(await token_for(session, settings, await make_person(session, "居民")))
    assert_problem(await _register(anon_client, resident, here.grid), 403, "not_staff")
    # Another dispatcher cannot revoke it.
    refused = await anon_client.delete(f"/api/v1/admin/screens/{made.json()['id']}", headers=other)
    assert_problem(refused, 404, "not_found")


async def _respond(http: httpx.AsyncClient, team: SceneTeam, call_id: str) -> dict[str, str]:
    member = team.members[0].headers
    offers = (await http.get("/api/v1/offers?status=open", headers=member)).json()["data"]
    offer = next(o for o in offers if o["call_id"] == call_id)
    accepted = await http.post(f"/api/v1/offers/{offer['id']}/accept", headers=member)
    assert accepted.status_code == 200, accepted.text
    return member


async def _progress(
    http: httpx.AsyncClient, member: dict[str, str], call_id: str, *steps: str
) -> None:
    for step in steps:
        moved = await http.post(
            f"/api/v1/calls/{call_id}/progress", json={"status": step}, headers=member
        )
        assert moved.status_code == 200, moved.text


async def test_a_phone_left_at_a_screen_is_texted_the_acceptance_and_the_resolution(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    screen: dict[str, str],
) -> None:
    pressed = await _press(anon_client, screen, phone="13800138000")
    assert pressed.status_code == 201, pressed.text
    call_id = pressed.json()["id"]
    sms = RecordingSms()
    assert await sms_worker.send_in_session(session, settings, sms) == 0, "nothing before accept"

    member = await _respond(anon_client, team, call_id)
    assert await sms_worker.send_in_session(session, settings, sms) == 1
    await _progress(anon_client, member, call_id, "en_route", "on_site")
    assert await sms_worker.send_in_session(session, settings, sms) == 0
    await _progress(anon_client, member, call_id, "resolved")
    assert await sms_worker.send_in_session(session, settings, sms) == 1
    assert [(phone, purpose) for phone, _, purpose in sms.texts] == [
        ("+8613800138000", "accepted"),
        ("+8613800138000", "resolved"),
    ]
    assert sms.texts[0][1] == settings.sms_call_accepted_text
    assert "接单" in sms.texts[0][1]
    assert "办结" in sms.texts[1][1]

    # The phone's person is the call's resident: logged in, they see it.
    person = (
        await session.execute(text("SELECT resident_id FROM call WHERE id = :id"), {"id": call_id})
    ).scalar_one()
    mine = bearer(await token_for(session, settings, person))
    seen = await anon_client.get(f"/api/v1/calls/{call_id}", headers=mine)
    assert seen.status_code == 200
    assert seen.json()["status"] == "resolved"
    rated = await anon_client.post(
        f"/api/v1/calls/{call_id}/rating", json={"stars": 5}, headers=mine
    )
    assert rated.status_code == 201, rated.text


async def test_no_text_without_a_phone(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    screen: dict[str, str],
) -> None:
    call_id = (await _press(anon_client, screen)).json()["id"]
    member = await _respond(anon_client, team, call_id)
    await _progress(anon_client, member, call_id, "en_route", "on_site", "resolved")
    sms = RecordingSms()
    assert await sms_worker.send_in_session(session, settings, sms) == 0
    assert sms.texts == []
    queued = (
        await session.execute(
            text("SELECT count(*) FROM sms_outbox WHERE call_id = :id"), {"id": call_id}
        )
    ).scalar_one()
    assert queued == 0


async def test_a_failed_text_loses_neither_the_call_nor_the_text(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    screen: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    call_id = (await _press(anon_client, screen, phone="13800138001")).json()["id"]
    await _respond(anon_client, team, call_id)
    assert await sms_worker.send_in_session(session, settings, RecordingSms(fail=True)) == 1
    row = (
        await session.execute(
            text(
                "SELECT s.status, s.attempts, s.last_error, c.status AS call_status "
                "FROM sms_outbox s JOIN call c ON c.id = s.call_id WHERE s.call_id = :id"
            ),
            {"id": call_id},
        )
    ).one()
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "send_failed")
    assert row.call_status == "accepted"
    # Due again (the backoff passed): the console backend sends it, masked in its log.
    await session.execute(
        text("UPDATE sms_outbox SET next_attempt_at = now() WHERE call_id = :id"), {"id": call_id}
    )
    with caplog.at_level(logging.INFO, logger="hulian.sms"):
        assert await sms_worker.send_in_session(session, settings, ConsoleSms(reveal=False)) == 1
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "138****8001" in logged
    assert "13800138001" not in logged
    status = (
        await session.execute(
            text("SELECT status FROM sms_outbox WHERE call_id = :id"), {"id": call_id}
        )
    ).scalar_one()
    assert status == "sent"


@pytest.fixture
async def committed_screen(engine: AsyncEngine, database_url: str) -> AsyncIterator[dict[str, Any]]:
    """A screen with a team on duty beside it, committed; removed after."""
    settings = make_settings(database_url)
    lat, lng = offset(22.765, 113.925, 0, 0)
    async with AsyncSession(engine) as session:
        team = await make_team(session, settings, lat, lng, members=2, name="屏旁队")
        here = await areas.locate_ids(session, lat, lng)
        admin = await make_person(session, "屏幕管理员", is_admin=True)
        actor = PersonPrincipal(
            person_id=admin,
            session_id=uuid.uuid4(),
            display_name="屏幕管理员",
            phone="+8613800000000",
            is_admin=True,
            teams=(),
            dispatcher_area=None,
        )
        made = await screens.create(
            session,
            actor,
            ScreenCreate(name="并发屏", area_id=here.community, location=Point(lat=lat, lng=lng)),
        )
        await session.commit()
    yield {"id": str(made.id), "key": made.key}
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM call WHERE screen_id = :s"), {"s": made.id})
        await delete_committed(conn, [m.person_id for m in team.members], [team.id])
        await conn.execute(text("DELETE FROM screen WHERE id = :s"), {"s": made.id})
        await conn.execute(text("DELETE FROM person WHERE id = :p"), {"p": admin})
        await conn.execute(
            text("DELETE FROM rate_limit_hit WHERE bucket = :b"), {"b": f"screen-calls:{made.id}"}
        )


async def test_two_presses_at_once_at_a_screen_open_one_call(
    database_url: str, committed_screen: dict[str, Any]
) -> None:
    """Two presses at the same moment, each on its own connection: the
    screen's lock lets one open the call, the other finds it (a double tap)."""
    app = create_app(make_settings(database_url))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        both = await asyncio.gather(_press(http, committed_screen), _press(http, committed_screen))
    assert sorted(r.status_code for r in both) == [200, 201], [r.text for r in both]
    assert both[0].json()["id"] == both[1].json()["id"]


async def _follow(
    http: httpx.AsyncClient, screen: dict[str, str], call_id: str, key: str | None = None
) -> httpx.Response:
    headers = {"X-Screen-Key": key if key is not None else screen["key"]}
    return await http.get(f"/api/v1/public/screens/{screen['id']}/calls/{call_id}", headers=headers)


async def test_a_screen_follows_its_call_to_the_name_of_the_team_that_took_it(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    team: SceneTeam,
    screen: dict[str, str],
) -> None:
    pressed = await _press(anon_client, screen, phone="13800138001", note="门口有老人摔倒")
    call_id = pressed.json()["id"]
    offered = await _follow(anon_client, screen, call_id)
    assert offered.status_code == 200, offered.text
    # Offered is not taken: the team may still decline it.
    assert offered.json() == {"status": "offered", "team": None}

    member = await _respond(anon_client, team, call_id)
    name = (
        await session.execute(text("SELECT name FROM team WHERE id = :t"), {"t": team.id})
    ).scalar_one()
    assert (await _follow(anon_client, screen, call_id)).json() == {
        "status": "accepted",
        "team": name,
    }
    await _progress(anon_client, member, call_id, "en_route")
    taken = await _follow(anon_client, screen, call_id)
    # Only the status and the team's name: no phone, note, point or person.
    assert taken.json() == {"status": "en_route", "team": name}


async def test_a_screen_follows_only_its_own_recent_calls_with_its_key(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    screen: dict[str, str],
) -> None:
    call_id = (await _press(anon_client, screen)).json()["id"]
    assert_problem(
        await _follow(anon_client, screen, call_id, key="hs_wrong"), 401, "invalid_screen_key"
    )
    missing = await anon_client.get(f"/api/v1/public/screens/{screen['id']}/calls/{call_id}")
    assert_problem(missing, 401, "invalid_screen_key")

    # Another screen, with its own good key, cannot follow this one's call.
    here = await areas.locate_ids(session, LAT, LNG)
    other = (await _register(anon_client, await _admin(session, settings), here.community)).json()
    assert_problem(await _follow(anon_client, other, call_id), 404, "not_found")
    # Nor anybody's call pressed in the app.
    resident = bearer(await token_for(session, settings, await make_person(session, "居民")))
    own = await anon_client.post(
        "/api/v1/calls",
        json={"location": {"lat": LAT + 0.001, "lng": LNG}, "category": "visit"},
        headers=resident,
    )
    assert own.status_code == 201, own.text
    assert_problem(await _follow(anon_client, screen, own.json()["id"]), 404, "not_found")

    # Past the window, its own call is gone from it too.
    assert (await _follow(anon_client, screen, call_id)).status_code == 200
    await session.execute(
        text("UPDATE call SET created_at = now() - make_interval(secs => :s) WHERE id = :id"),
        {"s": settings.screen_call_follow_seconds + 1, "id": call_id},
    )
    assert_problem(await _follow(anon_client, screen, call_id), 404, "not_found")
