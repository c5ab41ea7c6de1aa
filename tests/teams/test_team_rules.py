"""The team rule and the rosters (API.md 1.1, "Teams and their members"):
the profile, member changes, active ⇄ incomplete, the dispatchers told once
per fall, and incomplete teams offered nothing, on the demo district."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.core.config import Settings
from app.core.months import Month
from app.teams import rules
from tests.conftest import make_settings
from tests.principals import bearer, make_person, token_for
from tests.problems import assert_problem
from tests.scene import SceneTeam, clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93
API = "/api/v1"


async def _staff(
    session: AsyncSession, settings: Settings, *, admin: bool = False, area: uuid.UUID | None = None
) -> tuple[uuid.UUID, dict[str, str]]:
    person_id = await make_person(session, "管理员" if admin else "调度员", is_admin=admin)
    if area is not None:
        await session.execute(
            text("INSERT INTO dispatcher (person_id, area_id) VALUES (:p, :a)"),
            {"p": person_id, "a": area},
        )
    return person_id, bearer(await token_for(session, settings, person_id))


@pytest.fixture
async def admin(session: AsyncSession, settings: Settings) -> dict[str, str]:
    return (await _staff(session, settings, admin=True))[1]


@pytest.fixture
async def team(session: AsyncSession, settings: Settings) -> SceneTeam:
    """Three members at the spot, the first full-time: active, just."""
    await clear_duty_near(session, LAT, LNG, 5000)
    return await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3, name="规则队")


async def _notified(session: AsyncSession, person_id: uuid.UUID, team_id: uuid.UUID) -> int:
    return int(
        (
            await session.execute(
                text(
                    "SELECT count(*) FROM notification WHERE person_id = :p "
                    "AND kind = 'team_incomplete' AND team_id = :t"
                ),
                {"p": person_id, "t": team_id},
            )
        ).scalar_one()
    )


async def _status(client: httpx.AsyncClient, team_id: uuid.UUID) -> str:
    response = await client.get(f"{API}/teams/{team_id}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


# ---- the profile ------------------------------------------------------------------------


async def test_profile_shape_and_no_phone_anywhere(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, team: SceneTeam
) -> None:
    now = datetime.now(UTC)
    this_month = Month.of(now, settings.zone)
    start = this_month.start(settings.zone)
    for at in (start + timedelta(minutes=1), now, start - timedelta(minutes=1)):
        await session.execute(
            text(
                "INSERT INTO activity (id, person_id, team_id, kind, at) "
                "VALUES (gen_random_uuid(), :p, :t, 'visit', :at)"
            ),
            {"p": team.members[0].person_id, "t": team.id, "at": at},
        )
    await session.execute(
        text("UPDATE team_member SET roles = '{mediator,liaison}' WHERE person_id = :p"),
        {"p": team.members[0].person_id},
    )
    response = await client.get(f"{API}/teams/{team.id}")
    assert response.status_code == 200, response.text
    profile = response.json()
    assert set(profile) == {
        "id",
        "name",
        "grid",
        "base",
        "service_content",
        "status",
        "members",
        "on_duty_count",
        "activities_this_month",
    }
    assert profile["id"] == str(team.id)
    assert profile["status"] == "active"
    assert profile["on_duty_count"] == 3
    assert profile["activities_this_month"] == 2, "the one of last month does not count"
    assert profile["base"]["lat"] == pytest.approx(offset(LAT, LNG, 40, 30)[0], abs=1e-9)
    assert profile["grid"]["id"]
    assert profile["grid"]["name"]
    members = profile["members"]
    assert next(m["id"] for m in members) == str(team.members[0].person_id), "full-time first"
    for member in members:
        assert set(member) == {"id", "display_name", "kind", "roles", "on_duty"}
    assert members[0] == {
        "id": str(team.members[0].person_id),
        "display_name": "规则队队员0",
        "kind": "full_time",
        "roles": ["mediator", "liaison"],
        "on_duty": True,
    }
    phones = (
        await session.execute(
            text(
                "SELECT p.phone FROM team_member m JOIN person p ON p.id = m.person_id "
                "WHERE m.team_id = :t"
            ),
            {"t": team.id},
        )
    ).scalars()
    for phone in phones:
        for shown in (phone, phone[-8:], phone[-4:], phone.removeprefix("+86")[:3] + "****"):
            assert shown not in response.text
    assert "phone" not in response.text


async def test_profile_of_an_unknown_team_is_404_and_needs_a_login(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, team: SceneTeam
) -> None:
    assert_problem(await client.get(f"{API}/teams/{uuid.uuid4()}"), 404, "not_found")
    assert_problem(await anon_client.get(f"{API}/teams/{team.id}"), 401, "not_authenticated")
    assert_problem(await client.get(f"{API}/teams/not-a-uuid"), 422, "validation_error")


# ---- member changes ---------------------------------------------------------------------


async def test_update_kind_and_roles(
    client: httpx.AsyncClient, admin: dict[str, str], team: SceneTeam
) -> None:
    member = team.members[1].person_id
    url = f"{API}/admin/teams/{team.id}/members/{member}"
    changed = await client.put(url, json={"roles": ["server", "liaison", "server"]}, headers=admin)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["kind"] == "part_time", "left out: unchanged"
    assert body["roles"] == ["liaison", "server"]
    assert body["person"]["id"] == str(member)
    assert body["person"]["phone_masked"].count("*") == 4
    assert body["team_status"] == "active"
    changed = await client.put(url, json={"kind": "full_time"}, headers=admin)
    assert changed.json()["kind"] == "full_time"
    assert changed.json()["roles"] == ["liaison", "server"], "left out: unchanged"
    roster = (await client.get(f"{API}/teams/{team.id}")).json()["members"]
    assert next(m for m in roster if m["id"] == str(member))["kind"] == "full_time"
    cleared = await client.put(url, json={"roles": []}, headers=admin)
    assert cleared.json()["roles"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"roles": ["captain"]},
        {"kind": "sometimes"},
        {"roles": "liaison"},
        {"roles": ["liaison"] * 6},
        {"nickname": "x"},
    ],
)
async def test_bad_kind_or_roles_are_422(
    client: httpx.AsyncClient, admin: dict[str, str], team: SceneTeam, body: dict[str, Any]
) -> None:
    url = f"{API}/admin/teams/{team.id}/members/{team.members[1].person_id}"
    assert_problem(await client.put(url, json=body, headers=admin), 422, "validation_error")


async def test_unknown_team_member_or_area_is_404(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    admin: dict[str, str],
    team: SceneTeam,
) -> None:
    stranger = await make_person(session, "路人")
    member = team.members[1].person_id
    for url in (
        f"{API}/admin/teams/{uuid.uuid4()}/members/{member}",
        f"{API}/admin/teams/{team.id}/members/{stranger}",
    ):
        assert_problem(
            await client.put(url, json={"kind": "part_time"}, headers=admin), 404, "not_found"
        )
        assert_problem(await client.delete(url, headers=admin), 404, "not_found")
    # A dispatcher of another community: the team does not exist for it.
    here = await areas.locate_ids(session, LAT, LNG)
    other = (
        await session.execute(
            text("SELECT id FROM area WHERE level = 'community' AND id <> :c LIMIT 1"),
            {"c": here.community},
        )
    ).scalar_one()
    _, elsewhere = await _staff(session, settings, area=other)
    url = f"{API}/admin/teams/{team.id}/members/{member}"
    assert_problem(
        await client.put(url, json={"kind": "full_time"}, headers=elsewhere), 404, "not_found"
    )
    assert_problem(await client.delete(url, headers=elsewhere), 404, "not_found")
    # … and one of its own community may.
    _, own = await _staff(session, settings, area=here.community)
    assert (await client.put(url, json={"roles": ["server"]}, headers=own)).status_code == 200


# ---- active ⇄ incomplete, and who is told ---------------------------------------------


async def test_removal_of_the_last_full_time_member_tells_the_dispatchers_once(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    admin: dict[str, str],
    team: SceneTeam,
) -> None:
    here = await areas.locate_ids(session, LAT, LNG)
    community, _ = await _staff(session, settings, area=here.community)
    street, _ = await _staff(session, settings, area=here.street)
    other_community = (
        await session.execute(
            text("SELECT id FROM area WHERE level = 'community' AND id <> :c LIMIT 1"),
            {"c": here.community},
        )
    ).scalar_one()
    elsewhere, _ = await _staff(session, settings, area=other_community)
    full_time = team.members[0].person_id

    removed = await client.delete(f"{API}/admin/teams/{team.id}/members/{full_time}", headers=admin)
    assert removed.status_code == 204, removed.text
    assert await _status(client, team.id) == "incomplete"
    assert await _notified(session, community, team.id) == 1
    assert await _notified(session, street, team.id) == 1
    assert await _notified(session, elsewhere, team.id) == 0
    # Off the roster, off duty (on no other team).
    on_duty = (
        await session.execute(
            text("SELECT on_duty FROM duty WHERE person_id = :p"), {"p": full_time}
        )
    ).scalar_one()
    assert on_duty is False

    # Another change while incomplete: no second alert.
    await client.delete(
        f"{API}/admin/teams/{team.id}/members/{team.members[1].person_id}", headers=admin
    )
    assert await _notified(session, community, team.id) == 1

    # The alert as the dispatcher reads it: no person named, the team's id.
    row = (
        await session.execute(
            text(
                "SELECT title, body, call_id FROM notification WHERE person_id = :p "
                "AND kind = 'team_incomplete'"
            ),
            {"p": community},
        )
    ).one()
    assert row.call_id is None
    assert "队员" not in row.body
    assert "规则队" not in row.body

    # Complete again (two new members, one full-time), then fall again by a
    # kind change: a new fall, a new alert.
    for i, kind in enumerate(("full_time", "part_time")):
        added = await client.post(
            f"{API}/admin/teams/{team.id}/members",
            json={"phone": f"+861390000{i:04d}", "display_name": f"新队员{i}", "kind": kind},
            headers=admin,
        )
        assert added.status_code == 201, added.text
    assert await _status(client, team.id) == "active"
    new_full_time = (
        await session.execute(
            text("SELECT person_id FROM team_member WHERE team_id = :t AND kind = 'full_time'"),
            {"t": team.id},
        )
    ).scalar_one()
    demoted = await client.put(
        f"{API}/admin/teams/{team.id}/members/{new_full_time}",
        json={"kind": "part_time"},
        headers=admin,
    )
    assert demoted.json()["team_status"] == "incomplete"
    assert await _notified(session, community, team.id) == 2
    assert await _notified(session, street, team.id) == 2


async def test_a_disabled_member_does_not_count(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    admin: dict[str, str],
    team: SceneTeam,
) -> None:
    here = await areas.locate_ids(session, LAT, LNG)
    community, _ = await _staff(session, settings, area=here.community)
    disabled = await client.post(
        f"{API}/admin/persons/{team.members[2].person_id}/disable", headers=admin
    )
    assert disabled.status_code == 200, disabled.text
    profile = (await client.get(f"{API}/teams/{team.id}")).json()
    assert profile["status"] == "incomplete"
    assert str(team.members[2].person_id) not in {m["id"] for m in profile["members"]}
    assert await _notified(session, community, team.id) == 1


async def test_the_thresholds_are_settings(
    session: AsyncSession, database_url: str, team: SceneTeam
) -> None:
    strict = make_settings(database_url, team_min_members=4)
    loose = make_settings(database_url, team_min_members=1, team_min_full_time=0)
    assert (await rules.statuses(session, strict, [team.id]))[team.id] == "incomplete"
    await session.execute(
        text("UPDATE team_member SET kind = 'part_time' WHERE team_id = :t"), {"t": team.id}
    )
    assert (await rules.statuses(session, loose, [team.id]))[team.id] == "active"


# ---- the list of teams ------------------------------------------------------------------


async def test_list_of_teams_by_status_and_area(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    admin: dict[str, str],
    team: SceneTeam,
) -> None:
    short = await make_team(
        session, settings, *offset(LAT, LNG, 80, 0), members=2, complete=False, name="缺员队"
    )
    here = await areas.locate_ids(session, LAT, LNG)
    _, own = await _staff(session, settings, area=here.community)
    other = (
        await session.execute(
            text("SELECT id FROM area WHERE level = 'community' AND id <> :c LIMIT 1"),
            {"c": here.community},
        )
    ).scalar_one()
    _, elsewhere = await _staff(session, settings, area=other)

    async def ids(headers: dict[str, str], **params: Any) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            query = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
            page = await client.get(f"{API}/admin/teams", params=query, headers=headers)
            assert page.status_code == 200, page.text
            found.update({t["id"]: t for t in page.json()["data"]})
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return found

    incomplete = await ids(own, status="incomplete")
    assert str(short.id) in incomplete
    assert str(team.id) not in incomplete
    assert incomplete[str(short.id)] | {"created_at": None} == {
        "id": str(short.id),
        "name": "缺员队",
        "grid": incomplete[str(short.id)]["grid"],
        "status": "incomplete",
        "members": 2,
        "full_time_members": 1,
        "on_duty_count": 2,
        "created_at": None,
    }
    assert all(t["status"] == "incomplete" for t in incomplete.values())
    active = await ids(own, status="active")
    assert str(team.id) in active
    assert str(short.id) not in active
    everything = await ids(own)
    assert set(everything) == set(active) | set(incomplete)
    # Every seeded team of the community is active; the list is the area's.
    in_area = (
        await session.execute(
            text(
                "SELECT count(*) FROM team t JOIN area g ON g.id = t.grid_id "
                "JOIN area b ON b.id = g.parent_id WHERE b.parent_id = :c"
            ),
            {"c": here.community},
        )
    ).scalar_one()
    assert len(everything) == in_area
    assert str(short.id) not in await ids(elsewhere, status="incomplete")
    assert str(short.id) in await ids(admin, status="incomplete")
    assert_problem(
        await client.get(f"{API}/admin/teams", params={"status": "broken"}, headers=admin),
        422,
        "validation_error",
    )
    assert_problem(
        await client.get(f"{API}/admin/teams", params={"cursor": "!!"}, headers=admin),
        422,
        "invalid_cursor",
    )


# ---- incomplete teams are offered nothing -----------------------------------------------


async def test_an_incomplete_nearest_team_gets_no_offer_and_cannot_be_assigned(
    client: httpx.AsyncClient,
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    admin: dict[str, str],
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    nearest = await make_team(
        session, settings, *offset(LAT, LNG, 10, 0), members=2, complete=False, name="近队"
    )
    farther = await make_team(session, settings, *offset(LAT, LNG, 400, 0), name="远队")
    resident = await make_resident(session, settings)
    pressed = await anon_client.post(
        f"{API}/calls",
        json={"location": {"lat": LAT, "lng": LNG}, "category": "visit"},
        headers=resident.headers,
    )
    assert pressed.status_code == 201, pressed.text
    call = pressed.json()
    assert call["team"]["id"] == str(farther.id), "the next nearest active team"
    offered = (
        (
            await session.execute(
                text("SELECT DISTINCT team_id FROM offer WHERE call_id = :c"), {"c": call["id"]}
            )
        )
        .scalars()
        .all()
    )
    assert offered == [farther.id]
    mine = await anon_client.get(f"{API}/offers", headers=nearest.members[0].headers)
    assert all(o["call_id"] != call["id"] for o in mine.json()["data"])

    # A dispatcher cannot hand it to the incomplete team either.
    await session.execute(
        text("UPDATE call SET status = 'escalated', escalation_level = 'community' WHERE id = :c"),
        {"c": call["id"]},
    )
    await session.execute(
        text("UPDATE offer SET status = 'withdrawn' WHERE call_id = :c"), {"c": call["id"]}
    )
    refused = await client.post(
        f"{API}/dispatch/calls/{call['id']}/assign",
        json={"team_id": str(nearest.id)},
        headers=admin,
    )
    assert_problem(refused, 409, "team_incomplete")
    # Completed (a third member, full-time already there), it may be.
    await session.execute(
        text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, 'part_time')"),
        {"t": nearest.id, "p": await make_person(session, "补员")},
    )
    assigned = await client.post(
        f"{API}/dispatch/calls/{call['id']}/assign",
        json={"team_id": str(nearest.id)},
        headers=admin,
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["team"]["id"] == str(nearest.id)
