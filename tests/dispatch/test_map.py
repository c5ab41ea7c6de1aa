"""GET /dispatch/map: the live map of an area, in the test's transaction."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.principals import bearer, make_person, token_for
from tests.scene import SceneTeam, make_resident, make_team, offset

MAP = "/api/v1/dispatch/map"


@dataclass
class Spot:
    lat: float
    lng: float
    grid: uuid.UUID
    community: uuid.UUID


async def spot_in_community(session: AsyncSession, nth: int) -> Spot:
    """A point well inside the first grid (by code) of the nth community."""
    row = (
        await session.execute(
            text(
                """
                SELECT g.id AS grid, c.id AS community,
                       ST_Y(ST_PointOnSurface(g.boundary)) AS lat,
                       ST_X(ST_PointOnSurface(g.boundary)) AS lng
                FROM area g JOIN area b ON b.id = g.parent_id JOIN area c ON c.id = b.parent_id
                WHERE g.level = 'grid'
                  AND c.id = (SELECT id FROM area WHERE level = 'community'
                              ORDER BY code OFFSET :nth LIMIT 1)
                ORDER BY g.code LIMIT 1
                """
            ),
            {"nth": nth},
        )
    ).one()
    return Spot(row.lat, row.lng, row.grid, row.community)


async def dispatcher_of(
    session: AsyncSession, settings: Settings, area: uuid.UUID
) -> dict[str, str]:
    person = await make_person(session, "调度员")
    await session.execute(
        text("INSERT INTO dispatcher (person_id, area_id) VALUES (:p, :a)"),
        {"p": person, "a": area},
    )
    return bearer(await token_for(session, settings, person))


@pytest.fixture
async def http(app: FastAPI) -> Any:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def by_kind(document: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        f["properties"]["id"]: f for f in document["features"] if f["properties"]["kind"] == kind
    }


async def test_a_dispatcher_draws_its_area(
    session: AsyncSession, settings: Settings, http: httpx.AsyncClient
) -> None:
    here = await spot_in_community(session, 0)
    elsewhere = await spot_in_community(session, 1)
    team = await make_team(session, settings, here.lat, here.lng, members=2, name="地图队")
    far_team = await make_team(session, settings, elsewhere.lat, elsewhere.lng, name="别处队")
    resident = await make_resident(session, settings)
    c_lat, c_lng = offset(here.lat, here.lng, 40, -30)
    pressed = await http.post(
        "/api/v1/calls",
        json={"location": {"lat": c_lat, "lng": c_lng, "accuracy_m": 12}, "note": "三楼漏水"},
        headers=resident.headers,
    )
    assert pressed.status_code == 201, pressed.text
    call_id = pressed.json()["id"]
    staff = await dispatcher_of(session, settings, here.community)

    answer = await http.get(MAP, headers=staff)

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/geo+json")
    document = answer.json()
    assert document["type"] == "FeatureCollection"
    assert document["area"]["id"] == str(here.community)
    assert document["area"]["level"] == "community"
    calls, teams, members = (by_kind(document, k) for k in ("call", "team", "member"))
    # The call at its exact point, lng-lat order, with its state and no person.
    call = calls[call_id]
    # Exact to 7 decimals (1 cm), as GET /areas writes coordinates.
    assert call["geometry"]["type"] == "Point"
    assert call["geometry"]["coordinates"] == pytest.approx([c_lng, c_lat], abs=1e-7)
    assert call["properties"]["status"] in {"offered", "searching", "escalated"}
    assert call["properties"]["category"] == "urgent"
    assert call["properties"]["grid_id"] == str(here.grid)
    assert "note" not in call["properties"]
    assert "三楼漏水" not in answer.text
    # The team at its base, active, both its members on duty and available.
    mine = teams[str(team.id)]
    assert mine["geometry"]["coordinates"] == pytest.approx([here.lng, here.lat])
    assert mine["properties"]["status"] == "active"
    assert mine["properties"]["on_duty_count"] == 2
    assert mine["properties"]["available_count"] == 2
    assert mine["properties"]["name"] == "地图队"
    # The members at their positions, with their teams; no phone anywhere.
    for member in team.members:
        feature = members[str(member.person_id)]
        assert feature["properties"]["team_ids"] == [str(team.id)]
        assert feature["properties"]["available"] is True
        assert feature["properties"]["display_name"].startswith("地图队队员")
    assert "phone" not in answer.text
    # Nothing of the other community.
    assert str(far_team.id) not in teams
    assert not {str(m.person_id) for m in far_team.members} & set(members)
    # Every feature's id is its properties' id, and its kind is one of three.
    assert all(f["id"] == f["properties"]["id"] for f in document["features"])
    assert {f["properties"]["kind"] for f in document["features"]} == {"call", "team", "member"}


async def test_on_duty_but_unavailable_members_are_marked(
    session: AsyncSession, settings: Settings, http: httpx.AsyncClient
) -> None:
    """Who is `available` is dispatch's rule: a stale position is on the map
    but not available; a member off duty is not on the map at all."""
    here = await spot_in_community(session, 0)
    team: SceneTeam = await make_team(session, settings, here.lat, here.lng, members=3)
    stale, off, fresh = team.members
    await session.execute(
        text("UPDATE duty SET located_at = now() - interval '2 hours' WHERE person_id = :p"),
        {"p": stale.person_id},
    )
    await session.execute(
        text(
            "UPDATE duty SET on_duty = false, location = NULL, located_at = NULL "
            "WHERE person_id = :p"
        ),
        {"p": off.person_id},
    )
    staff = await dispatcher_of(session, settings, here.community)

    document = (await http.get(MAP, headers=staff)).json()

    members = by_kind(document, "member")
    assert members[str(stale.person_id)]["properties"]["available"] is False
    assert members[str(fresh.person_id)]["properties"]["available"] is True
    assert str(off.person_id) not in members
    counts = by_kind(document, "team")[str(team.id)]["properties"]
    assert (counts["on_duty_count"], counts["available_count"]) == (2, 1)


async def test_a_sub_area_narrows_the_map(
    session: AsyncSession, settings: Settings, http: httpx.AsyncClient
) -> None:
    here = await spot_in_community(session, 0)
    team = await make_team(session, settings, here.lat, here.lng)
    staff = await dispatcher_of(session, settings, here.community)

    whole = (await http.get(MAP, headers=staff)).json()
    grid = await http.get(MAP, params={"area_id": str(here.grid)}, headers=staff)

    assert grid.status_code == 200, grid.text
    document = grid.json()
    assert document["area"] == {
        "id": str(here.grid),
        "name": document["area"]["name"],
        "level": "grid",
    }
    teams = by_kind(document, "team")
    assert str(team.id) in teams
    assert {t["properties"]["grid_id"] for t in teams.values()} == {str(here.grid)}
    assert len(teams) < len(by_kind(whole, "team"))


async def test_who_may_draw_which_area(
    session: AsyncSession, settings: Settings, http: httpx.AsyncClient
) -> None:
    here = await spot_in_community(session, 0)
    elsewhere = await spot_in_community(session, 1)
    staff = await dispatcher_of(session, settings, here.community)
    admin = bearer(
        await token_for(session, settings, await make_person(session, "管", is_admin=True))
    )
    resident = await make_resident(session, settings)

    outside = await http.get(MAP, params={"area_id": str(elsewhere.grid)}, headers=staff)
    assert outside.status_code == 403
    assert outside.json()["code"] == "outside_your_area"
    unknown = await http.get(MAP, params={"area_id": str(uuid.uuid4())}, headers=staff)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"
    bad = await http.get(MAP, params={"area_id": "nope"}, headers=staff)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    refused = await http.get(MAP, headers=resident.headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_staff"
    assert (await http.get(MAP)).status_code == 401

    # An admin draws any area, and by default the whole district.
    other = await http.get(MAP, params={"area_id": str(elsewhere.community)}, headers=admin)
    assert other.status_code == 200
    district = await http.get(MAP, headers=admin)
    assert district.status_code == 200
    document = district.json()
    assert document["area"] is None
    seeded_teams = (await session.execute(text("SELECT count(*) FROM team"))).scalar_one()
    assert len(by_kind(document, "team")) == seeded_teams
    json.dumps(document)  # plain JSON
