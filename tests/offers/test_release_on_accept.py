"""An accept that makes its team's last free member busy withdraws the
team's other open offers (nobody of the team can take them) and moves those
calls on; while someone of the team is still free, they stay open. Which
offers have no taker any more is asked once, not once per open offer."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import Settings
from app.dispatch import policy as dispatch
from tests import statements
from tests.scene import Member, clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}

# The takers rule's own table: each statement naming it asks whether some
# member can still take an offer. (Checked against the rule's text below, so
# that a rename fails here instead of making the count pass vacuously.)
TAKERS = "offer_decline x"
assert TAKERS in dispatch._has_takers("o")


async def _offer_of(http: httpx.AsyncClient, who: Member, call: dict[str, Any]) -> str:
    offers = (await http.get("/api/v1/offers?status=open", headers=who.headers)).json()["data"]
    offer_id: str = next(o["id"] for o in offers if o["call_id"] == call["id"])
    return offer_id


async def _state(session: AsyncSession, call: dict[str, Any]) -> tuple[str, Any, dict[Any, str]]:
    """The call's status and team, and its offers' status by team."""
    status, team = (
        await session.execute(text("SELECT status, team_id FROM call WHERE id = :id"), call)
    ).one()
    offers = await session.execute(
        text("SELECT team_id, status FROM offer WHERE call_id = :id"), call
    )
    return status, team, dict(offers.all())


async def test_the_last_free_members_accept_releases_the_rest_asking_once(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    near = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=2)
    far = await make_team(session, settings, *offset(LAT, LNG, 900, 0), members=2)
    calls = []
    for _ in range(4):
        resident = await make_resident(session, settings)
        pressed = await anon_client.post(
            "/api/v1/calls", json={"location": POINT}, headers=resident.headers
        )
        assert pressed.status_code == 201, pressed.text
        calls.append(pressed.json())
    assert {c["team"]["id"] for c in calls} == {str(near.id)}, "all four offered to the near team"
    first, second = near.members

    # One member of two takes the first call: the other is still free, so
    # the three other offers stay open; whether they have takers is one
    # statement, not three.
    offer = await _offer_of(anon_client, first, calls[0])
    async with statements.watching(connection) as sent:
        taken = await anon_client.post(f"/api/v1/offers/{offer}/accept", headers=first.headers)
        accept = await sent.taken()
    assert taken.status_code == 200, taken.text
    asking = [s for s in accept if TAKERS in s]
    assert len(asking) == 1, "\n".join(asking)
    for call in calls[1:]:
        assert await _state(session, call) == ("offered", near.id, {near.id: "open"})

    # The other member takes the second: nobody of the team is free now.
    offer = await _offer_of(anon_client, second, calls[1])
    taken = await anon_client.post(f"/api/v1/offers/{offer}/accept", headers=second.headers)
    assert taken.status_code == 200, taken.text
    for call in calls[2:]:
        status, team, offers = await _state(session, call)
        assert (status, team) == ("offered", far.id), "moved on to the next team at once"
        assert offers == {near.id: "withdrawn", far.id: "open"}
    # The accepted calls are untouched by the release.
    for call in calls[:2]:
        assert await _state(session, call) == ("accepted", near.id, {near.id: "accepted"})
