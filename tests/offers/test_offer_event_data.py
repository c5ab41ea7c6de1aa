"""An offer's `offer.created` carries the offer as it was made. Its data is
built in Python by the offer's maker and written with the offer's row by
one statement (`app.offers.lifecycle.create_offer`), not read back from the
row: it must still be what reading the row back gives, to the microsecond
of `expires_at` and the digit of `distance_m`, for every maker: a press's
first round, a later round after a lock, a paired round, a dispatcher's
assignment."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.offers import lifecycle
from tests.offers.test_who_may_accept import assigned_to_a_team_off_duty
from tests.scene import clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.771, 113.931
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}


async def assert_offer_events_are_views(
    session: AsyncSession, settings: Settings, call_id: str | uuid.UUID
) -> int:
    """Each `offer.created` of the call against its offer read back (as it
    was made: open); how many there were."""
    rows = (
        await session.execute(
            text(
                """
                SELECT e.offer_id, e.data, o.created_at, o.expires_at
                FROM event e JOIN offer o ON o.id = e.offer_id
                WHERE e.call_id = :c AND e.type = 'offer.created' ORDER BY e.id
                """
            ),
            {"c": call_id},
        )
    ).all()
    for row in rows:
        view = (await lifecycle.offer_view(session, row.offer_id)).model_dump(mode="json")
        assert row.data == {**view, "status": "open"}
        # Made at the transaction's time: the offer's row says when.
        assert row.expires_at - row.created_at == timedelta(seconds=settings.offer_timeout_seconds)
    return len(rows)


async def test_the_nearest_teams_offers_carry_what_their_rows_say(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    first = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3, name="甲队")
    await make_team(session, settings, *offset(LAT, LNG, 300, -200), members=3, name="乙队")
    resident = await make_resident(session, settings)
    pressed = await anon_client.post(
        "/api/v1/calls", json={"location": POINT, "category": "visit"}, headers=resident.headers
    )
    assert pressed.status_code == 201, pressed.text
    call = pressed.json()
    offers = (await anon_client.get("/api/v1/offers", headers=first.members[0].headers)).json()
    offer = next(o for o in offers["data"] if o["call_id"] == call["id"])
    # The first team declines, every member: the next round (the call
    # locked and read again) offers it to the second.
    for member in first.members:
        declined = await anon_client.post(
            f"/api/v1/offers/{offer['id']}/decline", headers=member.headers
        )
        assert declined.status_code == 200, declined.text
    assert await assert_offer_events_are_views(session, settings, call["id"]) == 2


async def test_an_assigned_offer_carries_what_its_row_says(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    _, call = await assigned_to_a_team_off_duty(anon_client, session, settings, LAT, LNG)
    assert await assert_offer_events_are_views(session, settings, call["id"]) == 1
