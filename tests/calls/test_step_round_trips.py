"""How many statements a progress step sends to PostgreSQL, each one a
round trip: a budget, like the press's and the accept's
(tests/calls/test_press_round_trips.py, tests/offers/test_accept_round_trips.py),
so that a change that adds round trips to a call's steps says so here."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import Settings
from tests import statements
from tests.notifications.test_notifications import accept, offer_of, press, step
from tests.scene import clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.78, 113.94

# Each step: the principal (1: the tests keep none cached), the call's lock
# with its row and what says who may see it (1; it was two), the move with
# the snapshot it leaves and its event id (1; it was two), its event with
# the caller's alert (1). The last step also writes the responder's activity
# and erases the track of where they were: one statement (1; it was three).
STEP_BUDGET = 4
RESOLVED_BUDGET = STEP_BUDGET + 1


async def test_the_steps_stay_within_their_round_trip_budget(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)
    responder = team.members[0]
    # Two loops, the second counted: the first warms the connection's type
    # lookups, which asyncpg makes once per connection.
    for _ in range(2):
        resident = await make_resident(session, settings)
        call = await press(anon_client, resident, {"lat": LAT, "lng": LNG, "accuracy_m": 8})
        offer = await offer_of(anon_client, responder, call["id"])
        await accept(anon_client, responder, offer["id"])
        sent_by: dict[str, list[str]] = {}
        for status in ("on_site", "resolved"):
            async with statements.watching(connection) as sent:
                await step(anon_client, responder, call["id"], status)
                sent_by[status] = await sent.taken()
    assert len(sent_by["on_site"]) <= STEP_BUDGET, "\n".join(sent_by["on_site"])
    assert len(sent_by["resolved"]) <= RESOLVED_BUDGET, "\n".join(sent_by["resolved"])
