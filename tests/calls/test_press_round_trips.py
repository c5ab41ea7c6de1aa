"""How many statements a press sends to PostgreSQL, each one a round trip
(issue 13: a press was 38 of them, one per small step; docs/benchmarks.md).
A budget, so that a change that adds round trips to the press says so here."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import Settings
from tests import statements
from tests.scene import clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93


# The principal (1, none once it is cached), the resident's lock (1), the
# checks with the locate and whether the caller has paired members (1), the
# call with its `searching` event (1), the nearest teams (1), the offer with
# its event and its alerts (1; it was two), the `offered` move with its
# `call.updated` and the caller's alert (1; it was two: the press knows the
# call it made whole, so nothing is read back). (A caller with paired
# members: one more, the paired round's own query.)
PRESS_BUDGET = 7


async def test_a_press_stays_within_its_round_trip_budget(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)
    resident = await make_resident(session, settings)
    # A first press by someone else: the connection's first statements also
    # make asyncpg ask PostgreSQL about the types they use, once per
    # connection (a server's connections are long-lived): not the press's.
    warm_up = await make_resident(session, settings)
    first = await anon_client.post(
        "/api/v1/calls",
        json={"location": {"lat": LAT, "lng": LNG, "accuracy_m": 8}},
        headers=warm_up.headers,
    )
    assert first.status_code == 201, first.text
    # Through the session and below it (app.core.sql): both are round trips.
    # The test's own transaction wraps the request in a savepoint: not the press's.
    async with statements.watching(connection) as sent:
        pressed = await anon_client.post(
            "/api/v1/calls",
            json={"location": {"lat": LAT, "lng": LNG, "accuracy_m": 8}},
            headers=resident.headers,
        )
        press = await sent.taken()
    assert pressed.status_code == 201, pressed.text
    assert pressed.json()["status"] == "offered"
    assert len(press) <= PRESS_BUDGET, "\n".join(press)
    # NOTIFY comes from the trigger on `event`, once per transaction.
    assert not [s for s in press if "pg_notify" in s]
    # A caller without paired members pays nothing for the paired round.
    assert not [s for s in press if "x.person_id <> c.resident_id" in s]
