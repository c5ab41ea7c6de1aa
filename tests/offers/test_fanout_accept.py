"""With OFFER_FANOUT above one a round offers the call to several teams at
once; the first member to accept takes it, and the offers to the other
teams are withdrawn in the same transaction, each with its `offer.closed`
and the alert to those it reached. (The accept finds those offers in the
statement that takes its own: `app/offers/service.py::_TAKE`.)"""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.dispatch.sweeper import expire_offers
from tests.conftest import make_settings
from tests.notifications.test_notifications import (
    POINT,
    accept,
    alerted,
    offer_of,
    press,
    pushes,
    send_pending,
    token_of,
)
from tests.notifications.test_push import register
from tests.scene import clear_duty_near, make_resident, make_team, offset


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, offer_fanout=3)


async def test_the_first_accept_withdraws_the_offers_to_the_other_teams(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    lat, lng = POINT["lat"], POINT["lng"]
    await clear_duty_near(session, lat, lng, 5000)
    teams = [
        await make_team(session, settings, *offset(lat, lng, 40 * k, 30), members=2)
        for k in (1, 2, 3)
    ]
    for team in teams:
        for member in team.members:
            await register(anon_client, member, token_of(member), "android")
    call = await press(anon_client, await make_resident(session, settings))
    assert call["status"] == "offered"
    assert call["team"] is None, "offered to several teams, named by none yet"
    offers = [await offer_of(anon_client, team.members[0], call["id"]) for team in teams]
    assert len({o["id"] for o in offers}) == 3
    await send_pending(session, settings)  # every offer has reached its team's phones

    taker = teams[1].members[0]
    taken = await accept(anon_client, taker, offers[1]["id"])
    assert taken["status"] == "accepted"
    assert taken["team"]["id"] == str(teams[1].id)

    statuses = await session.execute(
        text("SELECT team_id, status FROM offer WHERE call_id = :c"), {"c": call["id"]}
    )
    assert dict(statuses.all()) == {
        teams[0].id: "withdrawn",
        teams[1].id: "accepted",
        teams[2].id: "withdrawn",
    }
    closed = await session.execute(
        text(
            "SELECT offer_id, data->>'status' AS status FROM event "
            "WHERE call_id = :c AND type = 'offer.closed' ORDER BY id"
        ),
        {"c": call["id"]},
    )
    assert sorted((str(r.offer_id), r.status) for r in closed.all()) == sorted(
        [
            (offers[0]["id"], "withdrawn"),
            (offers[1]["id"], "accepted"),
            (offers[2]["id"], "withdrawn"),
        ]
    )
    for team, offer in ((teams[0], offers[0]), (teams[2], offers[2])):
        told = await alerted(session, offer_id=uuid.UUID(offer["id"]), kind="offer_closed")
        assert {n.person_id for n in told} == {m.person_id for m in team.members}
        assert {n.body for n in told} == {"这条求助已撤回或已由他人处理。"}
        assert {d.device_token for d in await pushes(session, [n.id for n in told])} == {
            token_of(m) for m in team.members
        }
    told = await alerted(session, offer_id=uuid.UUID(offers[1]["id"]), kind="offer_closed")
    assert {n.person_id for n in told} == {teams[1].members[1].person_id}, "not the taker"


async def test_a_declined_offer_waits_for_the_other_teams_then_the_call_moves_on(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    """One team declines: the call waits for the two others' offers
    (`move_on` reads them off the declined offer's closing). When those
    lapse too, the call moves on: no team is left in range, so it goes to
    the community's dispatchers."""
    lat, lng = POINT["lat"], POINT["lng"]
    await clear_duty_near(session, lat, lng, 5000)
    teams = [
        await make_team(session, settings, *offset(lat, lng, 40 * k, 30), members=1)
        for k in (1, 2, 3)
    ]
    call = await press(anon_client, await make_resident(session, settings))
    offers = [await offer_of(anon_client, team.members[0], call["id"]) for team in teams]
    declined = await anon_client.post(
        f"/api/v1/offers/{offers[0]['id']}/decline", json={}, headers=teams[0].members[0].headers
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "declined"
    state = await session.execute(
        text("SELECT status, rounds FROM call WHERE id = :c"), {"c": call["id"]}
    )
    assert tuple(state.one()) == ("offered", 1), "waiting for the two other offers"

    await session.execute(
        text("UPDATE offer SET expires_at = now() - interval '1 second' WHERE call_id = :c"),
        {"c": call["id"]},
    )
    assert await expire_offers(session, settings) == 2
    state = await session.execute(
        text("SELECT status, escalation_level, rounds FROM call WHERE id = :c"),
        {"c": call["id"]},
    )
    assert tuple(state.one()) == ("escalated", "community", 1)
