"""The alerts of a call's whole loop (press, accept, progress to resolved)
keep their generic plans: PostgreSQL plans a prepared statement for its
values on its first five executions, then keeps one plan for all values
unless a plan for the values is estimated cheaper, and planning anew costs
PostgreSQL's CPU on every execution (the caller's alert, which named its
one person in an array, was planned anew every time; with the event's
statement 1.42 ms of the backend's CPU against 0.78 as one value:
docs/benchmarks.md, "Plans and round trips per event")."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.calls import service as calls
from app.calls.service import OriginKind
from app.core import sql
from app.core.config import Settings
from tests.notifications.test_notifications import accept, offer_of, press, step
from tests.scene import clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.79, 113.95
LOOPS = 8  # more than the five executions planned for their values


async def test_the_whole_loops_alerts_keep_generic_plans(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=LOOPS)
    before = await _plans(connection)
    point = {"lat": LAT, "lng": LNG, "accuracy_m": 8}
    for member in team.members:
        call = await press(anon_client, await make_resident(session, settings), point)
        offer = await offer_of(anon_client, member, call["id"])
        await accept(anon_client, member, offer["id"])
        for status in ("en_route", "on_site", "resolved"):
            await step(anon_client, member, call["id"], status)
    after = await _plans(connection)

    # The alerts' statements this loop ran at least LOOPS times (other tests
    # share the connection: counted from before the loop). Only those: how
    # they name people must not make each execution's plan depend on the
    # values. Other statements' choice depends on the test database's tiny
    # tables; the bench watches them (`python -m bench.press_cpu --plans`).
    ran = {
        name: (generic - before.get(name, (0, 0, ""))[0], custom - before.get(name, (0, 0, ""))[1])
        for name, (generic, custom, _) in after.items()
    }
    looped = {
        name: plans
        for name, plans in ran.items()
        if sum(plans) >= LOOPS and "INSERT INTO notification" in after[name][2]
    }
    # The offer's, the caller's (four status changes) and the closed offer's.
    assert len(looped) >= 3, "the loop's alerts were seen"
    always_custom = [
        f"{custom} custom: {after[name][2][:160]}"
        for name, (generic, custom) in looped.items()
        if generic == 0
    ]
    assert always_custom == [], "\n".join(always_custom)


async def _plans(connection: AsyncConnection) -> dict[str, tuple[int, int, str]]:
    """The connection's prepared statements: generic and custom plans so far."""
    # The requests run on the test's connection (each in a savepoint of its
    # transaction), so its prepared statements are theirs.
    rows = await connection.execute(
        text("SELECT name, generic_plans, custom_plans, statement FROM pg_prepared_statements")
    )
    return {
        row.name: (row.generic_plans, row.custom_plans, " ".join(row.statement.split()))
        for row in rows
    }


async def test_the_press_checks_keep_generic_plans_whatever_checks_apply(
    connection: AsyncConnection,
) -> None:
    """A check that does not apply (no double-tap guard: a key's request, or
    DOUBLE_TAP_SECONDS=0; no resident to have paired members: a screen) is
    left out of the statement. Switched off by a value, it made each plan
    for the values cheaper than the generic one, and PostgreSQL planned the
    press's first statement anew on every press (about 1.5 ms of its CPU:
    docs/benchmarks.md, "A plan per press")."""
    values = {
        "p": uuid.uuid4(),
        "resident": uuid.uuid4(),
        "window": timedelta(seconds=20),
        "lat": LAT,
        "lng": LNG,
        "meters": 150.0,
    }
    variants = [
        (kind, tap, resident)
        for kind in OriginKind
        for tap in (False, True)
        for resident in (False, True)
    ]
    for kind, tap, resident in variants:
        statement = calls.press_checks(kind, tap=tap, resident=resident)
        # What it binds is what it checks: no value turns a check off.
        bound = set(sql.compiled(statement).names)
        assert bound == {"p", "lat", "lng"} | ({"window", "meters"} if tap else set()) | (
            {"resident"} if resident else set()
        ), (kind, tap, resident)
        before = await _plans(connection)
        for _ in range(LOOPS):
            row = await sql.one(connection, statement, values)
            assert (row.duplicate, row.open_calls, row.paired) == (None, 0, False)
            assert row.grid_id is not None
        after = await _plans(connection)
        text_sent = sql.compiled(statement).sql.split()
        ran = [
            (generic - before.get(name, (0, 0, ""))[0], custom)
            for name, (generic, custom, sent) in after.items()
            if sent.split() == text_sent
        ]
        assert len(ran) == 1, (kind, tap, resident)
        assert ran[0][0] >= LOOPS - 5, (kind, tap, resident, ran)
