"""Who is alerted of what, through the real API flow, and `GET
/me/notifications`: every alert sent to the caller, newest first."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.calls import state
from app.core.config import Settings
from app.dispatch import policy as dispatch
from app.dispatch.sweeper import expire_offers
from app.models.call import CallStatus, EscalationLevel, OfferStatus
from app.notifications import alerts
from app.notifications.push import LogPushSender
from app.notifications.push.worker import push_in_session
from tests.notifications.test_push import register
from tests.principals import bearer, make_person, token_for
from tests.problems import assert_problem
from tests.scene import Member, SceneTeam, clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}
NOTIFICATIONS = "/api/v1/me/notifications"


async def press(
    http: httpx.AsyncClient, who: Member, point: dict[str, Any] | None = None
) -> dict[str, Any]:
    answer = await http.post(
        "/api/v1/calls",
        json={"location": point or POINT, "category": "urgent", "note": "私人备注"},
        headers=who.headers,
    )
    assert answer.status_code == 201, answer.text
    call: dict[str, Any] = answer.json()
    return call


async def offer_of(http: httpx.AsyncClient, member: Member, call_id: str) -> dict[str, Any]:
    offers = (await http.get("/api/v1/offers", headers=member.headers)).json()["data"]
    offer: dict[str, Any] = next(o for o in offers if o["call_id"] == call_id)
    return offer


async def accept(http: httpx.AsyncClient, member: Member, offer_id: str) -> dict[str, Any]:
    """The member accepts the offer; the call as they now see it."""
    answer = await http.post(f"/api/v1/offers/{offer_id}/accept", headers=member.headers)
    assert answer.status_code == 200, answer.text
    call: dict[str, Any] = answer.json()
    return call


async def step(
    http: httpx.AsyncClient, who: Member, call_id: str, status: str, note: str | None = None
) -> dict[str, Any]:
    """A progress step (with a note, when given); the call as `who` now sees it."""
    body = {"status": status} if note is None else {"status": status, "note": note}
    answer = await http.post(f"/api/v1/calls/{call_id}/progress", json=body, headers=who.headers)
    assert answer.status_code == 200, answer.text
    call: dict[str, Any] = answer.json()
    return call


async def alerted(session: AsyncSession, **where: Any) -> list[Any]:
    """Notifications matching `where` (columns of `notification`), oldest first."""
    clauses = " AND ".join(f"n.{column} = :{column}" for column in where)
    rows = await session.execute(
        text(f"SELECT n.* FROM notification n WHERE {clauses} ORDER BY n.created_at, n.id"),
        where,
    )
    return list(rows.all())


async def pushes(session: AsyncSession, notification_ids: list[uuid.UUID]) -> list[Any]:
    rows = await session.execute(
        text("SELECT * FROM push_delivery WHERE notification_id = ANY(:ids) ORDER BY device_token"),
        {"ids": notification_ids},
    )
    return list(rows.all())


async def send_pending(session: AsyncSession, settings: Settings) -> None:
    await push_in_session(session, settings, LogPushSender())


@pytest.fixture
async def team(session: AsyncSession, settings: Settings) -> SceneTeam:
    await clear_duty_near(session, LAT, LNG, 5000)
    return await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)


def token_of(member: Member) -> str:
    return f"device-{member.person_id.hex}"


async def test_an_offer_alerts_every_free_on_duty_member(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=4, on_duty=3)
    m0, m1, m2, off_duty = team.members
    await register(anon_client, m0, token_of(m0), "android")
    await register(anon_client, m1, token_of(m1), "ios")
    await register(anon_client, off_duty, token_of(off_duty), "android")  # m2: no device

    first = await press(anon_client, await make_resident(session, settings))
    offer = await offer_of(anon_client, m0, first["id"])
    sent = await alerted(session, offer_id=uuid.UUID(offer["id"]))
    assert {n.person_id for n in sent} == {m0.person_id, m1.person_id, m2.person_id}
    assert {n.kind for n in sent} == {"offer"}
    assert {(n.title, n.body) for n in sent} == {("附近有新的求助", "紧急求助：请尽快查看并接单。")}
    assert {n.call_id for n in sent} == {uuid.UUID(first["id"])}
    deliveries = await pushes(session, [n.id for n in sent])
    assert {(d.device_token, d.platform) for d in deliveries} == {
        (token_of(m0), "android"),
        (token_of(m1), "ios"),
    }
    expires = (
        await session.execute(text("SELECT expires_at FROM offer WHERE id = :id"), offer)
    ).scalar_one()
    for delivery in deliveries:
        assert delivery.status == "pending"
        assert delivery.collapse_key == f"call-{first['id']}"
        assert delivery.expires_at == expires, "TTL: the offer's time left"
        assert delivery.backend is None

    # m0 takes the first call and is busy: the next offer of the team skips them.
    taken = await anon_client.post(f"/api/v1/offers/{offer['id']}/accept", headers=m0.headers)
    assert taken.status_code == 200, taken.text
    second = await press(anon_client, await make_resident(session, settings))
    next_offer = await offer_of(anon_client, m1, second["id"])
    assert next_offer["team"]["id"] == str(team.id)
    sent = await alerted(session, offer_id=uuid.UUID(next_offer["id"]), kind="offer")
    assert {n.person_id for n in sent} == {m1.person_id, m2.person_id}


async def test_a_taken_offer_is_withdrawn_from_the_others(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, team: SceneTeam
) -> None:
    for member in team.members:
        await register(anon_client, member, token_of(member), "android")
    call = await press(anon_client, await make_resident(session, settings))
    taker, *others = team.members
    offer = await offer_of(anon_client, taker, call["id"])
    await send_pending(session, settings)  # the offer has reached every phone

    taken = await anon_client.post(f"/api/v1/offers/{offer['id']}/accept", headers=taker.headers)
    assert taken.status_code == 200, taken.text
    closed = await alerted(session, offer_id=uuid.UUID(offer["id"]), kind="offer_closed")
    assert {n.person_id for n in closed} == {m.person_id for m in others}, "not the taker"
    assert {n.body for n in closed} == {"这条求助已由队友接单。"}
    withdrawals = await pushes(session, [n.id for n in closed])
    assert {d.device_token for d in withdrawals} == {token_of(m) for m in others}
    assert {d.collapse_key for d in withdrawals} == {f"call-{call['id']}"}
    assert {d.status for d in withdrawals} == {"pending"}

    # Each member's list shows the offer (sent) and its end (pending).
    seen = (await anon_client.get(NOTIFICATIONS, headers=others[0].headers)).json()["data"]
    assert [(n["kind"], n["push"]) for n in seen] == [
        ("offer_closed", {"backend": None, "status": "pending"}),
        ("offer", {"backend": "log", "status": "sent"}),
    ]
    assert all(n["call_id"] == call["id"] for n in seen)


async def test_a_lapsed_offer_that_never_left_is_withdrawn(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, team: SceneTeam
) -> None:
    for member in team.members:
        await register(anon_client, member, token_of(member), "ios")
    call = await press(anon_client, await make_resident(session, settings))
    offer = await offer_of(anon_client, team.members[0], call["id"])
    await session.execute(
        text("UPDATE offer SET expires_at = now() - interval '1 second' WHERE id = :id"), offer
    )
    assert await expire_offers(session, settings) == 1

    sent = await alerted(session, offer_id=uuid.UUID(offer["id"]), kind="offer")
    assert {d.status for d in await pushes(session, [n.id for n in sent])} == {"withdrawn"}
    closed = await alerted(session, offer_id=uuid.UUID(offer["id"]), kind="offer_closed")
    assert {n.person_id for n in closed} == {m.person_id for m in team.members}
    assert {n.body for n in closed} == {"这条求助的邀请已超时。"}
    assert await pushes(session, [n.id for n in closed]) == [], "nothing left: nothing to take back"
    seen = (await anon_client.get(NOTIFICATIONS, headers=team.members[1].headers)).json()["data"]
    assert [(n["kind"], n["push"]["status"]) for n in seen] == [
        ("offer_closed", "none"),
        ("offer", "withdrawn"),
    ]


async def test_the_resident_hears_of_every_status_change(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, team: SceneTeam
) -> None:
    farther = await make_team(session, settings, *offset(LAT, LNG, 900, 0), members=1, name="远队")
    resident = await make_resident(session, settings)
    await register(anon_client, resident, token_of(resident), "android")
    call = await press(anon_client, resident)
    # Everyone near declines: the call is offered to the farther team, still `offered`.
    offer = await offer_of(anon_client, team.members[0], call["id"])
    for member in team.members:
        declined = await anon_client.post(
            f"/api/v1/offers/{offer['id']}/decline", json={}, headers=member.headers
        )
        assert declined.status_code == 200, declined.text
    responder = farther.members[0]
    again = await offer_of(anon_client, responder, call["id"])
    await accept(anon_client, responder, again["id"])
    for status in ("en_route", "on_site", "resolved"):
        await step(anon_client, responder, call["id"], status)

    seen = (await anon_client.get(NOTIFICATIONS, headers=resident.headers)).json()
    assert seen["next_cursor"] is None
    assert [(n["kind"], n["body"]) for n in seen["data"]] == [
        ("call_status", "求助已办结，欢迎评价。"),
        ("call_status", "志愿者已到达。"),
        ("call_status", "志愿者正在赶来。"),
        ("call_status", "志愿者已接单。"),
        ("call_status", "已通知附近的志愿者，请稍候。"),
    ], "one per change: not for `searching`, not for a second `offered`"
    assert {n["push"]["status"] for n in seen["data"]} == {"pending"}
    await send_pending(session, settings)
    seen = (await anon_client.get(NOTIFICATIONS, headers=resident.headers)).json()
    assert {(n["push"]["backend"], n["push"]["status"]) for n in seen["data"]} == {("log", "sent")}


async def test_cancelling_tells_the_resident(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, team: SceneTeam
) -> None:
    resident = await make_resident(session, settings)
    call = await press(anon_client, resident)
    cancelled = await anon_client.post(
        f"/api/v1/calls/{call['id']}/cancel", json={}, headers=resident.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    mine = await alerted(session, person_id=resident.person_id)
    assert [n.body for n in mine] == ["已通知附近的志愿者，请稍候。", "求助已取消。"]
    closed = await alerted(session, call_id=uuid.UUID(call["id"]), kind="offer_closed")
    assert {n.person_id for n in closed} == {m.person_id for m in team.members}
    assert {n.body for n in closed} == {"这条求助已撤回或已由他人处理。"}


async def _dispatcher(
    session: AsyncSession, settings: Settings, area_id: uuid.UUID, name: str
) -> Member:
    person_id = await make_person(session, name)
    await session.execute(
        text("INSERT INTO dispatcher (person_id, area_id) VALUES (:p, :a)"),
        {"p": person_id, "a": area_id},
    )
    return Member(person_id, bearer(await token_for(session, settings, person_id)))


async def test_escalation_reaches_the_dispatchers_of_the_area(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    here = await areas.locate_ids(session, LAT, LNG)
    elsewhere = (
        await session.execute(
            text("SELECT id FROM area WHERE level = 'community' AND id <> :c LIMIT 1"),
            {"c": here.community},
        )
    ).scalar_one()
    community = await _dispatcher(session, settings, here.community, "社区调度")
    street = await _dispatcher(session, settings, here.street, "街道调度")
    other = await _dispatcher(session, settings, elsewhere, "别处调度")
    await register(anon_client, community, token_of(community), "ios")
    resident = await make_resident(session, settings)

    call = await press(anon_client, resident)
    assert call["status"] == "escalated"
    assert call["escalation_level"] == "community"
    call_id = uuid.UUID(call["id"])
    first = await alerted(session, call_id=call_id, kind="escalation")
    assert [n.person_id for n in first] == [community.person_id]
    assert first[0].body == "紧急求助：附近暂无志愿者接单，请及时指派。"
    (push,) = await pushes(session, [first[0].id])
    assert (push.device_token, push.collapse_key) == (token_of(community), f"call-{call_id}")
    mine = await alerted(session, person_id=resident.person_id)
    assert [n.body for n in mine] == ["已转交社区工作人员处理。"]

    # No dispatcher acted: the call rises to the street.
    locked = await state.lock_call(session, call_id)
    assert locked is not None
    await dispatch.escalate(session, locked, EscalationLevel.street, "no dispatcher action")
    rose = await alerted(session, call_id=call_id, kind="escalation")
    assert sorted(n.person_id for n in rose[1:]) == sorted([community.person_id, street.person_id])
    assert {n.body for n in rose[1:]} == {"紧急求助：社区未及时处理，已上报街道。"}
    assert other.person_id not in {n.person_id for n in rose}
    assert len(await alerted(session, person_id=resident.person_id)) == 1, "still escalated"

    seen = (await anon_client.get(NOTIFICATIONS, headers=street.headers)).json()["data"]
    assert [(n["kind"], n["call_id"], n["push"]) for n in seen] == [
        ("escalation", str(call_id), {"backend": None, "status": "none"})
    ]


async def test_the_list_pages_newest_first_and_shows_only_ones_own(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, team: SceneTeam
) -> None:
    resident = await make_resident(session, settings)
    for i in range(3):
        call = await press(anon_client, resident, {"lat": LAT + i * 0.003, "lng": LNG})
        if i < 2:
            cancelled = await anon_client.post(
                f"/api/v1/calls/{call['id']}/cancel", json={}, headers=resident.headers
            )
            assert cancelled.status_code == 200, cancelled.text
    expected = [n.id for n in reversed(await alerted(session, person_id=resident.person_id))]
    assert len(expected) == 5

    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await anon_client.get(NOTIFICATIONS, params=params, headers=resident.headers)
        assert page.status_code == 200, page.text
        pages.append(page.json()["data"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    listed = [n for p in pages for n in p]
    assert [uuid.UUID(n["id"]) for n in listed] == expected, "newest first, each once"
    assert [n["body"] for n in listed] == [
        "已通知附近的志愿者，请稍候。",
        "求助已取消。",
        "已通知附近的志愿者，请稍候。",
        "求助已取消。",
        "已通知附近的志愿者，请稍候。",
    ]
    assert set(listed[0]) == {
        "id",
        "kind",
        "title",
        "body",
        "call_id",
        "team_id",
        "created_at",
        "push",
    }
    assert {str(n["push"]) for n in listed} == {str({"backend": None, "status": "none"})}

    # A member of the team sees their own alerts, none of the resident's.
    theirs = (await anon_client.get(NOTIFICATIONS, headers=team.members[0].headers)).json()
    assert theirs["data"]
    assert {n["kind"] for n in theirs["data"]} == {"offer", "offer_closed"}
    assert not {n["id"] for n in theirs["data"]} & {n["id"] for n in listed}


async def test_bad_requests_to_the_list(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    resident = await make_resident(session, settings)
    assert_problem(
        await anon_client.get(NOTIFICATIONS, params={"cursor": "nope"}, headers=resident.headers),
        422,
        "invalid_cursor",
    )
    assert_problem(
        await anon_client.get(NOTIFICATIONS, params={"limit": 0}, headers=resident.headers),
        422,
        "validation_error",
    )
    assert_problem(await anon_client.get(NOTIFICATIONS), 401, "not_authenticated")
    empty = await anon_client.get(NOTIFICATIONS, headers=resident.headers)
    assert empty.json() == {"data": [], "next_cursor": None}


def test_every_text_exists_in_every_locale() -> None:
    for locale in ("zh-CN", "en"):
        assert set(alerts._TEXTS[locale]) == set(alerts._TEXTS["zh-CN"])
        assert set(alerts._CATEGORY[locale]) == set(alerts._CATEGORY["zh-CN"])
    for status in CallStatus:
        if status is not CallStatus.searching:
            assert f"status.{status.value}" in alerts._TEXTS["zh-CN"]
    for closed in OfferStatus:
        if closed is not OfferStatus.open:
            assert f"offer_closed.{closed.value}" in alerts._TEXTS["zh-CN"]
    assert alerts.texts("offer", "visit", "en") == (
        "A new call near you",
        "Home visit: please look and take it.",
    )
    assert alerts.texts("offer", "visit", "fr") == alerts.texts("offer", "visit")


async def test_alerts_speak_the_language_the_phone_registered(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=2)
    english, chinese = team.members
    answer = await anon_client.put(
        f"/api/v1/me/devices/{token_of(english)}",
        json={"platform": "android", "locale": "en"},
        headers=english.headers,
    )
    assert answer.status_code == 204
    await register(anon_client, chinese, token_of(chinese), "ios")
    bad = await anon_client.put(
        f"/api/v1/me/devices/{token_of(chinese)}",
        json={"platform": "ios", "locale": "fr"},
        headers=chinese.headers,
    )
    assert_problem(bad, 422, "validation_error")

    call = await press(anon_client, await make_resident(session, settings))
    offer = await offer_of(anon_client, english, call["id"])
    sent = {n.person_id: n for n in await alerted(session, offer_id=uuid.UUID(offer["id"]))}
    assert (sent[english.person_id].title, sent[english.person_id].body) == alerts.texts(
        "offer", "urgent", "en"
    )
    assert (sent[chinese.person_id].title, sent[chinese.person_id].body) == alerts.texts(
        "offer", "urgent", "zh-CN"
    )
    assert sent[english.person_id].title != sent[chinese.person_id].title
