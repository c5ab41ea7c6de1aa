"""The statements of a call's whole loop (press, accept, progress to
resolved) keep their generic plans: PostgreSQL plans a prepared statement
for its values on its first five executions, then keeps one plan for all
values unless a plan for the values is estimated cheaper, and planning
anew costs PostgreSQL's CPU on every execution (an alert statement that
named its one person through an array was planned anew every time: 0.4-0.6
ms each, docs/benchmarks.md)."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import Settings
from tests.notifications.test_notifications import offer_of, press
from tests.scene import clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.79, 113.95
LOOPS = 8  # more than the five executions planned for their values


async def test_the_whole_loop_keeps_generic_plans(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=LOOPS)
    point = {"lat": LAT, "lng": LNG, "accuracy_m": 8}
    for member in team.members:
        call = await press(anon_client, await make_resident(session, settings), point)
        offer = await offer_of(anon_client, member, call["id"])
        accepted = await anon_client.post(
            f"/api/v1/offers/{offer['id']}/accept", headers=member.headers
        )
        assert accepted.status_code == 200, accepted.text
        for step in ("en_route", "on_site", "resolved"):
            moved = await anon_client.post(
                f"/api/v1/calls/{call['id']}/progress",
                json={"status": step},
                headers=member.headers,
            )
            assert moved.status_code == 200, moved.text

    # The requests ran on the test's connection (each in a savepoint of its
    # transaction), so its prepared statements are theirs.
    planned = (
        await connection.execute(
            text(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE generic_plans + custom_plans >= :n"
            ),
            {"n": LOOPS},
        )
    ).all()
    assert len(planned) >= 10, "the loop's statements were seen"
    always_custom = [
        f"{row.custom_plans} custom: {' '.join(row.statement.split())[:160]}"
        for row in planned
        if row.generic_plans == 0
    ]
    assert always_custom == []
