"""How many statements an accept sends to PostgreSQL, each one a round
trip: a budget, like the press's (tests/calls/test_press_round_trips.py),
so that a change that adds round trips to the accept says so here."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import Settings
from tests import statements
from tests.notifications.test_notifications import offer_of, press, token_of
from tests.notifications.test_push import register
from tests.scene import clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.78, 113.94

# The principal (1: the tests keep none cached); the offer, if it is the
# member's, with the taker's accept lock and the call's lock and row (1);
# the offer taken if the member may take it, its unsent pushes withdrawn,
# its snapshot read with its event id and the call's other open offers
# (1); its event with the alert to the others it reached (1); the call
# moved to `accepted` with the snapshot it leaves and its event id (1), its
# event with the caller's alert (1); the open offers of the taker's teams
# that nobody else can take (1). (13 before the reads took the locks, the
# take asked whether the member may, and the closing withdrew the pushes
# and read the offer's view and the call's other offers.)
ACCEPT_BUDGET = 7


async def test_an_accept_stays_within_its_round_trip_budget(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)
    for member in team.members:
        await register(anon_client, member, token_of(member), "android")
    # Two loops, the second counted: the first warms the connection's type
    # lookups, which asyncpg makes once per connection.
    for resident in (
        await make_resident(session, settings),
        await make_resident(session, settings),
    ):
        call = await press(anon_client, resident, {"lat": LAT, "lng": LNG, "accuracy_m": 8})
        offer = await offer_of(anon_client, team.members[0], call["id"])
        taker = team.members[0]
        async with statements.watching(connection) as sent:
            accepted = await anon_client.post(
                f"/api/v1/offers/{offer['id']}/accept", headers=taker.headers
            )
            accept = await sent.taken()
        assert accepted.status_code == 200, accepted.text
        cancelled = await anon_client.post(
            f"/api/v1/calls/{call['id']}/cancel", headers=resident.headers
        )
        assert cancelled.status_code == 200, cancelled.text
    # The last accept's: its pushes were pending, so it withdrew some.
    withdrawn = await connection.execute(
        text(
            "SELECT count(*) FROM push_delivery pd JOIN notification n "
            "ON n.id = pd.notification_id WHERE n.offer_id = :o AND pd.status = 'withdrawn'"
        ),
        {"o": offer["id"]},
    )
    assert withdrawn.scalar_one() >= 1
    assert len(accept) <= ACCEPT_BUDGET, "\n".join(accept)
