"""/me (devices, duty, location) and /admin (teams, members, dispatchers)."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import Settings
from tests.principals import Cast, make_cast, make_person, next_phone
from tests.problems import assert_problem

DEVICE = "fcm-token_abc:DEF-123.456"


async def _cast(session: AsyncSession, settings: Settings) -> Cast:
    return await make_cast(session, settings)


async def test_devices_register_idempotently_and_move_between_people(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
) -> None:
    cast = await _cast(session, settings)
    a, b = cast.headers["resident_a"], cast.headers["resident_b"]
    for _ in range(2):
        response = await anon_client.put(
            f"/api/v1/me/devices/{DEVICE}", json={"platform": "android"}, headers=a
        )
        assert response.status_code == 204
    owner = "SELECT person_id, platform FROM device WHERE token = :t"
    rows = (await connection.execute(text(owner), {"t": DEVICE})).all()
    assert rows == [(cast.person_ids["resident_a"], "android")]

    # B cannot delete A's device; registering it moves it to B.
    await anon_client.delete(f"/api/v1/me/devices/{DEVICE}", headers=b)
    assert (await connection.execute(text(owner), {"t": DEVICE})).one()[0] == cast.person_ids[
        "resident_a"
    ]
    await anon_client.put(f"/api/v1/me/devices/{DEVICE}", json={"platform": "ios"}, headers=b)
    assert (await connection.execute(text(owner), {"t": DEVICE})).one() == (
        cast.person_ids["resident_b"],
        "ios",
    )
    assert (await anon_client.delete(f"/api/v1/me/devices/{DEVICE}", headers=b)).status_code == 204
    assert (await connection.execute(text(owner), {"t": DEVICE})).first() is None

    bad = await anon_client.put(
        "/api/v1/me/devices/a%20b%20c%20d", json={"platform": "ios"}, headers=a
    )
    assert_problem(bad, 422, "validation_error")
    bad = await anon_client.put(
        f"/api/v1/me/devices/{DEVICE}", json={"platform": "nokia"}, headers=a
    )
    assert_problem(bad, 422, "validation_error")


async def test_duty_and_location(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
) -> None:
    cast = await _cast(session, settings)
    volunteer, resident = cast.headers["volunteer_x"], cast.headers["resident_a"]
    point = {"lat": 22.771, "lng": 113.931, "accuracy_m": 12}

    assert_problem(
        await anon_client.put(
            "/api/v1/me/duty", json={"on_duty": True, "location": point}, headers=resident
        ),
        403,
        "not_a_volunteer",
    )
    assert_problem(
        await anon_client.put("/api/v1/me/location", json=point, headers=volunteer),
        409,
        "not_on_duty",
    )
    assert_problem(
        await anon_client.put("/api/v1/me/duty", json={"on_duty": True}, headers=volunteer),
        422,
        "location_required",
    )
    on = await anon_client.put(
        "/api/v1/me/duty", json={"on_duty": True, "location": point}, headers=volunteer
    )
    assert on.status_code == 200, on.text
    state = on.json()
    assert state["on_duty"] is True
    assert state["since"]
    assert state["location"] == point

    moved = {"lat": 22.772, "lng": 113.932, "accuracy_m": 8}
    assert (
        await anon_client.put("/api/v1/me/location", json=moved, headers=volunteer)
    ).status_code == 204
    row = (
        await connection.execute(
            text(
                "SELECT on_duty, ST_Y(location::geometry), ST_X(location::geometry), accuracy_m "
                "FROM duty WHERE person_id = :p"
            ),
            {"p": cast.person_ids["volunteer_x"]},
        )
    ).one()
    assert row[0] is True
    assert (round(row[1], 6), round(row[2], 6), row[3]) == (22.772, 113.932, 8)

    off = await anon_client.put("/api/v1/me/duty", json={"on_duty": False}, headers=volunteer)
    assert off.json()["on_duty"] is False
    assert off.json()["location"] is None
    kept = (
        await connection.execute(
            text("SELECT location FROM duty WHERE person_id = :p"),
            {"p": cast.person_ids["volunteer_x"]},
        )
    ).scalar_one()
    assert kept is None, "off duty, the position is not kept"
    bad = await anon_client.put(
        "/api/v1/me/location", json={"lat": 95, "lng": 113.9}, headers=volunteer
    )
    assert_problem(bad, 422, "validation_error")


async def test_admin_builds_a_team_whose_member_logs_in_as_a_volunteer(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
) -> None:
    cast = await _cast(session, settings)
    admin = cast.headers["admin"]
    created = await anon_client.post(
        "/api/v1/admin/teams",
        json={
            "name": "红小二测试队",
            "base": {"lat": 22.77, "lng": 113.93},
            "service_content": "走访",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    team = created.json()
    locate = await anon_client.get(
        "/api/v1/areas/locate", params={"lat": 22.77, "lng": 113.93}, headers=admin
    )
    assert team["grid"] == locate.json()["grid"]

    phone = next_phone()
    member = await anon_client.post(
        f"/api/v1/admin/teams/{team['id']}/members",
        json={"phone": phone, "display_name": "新队员", "kind": "full_time", "roles": ["liaison"]},
        headers=admin,
    )
    assert member.status_code == 201, member.text
    assert member.json()["person"]["phone_masked"] == f"{phone[3:6]}****{phone[-4:]}"
    again = await anon_client.post(
        f"/api/v1/admin/teams/{team['id']}/members",
        json={"phone": phone, "display_name": "新队员", "kind": "full_time"},
        headers=admin,
    )
    assert_problem(again, 409, "already_member")

    code = (await anon_client.post("/api/v1/auth/otp", json={"phone": phone})).json()["debug_code"]
    login = await anon_client.post("/api/v1/auth/token", json={"phone": phone, "code": code})
    user = login.json()["user"]
    assert user["roles"] == ["resident", "volunteer"]
    assert user["teams"] == [{"id": team["id"], "name": "红小二测试队", "kind": "full_time"}]

    audited = (
        (
            await connection.execute(
                text("SELECT action FROM audit_log WHERE actor_person_id = :a ORDER BY id"),
                {"a": cast.person_ids["admin"]},
            )
        )
        .scalars()
        .all()
    )
    assert audited[-2:] == ["team_created", "member_added"]


async def test_dispatchers_act_only_within_their_area(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    cast = await _cast(session, settings)
    d1, d2 = cast.headers["dispatcher_c1"], cast.headers["dispatcher_c2"]
    member = {"phone": next_phone(), "display_name": "队员", "kind": "part_time"}
    url = f"/api/v1/admin/teams/{cast.team_x}/members"
    assert (await anon_client.post(url, json=member, headers=d1)).status_code == 201
    assert_problem(await anon_client.post(url, json=member, headers=d2), 404, "not_found")

    me = (await anon_client.get("/api/v1/me", headers=d1)).json()
    assert me["roles"] == ["resident", "dispatcher"]
    assert me["dispatcher_area"]["id"] == str(cast.community_1)
    assert me["dispatcher_area"]["level"] == "community"

    outside = await anon_client.post(
        "/api/v1/admin/teams",
        json={"name": "x", "base": {"lat": 39.9, "lng": 116.4}},
        headers=cast.headers["admin"],
    )
    assert_problem(outside, 422, "outside_service_area")


async def test_admin_names_dispatchers_of_a_community_or_the_street_only(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    cast = await _cast(session, settings)
    admin = cast.headers["admin"]
    areas = (await anon_client.get("/api/v1/areas", headers=admin)).json()["features"]
    by_level = {f["properties"]["level"]: f["id"] for f in areas}
    phone = next_phone()
    made = await anon_client.post(
        "/api/v1/admin/dispatchers",
        json={"phone": phone, "display_name": "街道调度", "area_id": by_level["street"]},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    assert made.json()["area"]["level"] == "street"
    grid = await anon_client.post(
        "/api/v1/admin/dispatchers",
        json={"phone": phone, "display_name": "x", "area_id": by_level["grid"]},
        headers=admin,
    )
    assert_problem(grid, 422, "invalid_area_level")
    unknown = await anon_client.post(
        "/api/v1/admin/dispatchers",
        json={
            "phone": phone,
            "display_name": "x",
            "area_id": "00000000-0000-4000-8000-000000000000",
        },
        headers=admin,
    )
    assert_problem(unknown, 422, "unknown_area")
    malformed = await anon_client.post("/api/v1/admin/persons/not-a-uuid/disable", headers=admin)
    assert_problem(malformed, 422, "validation_error")
    self_disable = await anon_client.post(
        f"/api/v1/admin/persons/{cast.person_ids['admin']}/disable", headers=admin
    )
    assert_problem(self_disable, 409, "cannot_disable_self")


# ---- enrolling people who may already exist (issue 11, item 4) ---------------------

LURE = "请转账到6222 0000 0000 0000"


async def _person(session: AsyncSession, person_id: uuid.UUID) -> tuple[str, str]:
    row = (
        await session.execute(
            text("SELECT phone, display_name FROM person WHERE id = :id"), {"id": person_id}
        )
    ).one()
    return row.phone, row.display_name


async def _other_team_of(session: AsyncSession, community: uuid.UUID, not_team: uuid.UUID) -> str:
    """A second seeded team whose grid lies in `community`."""
    team = (
        await session.execute(
            text(
                """
                SELECT t.id FROM team t JOIN area g ON g.id = t.grid_id
                JOIN area b ON b.id = g.parent_id
                WHERE b.parent_id = :community AND t.id <> :not_team ORDER BY t.id LIMIT 1
                """
            ),
            {"community": community, "not_team": not_team},
        )
    ).scalar_one()
    return str(team)


async def _is_member(session: AsyncSession, team: object, person: uuid.UUID) -> bool:
    found = await session.execute(
        text("SELECT 1 FROM team_member WHERE team_id = :t AND person_id = :p"),
        {"t": team, "p": person},
    )
    return found.first() is not None


async def test_enrolling_an_existing_person_never_renames_them(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    cast = await _cast(session, settings)
    admin, d1 = cast.headers["admin"], cast.headers["dispatcher_c1"]

    # The admin may enrol anyone, a dispatcher of elsewhere too, but not rename them.
    target = cast.person_ids["dispatcher_c2"]
    phone, name = await _person(session, target)
    member = await anon_client.post(
        f"/api/v1/admin/teams/{cast.team_x}/members",
        json={"phone": phone, "display_name": LURE, "kind": "part_time"},
        headers=admin,
    )
    assert member.status_code == 201, member.text
    assert member.json()["person"] == {
        "id": str(target),
        "display_name": name,
        "phone_masked": f"{phone[3:6]}****{phone[-4:]}",
    }
    assert await _person(session, target) == (phone, name)

    # Naming a dispatcher keeps the name too.
    resident = cast.person_ids["resident_a"]
    phone, name = await _person(session, resident)
    made = await anon_client.post(
        "/api/v1/admin/dispatchers",
        json={"phone": phone, "display_name": LURE, "area_id": str(cast.community_1)},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    assert made.json()["display_name"] == name
    assert await _person(session, resident) == (phone, name)

    # A dispatcher may put a member of its area on another team of its area,
    # under the member's own name.
    volunteer = cast.person_ids["volunteer_x"]
    phone, name = await _person(session, volunteer)
    other = await _other_team_of(session, cast.community_1, cast.team_x)
    moved = await anon_client.post(
        f"/api/v1/admin/teams/{other}/members",
        json={"phone": phone, "display_name": LURE, "kind": "full_time"},
        headers=d1,
    )
    assert moved.status_code == 201, moved.text
    assert moved.json()["person"]["display_name"] == name
    assert await _person(session, volunteer) == (phone, name)


async def test_a_dispatcher_cannot_pull_in_people_from_outside_its_area(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
) -> None:
    cast = await _cast(session, settings)
    d1 = cast.headers["dispatcher_c1"]
    url = f"/api/v1/admin/teams/{cast.team_x}/members"
    disabled = await make_person(session, "已停用")
    await session.execute(
        text("UPDATE person SET disabled_at = now() WHERE id = :id"), {"id": disabled}
    )
    outsiders = {
        "the admin": cast.person_ids["admin"],
        "a volunteer of community 2": cast.person_ids["volunteer_y"],
        "the dispatcher of community 2": cast.person_ids["dispatcher_c2"],
        "a disabled person": disabled,
    }
    refusals = []
    for who, person in outsiders.items():
        phone, name = await _person(session, person)
        response = await anon_client.post(
            url, json={"phone": phone, "display_name": LURE, "kind": "part_time"}, headers=d1
        )
        body = assert_problem(response, 403, "cannot_enrol_phone")
        assert str(person) not in response.text, who
        assert name not in response.text, who
        refusals.append({k: v for k, v in body.items() if k != "request_id"})
        assert await _person(session, person) == (phone, name), who
        assert not await _is_member(session, cast.team_x, person), who
    # One answer whoever the phone belongs to: it tells nothing about them.
    assert all(refusal == refusals[0] for refusal in refusals), refusals
    refused = (
        await connection.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE action = 'member_refused' "
                "AND actor_person_id = :a"
            ),
            {"a": cast.person_ids["dispatcher_c1"]},
        )
    ).scalar_one()
    assert refused == len(outsiders), "probing is on the record"

    # A resident attached to nothing, and a phone nobody has, may be enrolled.
    resident = cast.person_ids["resident_a"]
    phone, name = await _person(session, resident)
    enrolled = await anon_client.post(
        url, json={"phone": phone, "display_name": LURE, "kind": "part_time"}, headers=d1
    )
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["person"]["display_name"] == name
    fresh = await anon_client.post(
        url, json={"phone": next_phone(), "display_name": "新队员", "kind": "part_time"}, headers=d1
    )
    assert fresh.status_code == 201, fresh.text
    assert fresh.json()["person"]["display_name"] == "新队员"
    # Once on team X, resident A belongs to community 1: community 2 cannot take them.
    y_url = f"/api/v1/admin/teams/{cast.team_y}/members"
    taken = await anon_client.post(
        y_url,
        json={"phone": phone, "display_name": LURE, "kind": "part_time"},
        headers=cast.headers["dispatcher_c2"],
    )
    assert_problem(taken, 403, "cannot_enrol_phone")
