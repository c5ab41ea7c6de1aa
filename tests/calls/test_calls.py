"""The one-tap call, from press to rating, on the demo district."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import Settings
from tests.principals import make_cast
from tests.problems import assert_problem
from tests.scene import SceneTeam, clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}


async def _press(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    point: dict[str, Any] | None = None,
    **body: Any,
) -> httpx.Response:
    return await http.post(
        "/api/v1/calls", json={"location": point or POINT, **body}, headers=headers
    )


@pytest.fixture
async def team(session: AsyncSession, settings: Settings) -> SceneTeam:
    await clear_duty_near(session, LAT, LNG, 5000)
    return await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)


async def test_a_call_from_press_to_rating(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    connection: AsyncConnection,
) -> None:
    resident = await make_resident(session, settings)
    pressed = await _press(anon_client, resident.headers, category="visit", note="门铃坏了，请敲门")
    assert pressed.status_code == 201, pressed.text
    call = pressed.json()
    assert call["status"] == "offered"
    assert call["team"]["id"] == str(team.id)
    assert call["grid"]["id"]
    assert call["escalation_level"] == "grid"
    assert call["responder"] is None
    assert call["location"] == POINT
    assert call["last_event_id"] > 0

    member = team.members[1]
    offers = (await anon_client.get("/api/v1/offers?status=open", headers=member.headers)).json()
    offer = next(o for o in offers["data"] if o["call_id"] == call["id"])
    assert offer["team"]["id"] == str(team.id)
    assert offer["category"] == "visit"
    assert 0 < offer["distance_m"] < 80
    assert offer["approx_location"] == {"lat": 22.77, "lng": 113.93, "accuracy_m": 100.0}

    # Before accepting: the rounded position, no note.
    seen = (await anon_client.get(f"/api/v1/calls/{call['id']}", headers=member.headers)).json()
    assert seen["location"]["accuracy_m"] == 100.0
    assert seen["note"] is None

    accepted = await anon_client.post(
        f"/api/v1/offers/{offer['id']}/accept", headers=member.headers
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["responder"]["id"] == str(member.person_id)
    assert accepted.json()["location"] == POINT, "the exact point after accepting"
    assert accepted.json()["note"] == "门铃坏了，请敲门"

    other = team.members[0]
    late = await anon_client.post(f"/api/v1/offers/{offer['id']}/accept", headers=other.headers)
    assert_problem(late, 409, "offer_closed")

    for step in ("en_route", "on_site"):
        moved = await anon_client.post(
            f"/api/v1/calls/{call['id']}/progress", json={"status": step}, headers=member.headers
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == step
        assert moved.json()["responder"]["location"] is None, "only the caller sees it"
        mine = (
            await anon_client.get(f"/api/v1/calls/{call['id']}", headers=resident.headers)
        ).json()
        assert mine["responder"]["location"]["lat"] == pytest.approx(
            offset(LAT, LNG, 43, 32)[0], abs=1e-4
        )
        assert mine["responder"]["phone_masked"].count("*") == 4

    resolved = await anon_client.post(
        f"/api/v1/calls/{call['id']}/progress", json={"status": "resolved"}, headers=member.headers
    )
    assert resolved.json()["status"] == "resolved"
    done = (await anon_client.get(f"/api/v1/calls/{call['id']}", headers=resident.headers)).json()
    assert done["responder"]["location"] is None, "not once the call is over"
    activity = (
        await connection.execute(
            text("SELECT person_id, kind, source FROM activity WHERE call_id = :c"),
            {"c": call["id"]},
        )
    ).one()
    # The call's kind, `hardship` for an urgent call or one without a category.
    expected_kind = call["category"] if call["category"] not in (None, "urgent") else "hardship"
    assert activity == (member.person_id, expected_kind, "call")

    rating = await anon_client.post(
        f"/api/v1/calls/{call['id']}/rating",
        json={"stars": 5, "comment": "谢谢"},
        headers=resident.headers,
    )
    assert rating.status_code == 201
    assert rating.json()["stars"] == 5
    again = await anon_client.post(
        f"/api/v1/calls/{call['id']}/rating", json={"stars": 4}, headers=resident.headers
    )
    assert_problem(again, 409, "already_rated")

    events = (
        await anon_client.get(f"/api/v1/calls/{call['id']}/events", headers=resident.headers)
    ).json()
    statuses = [e["data"]["status"] for e in events["data"] if e["type"] == "call.updated"]
    assert statuses == ["searching", "offered", "accepted", "en_route", "on_site", "resolved"]
    ids = [e["id"] for e in events["data"]]
    assert ids == sorted(ids)
    assert {e["type"] for e in events["data"]} == {"call.updated"}, "offers are not the caller's"
    later = (
        await anon_client.get(
            f"/api/v1/calls/{call['id']}/events", params={"after": ids[2]}, headers=resident.headers
        )
    ).json()
    assert [e["id"] for e in later["data"]] == ids[3:]

    team_view = (
        await anon_client.get(f"/api/v1/calls/{call['id']}/events", headers=other.headers)
    ).json()
    kinds = [e["type"] for e in team_view["data"]]
    assert "offer.created" in kinds
    assert "offer.closed" in kinds


async def test_strangers_see_nothing(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, team: SceneTeam
) -> None:
    resident = await make_resident(session, settings)
    stranger = await make_resident(session, settings)
    call = (await _press(anon_client, resident.headers)).json()
    for path in (f"/api/v1/calls/{call['id']}", f"/api/v1/calls/{call['id']}/events"):
        assert_problem(await anon_client.get(path, headers=stranger.headers), 404, "not_found")
    listed = (await anon_client.get("/api/v1/calls", headers=stranger.headers)).json()
    assert all(c["id"] != call["id"] for c in listed["data"])
    cancel = await anon_client.post(f"/api/v1/calls/{call['id']}/cancel", headers=stranger.headers)
    assert_problem(cancel, 404, "not_found")
    mine = (await anon_client.get("/api/v1/calls", headers=resident.headers)).json()
    assert [c["id"] for c in mine["data"]] == [call["id"]]


async def test_outside_and_bad_input(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    resident = await make_resident(session, settings)
    far = await _press(anon_client, resident.headers, {"lat": 39.9, "lng": 116.4})
    assert_problem(far, 422, "outside_service_area")
    for body in (
        {"location": {"lat": 91, "lng": LNG}},
        {"location": POINT, "category": "party"},
        {"location": POINT, "note": "x" * 501},
        {"location": POINT, "extra": 1},
        {"category": "urgent"},
    ):
        response = await anon_client.post("/api/v1/calls", json=body, headers=resident.headers)
        assert_problem(response, 422, "validation_error")
    bad_key = await anon_client.post(
        "/api/v1/calls",
        json={"location": POINT},
        headers={**resident.headers, "Idempotency-Key": "a b"},
    )
    assert_problem(bad_key, 422, "validation_error")
    assert_problem(
        await anon_client.get("/api/v1/calls/not-a-uuid", headers=resident.headers),
        422,
        "validation_error",
    )
    assert_problem(
        await anon_client.get("/api/v1/calls?cursor=@@@", headers=resident.headers),
        422,
        "invalid_cursor",
    )


async def test_no_team_in_range_escalates_to_the_community(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    resident = await make_resident(session, settings)
    call = (await _press(anon_client, resident.headers)).json()
    assert call["status"] == "escalated"
    assert call["escalation_level"] == "community"
    assert call["team"] is None


async def test_double_tap_open_limit_and_idempotency(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    connection: AsyncConnection,
) -> None:
    resident = await make_resident(session, settings)
    first = await _press(anon_client, resident.headers)
    second = await _press(anon_client, resident.headers, {**POINT, "lat": LAT + 0.0003})
    assert first.status_code == 201
    assert second.status_code == 200, "a double tap answers the call just opened"
    assert second.json()["id"] == first.json()["id"]

    # Idempotency: same key and body → the same answer, nothing new.
    keyed = {**resident.headers, "Idempotency-Key": "press-2"}
    spot = dict(zip(("lat", "lng"), offset(LAT, LNG, 600, 0), strict=True))
    a = await anon_client.post("/api/v1/calls", json={"location": spot}, headers=keyed)
    b = await anon_client.post("/api/v1/calls", json={"location": spot}, headers=keyed)
    assert a.status_code == b.status_code == 201
    assert a.json() == b.json()
    other = await anon_client.post(
        "/api/v1/calls", json={"location": spot, "category": "safety"}, headers=keyed
    )
    assert_problem(other, 422, "idempotency_key_reused")

    spot3 = dict(zip(("lat", "lng"), offset(LAT, LNG, -600, 0), strict=True))
    assert (await _press(anon_client, resident.headers, spot3)).status_code == 201
    spot4 = dict(zip(("lat", "lng"), offset(LAT, LNG, 0, 900), strict=True))
    limited = await _press(anon_client, resident.headers, spot4)
    assert_problem(limited, 429, "too_many_open_calls")
    count = (
        await connection.execute(
            text("SELECT count(*) FROM call WHERE resident_id = :r"), {"r": resident.person_id}
        )
    ).scalar_one()
    assert count == 3


async def test_declined_by_every_on_duty_member_moves_on_at_once(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, team: SceneTeam
) -> None:
    second = await make_team(session, settings, *offset(LAT, LNG, -300, 0), members=2, name="二队")
    resident = await make_resident(session, settings)
    call = (await _press(anon_client, resident.headers)).json()
    assert call["team"]["id"] == str(team.id)
    offer = (await anon_client.get("/api/v1/offers", headers=team.members[0].headers)).json()[
        "data"
    ][0]
    for i, member in enumerate(team.members):
        declined = await anon_client.post(
            f"/api/v1/offers/{offer['id']}/decline", json={"reason": "忙"}, headers=member.headers
        )
        assert declined.status_code == 200, declined.text
        assert declined.json()["status"] == ("declined" if i == len(team.members) - 1 else "open")
    now = (await anon_client.get(f"/api/v1/calls/{call['id']}", headers=resident.headers)).json()
    assert now["status"] == "offered"
    assert now["team"]["id"] == str(second.id), "the next nearest team, at once"
    closed = await anon_client.post(
        f"/api/v1/offers/{offer['id']}/decline", headers=team.members[0].headers
    )
    assert_problem(closed, 409, "offer_closed")


async def test_a_busy_member_cannot_take_a_second_call(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, team: SceneTeam
) -> None:
    one, two = await make_resident(session, settings), await make_resident(session, settings)
    first = (await _press(anon_client, one.headers)).json()
    spot = dict(zip(("lat", "lng"), offset(LAT, LNG, 100, 100), strict=True))
    second = (await _press(anon_client, two.headers, spot)).json()
    member = team.members[0]
    offers = (await anon_client.get("/api/v1/offers?status=open", headers=member.headers)).json()[
        "data"
    ]
    by_call = {o["call_id"]: o["id"] for o in offers}
    assert set(by_call) == {first["id"], second["id"]}
    ok = await anon_client.post(
        f"/api/v1/offers/{by_call[first['id']]}/accept", headers=member.headers
    )
    assert ok.status_code == 200
    busy = await anon_client.post(
        f"/api/v1/offers/{by_call[second['id']]}/accept", headers=member.headers
    )
    assert_problem(busy, 409, "responder_busy")
    # Another member of the team still can.
    other = await anon_client.post(
        f"/api/v1/offers/{by_call[second['id']]}/accept", headers=team.members[1].headers
    )
    assert other.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("progress", {"status": "on_site"}, 403, "not_allowed"),
        ("rating", {"stars": 5}, 409, "invalid_transition"),
    ],
)
async def test_the_caller_cannot_report_progress_nor_rate_early(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    path: str,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    resident = await make_resident(session, settings)
    call = (await _press(anon_client, resident.headers)).json()
    response = await anon_client.post(
        f"/api/v1/calls/{call['id']}/{path}", json=body, headers=resident.headers
    )
    assert_problem(response, status, code)


async def test_every_transition_allowed_and_refused(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, team: SceneTeam
) -> None:
    """Walk each path of the state machine through the API and try every
    progress step from every state."""
    cast = await make_cast(session, settings)
    member = team.members[0]

    async def fresh(spot_m: float) -> dict[str, Any]:
        resident = await make_resident(session, settings)
        spot = dict(zip(("lat", "lng"), offset(LAT, LNG, spot_m, 0), strict=True))
        call: dict[str, Any] = (await _press(anon_client, resident.headers, spot)).json()
        call["_resident"] = resident.headers
        return call

    async def accept(call: dict[str, Any]) -> None:
        offers = (
            await anon_client.get("/api/v1/offers?status=open", headers=member.headers)
        ).json()
        offer = next(o for o in offers["data"] if o["call_id"] == call["id"])
        assert (
            await anon_client.post(f"/api/v1/offers/{offer['id']}/accept", headers=member.headers)
        ).status_code == 200

    async def step(call: dict[str, Any], status: str) -> int:
        response = await anon_client.post(
            f"/api/v1/calls/{call['id']}/progress", json={"status": status}, headers=member.headers
        )
        if response.status_code != 200:
            assert_problem(response, 409, "invalid_transition")
        return response.status_code

    allowed = {
        "accepted": {"en_route", "on_site"},
        "en_route": {"on_site"},
        "on_site": {"resolved"},
        "resolved": set(),
    }
    paths = [["en_route", "on_site", "resolved"], ["on_site", "resolved"]]
    for n, path in enumerate(paths):
        call = await fresh(10.0 * n)
        await accept(call)
        state = "accepted"
        for target in path:
            for probe in ("en_route", "on_site", "resolved"):
                if probe not in allowed[state]:
                    assert await step(call, probe) == 409, (state, probe)
            assert await step(call, target) == 200
            state = target
        for probe in ("en_route", "on_site", "resolved"):
            assert await step(call, probe) == 409
        cancel = await anon_client.post(
            f"/api/v1/calls/{call['id']}/cancel", headers=call["_resident"]
        )
        assert_problem(cancel, 409, "invalid_transition")

    # Cancelling an offered call (by the caller) withdraws its offer; an
    # accepted one can be cancelled by staff.
    call = await fresh(30.0)
    cancelled = await anon_client.post(
        f"/api/v1/calls/{call['id']}/cancel", json={"reason": "不需要了"}, headers=call["_resident"]
    )
    assert cancelled.json()["status"] == "cancelled"
    offers = (await anon_client.get("/api/v1/offers", headers=member.headers)).json()["data"]
    assert [o["status"] for o in offers if o["call_id"] == call["id"]] == ["withdrawn"]
    call = await fresh(40.0)
    await accept(call)
    staff = await anon_client.post(
        f"/api/v1/calls/{call['id']}/cancel", headers=cast.headers["admin"]
    )
    assert staff.json()["status"] == "cancelled"


async def test_offers_come_a_page_at_a_time(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, team: SceneTeam
) -> None:
    for n in range(3):
        resident = await make_resident(session, settings)
        spot = dict(zip(("lat", "lng"), offset(LAT, LNG, 200 * n, 0), strict=True))
        assert (await _press(anon_client, resident.headers, spot)).status_code == 201
    member = team.members[0].headers
    first = (await anon_client.get("/api/v1/offers?limit=2", headers=member)).json()
    assert len(first["data"]) == 2
    assert first["next_cursor"]
    second = (
        await anon_client.get(
            "/api/v1/offers", params={"limit": 2, "cursor": first["next_cursor"]}, headers=member
        )
    ).json()
    assert len(second["data"]) == 1
    assert second["next_cursor"] is None
    ids = [o["id"] for o in first["data"] + second["data"]]
    assert len(set(ids)) == 3
    bad = await anon_client.get("/api/v1/offers?cursor=%%%", headers=member)
    assert_problem(bad, 422, "invalid_cursor")
