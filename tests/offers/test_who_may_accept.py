"""Who may take an offer: a member of the offered team who is available now
(`app/duty/availability.py`: on duty, with a fresh position, not busy) and
who has not declined it. Anyone else is refused, and the offer stays open
for those who may."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.principals import make_cast
from tests.problems import assert_problem
from tests.scene import Member, SceneTeam, clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}


async def _offered(
    http: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> tuple[SceneTeam, dict[str, Any]]:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)
    resident = await make_resident(session, settings)
    pressed = await http.post("/api/v1/calls", json={"location": POINT}, headers=resident.headers)
    assert pressed.status_code == 201, pressed.text
    call = pressed.json()
    offers = (await http.get("/api/v1/offers", headers=team.members[0].headers)).json()["data"]
    return team, next(o for o in offers if o["call_id"] == call["id"])


async def assigned_to_a_team_off_duty(
    http: httpx.AsyncClient, session: AsyncSession, settings: Settings, lat: float, lng: float
) -> tuple[SceneTeam, dict[str, Any]]:
    """A press near a team with nobody on duty (escalated), then assigned to
    that team by an admin: the team and the call."""
    await clear_duty_near(session, lat, lng, 5000)
    team = await make_team(session, settings, *offset(lat, lng, 40, 30), members=3, on_duty=0)
    resident = await make_resident(session, settings)
    point = {"lat": lat, "lng": lng, "accuracy_m": 8}
    call: dict[str, Any] = (
        await http.post("/api/v1/calls", json={"location": point}, headers=resident.headers)
    ).json()
    assert call["status"] == "escalated"
    cast = await make_cast(session, settings)
    assigned = await http.post(
        f"/api/v1/dispatch/calls/{call['id']}/assign",
        json={"team_id": str(team.id)},
        headers=cast.headers["admin"],
    )
    assert assigned.status_code == 200, assigned.text
    return team, call


async def _accept(http: httpx.AsyncClient, offer: dict[str, Any], who: Member) -> httpx.Response:
    return await http.post(f"/api/v1/offers/{offer['id']}/accept", headers=who.headers)


async def _still_open(http: httpx.AsyncClient, offer: dict[str, Any], who: Member) -> None:
    """The refusal left the offer to the rest of the team."""
    taken = await _accept(http, offer, who)
    assert taken.status_code == 200, taken.text
    assert taken.json()["responder"]["id"] == str(who.person_id)


@pytest.mark.parametrize(
    "how",
    [
        pytest.param(
            "UPDATE duty SET on_duty = false, location = NULL, located_at = NULL "
            "WHERE person_id = :p",
            id="off-duty",
        ),
        pytest.param(
            "UPDATE duty SET located_at = now() - interval '2 hours' WHERE person_id = :p",
            id="stale-position",
        ),
    ],
)
async def test_a_member_who_is_not_available_cannot_take_it(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, how: str
) -> None:
    team, offer = await _offered(anon_client, session, settings)
    away = team.members[1]
    await session.execute(text(how), {"p": away.person_id})
    assert_problem(await _accept(anon_client, offer, away), 409, "not_on_duty")
    await _still_open(anon_client, offer, team.members[2])


async def test_a_member_who_declined_cannot_take_it_after_all(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    team, offer = await _offered(anon_client, session, settings)
    changed_mind = team.members[1]
    declined = await anon_client.post(
        f"/api/v1/offers/{offer['id']}/decline",
        json={"reason": "在外地"},
        headers=changed_mind.headers,
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "open", "the rest of the team can still take it"
    assert_problem(await _accept(anon_client, offer, changed_mind), 409, "offer_declined")
    await _still_open(anon_client, offer, team.members[0])


async def test_an_off_duty_member_may_take_what_a_dispatcher_assigned(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    """A dispatcher chose the team knowing nobody of it is on duty (and may
    have phoned them): its members may take it. (A decline from such a team
    sends the call back to the dispatchers at once: nobody available is
    left to wait for.)"""
    team, call = await assigned_to_a_team_off_duty(anon_client, session, settings, LAT, LNG)
    offers = (await anon_client.get("/api/v1/offers", headers=team.members[0].headers)).json()
    offer = next(o for o in offers["data"] if o["call_id"] == call["id"])
    await _still_open(anon_client, offer, team.members[1])
