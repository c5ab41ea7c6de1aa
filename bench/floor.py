"""The press floor (issue 13, target 2): what a press's own SQL costs with
nothing around it.

The statements a press sends (`tests/calls/test_press_round_trips.py`
lists and bounds them), taken from the app's own modules, compiled once
for asyncpg and run as prepared statements in one transaction per press
from a pool, closed loop: the resident's lock, the checks with the
locate, the call and its `searching` event, the nearest teams, the offer
with its event and its alerts, the move to `offered` with its event and the
caller's alert; NOTIFY by the trigger on `event`. No HTTP, no
authentication, no pydantic: the events' JSON from what the press knows.
Closed-loop POST /calls against this floor is the ratio target 2 asks for.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg

from app.core.sql import Write, compiled, with_writes
from bench.stats import summary


class PressStatements:
    """The app's statements of a press, compiled for asyncpg as the app
    compiles them (`app.core.sql.compiled`)."""

    def __init__(self) -> None:
        from app.calls import service as calls
        from app.calls import state
        from app.core import locks
        from app.dispatch import policy
        from app.models.call import CallStatus
        from app.notifications import alerts
        from app.offers import lifecycle

        self.lock = compiled(locks._XACT_LOCK)
        self.checks = compiled(
            calls.press_checks(calls.OriginKind.resident, tap=False, resident=True)
        )
        self.insert = compiled(state._INSERT)
        self.nearest = compiled(policy._NEAREST_TEAMS)
        # A row's event with its alerts in one statement, as
        # `events.append_with` sends it: the offer with its `offer.created`,
        # the born call's move to `offered` with its `call.updated`.
        self.offer, self.offered = (
            compiled(with_writes(statement, [Write(alerts._SEND, alerts.send_fills(who), {})])[0])
            for statement, who in (
                (lifecycle._CREATE, alerts._FREE_MEMBERS),
                (
                    state.born_move_statement(CallStatus.offered, ("rounds", "team_id")),
                    alerts._ONE,
                ),
            )
        )
        self.lock_namespace = int(locks.Lock.resident_calls)
        self.alert_texts = {
            kind: (
                sorted(alerts._TEXTS),
                [alerts.texts(kind, "urgent", loc) for loc in sorted(alerts._TEXTS)],
                alerts.texts(kind, "urgent"),
            )
            for kind in ("offer", "status.offered")
        }


async def _press(
    conn: asyncpg.Connection,
    st: PressStatements,
    settings: Any,
    resident: uuid.UUID,
    lat: float,
    lng: float,
) -> bool:
    """One press; True when it was offered to a team."""
    from app.dispatch import policy
    from app.duty import availability
    from app.teams import rules as team_rule

    call_id = uuid.uuid4()
    v: dict[str, Any] = {
        "ns": st.lock_namespace,
        "key": str(resident),
        "p": resident,
        "lat": lat,
        "lng": lng,
        "id": call_id,
        "call_id": call_id,
        "resident": resident,
        "screen": None,
        "api_key": None,
        "status": "searching",
        "level": "grid",
        "category": "urgent",
        "note": None,
        "accuracy": 10.0,
        "radius_m": float(settings.search_radius_m),
        **availability.params(settings),
        **team_rule.params(settings),
        "k": policy.first_k(1, 0),
        "skip": [],
        "want": 1,
        "timeout": timedelta(seconds=settings.offer_timeout_seconds),
        "round": 1,
        "assigned_by": None,
        "person_id": None,  # an offer to a team, not a paired member's
        "team_about": None,  # alerts about a call, not about a team
        "touch": True,
        "offer_id": None,
    }
    async with conn.transaction():
        await conn.execute(st.lock.sql, *st.lock.args(v))
        checked = await conn.fetchrow(st.checks.sql, *st.checks.args(v))
        v.update(grid=checked["grid_id"], community=checked["community_id"])
        v["street"] = checked["street_id"]
        born = {k: v[k] for k in ("id", "status", "category", "note", "lat", "lng", "grid")}
        born.update(created_at=checked["tx_now"], grid_name=checked["grid_name"])
        v.update(type="call.updated", data=json.dumps(born, default=str))
        await conn.execute(st.insert.sql, *st.insert.args(v))  # the call and its event
        found = await conn.fetchrow(st.nearest.sql, *st.nearest.args(v))
        teams = json.loads(found["teams"]) if isinstance(found["teams"], str) else found["teams"]
        if not teams:
            return False
        team = teams[0]
        offer_id = uuid.uuid4()
        expires_at = checked["tx_now"] + v["timeout"]
        offer = {"id": offer_id, "call_id": call_id, "team": team, "expires_at": expires_at}
        v.update(offer_id=offer_id, team_id=uuid.UUID(team["team_id"]), expires_at=expires_at)
        v.update(distance=team["distance_m"], type="offer.created")
        v["data"] = json.dumps(offer, default=str)
        # The offer, its event and its alerts: one statement.
        await conn.execute(
            st.offer.sql,
            *st.offer.args({**v, **_alert_values(st, v, "offer", {"team": str(v["team_id"])})}),
        )
        v.update(id=call_id, offer_id=None, target="offered", current="searching", rounds=1)
        # The move with its `call.updated` (the call as the press knows it)
        # and the caller's alert.
        born.update(status="offered", team=team, last_event_id=None)
        v.update(type="call.updated", data=json.dumps(born, default=str))
        values = {**v, **_alert_values(st, v, "status.offered", {"person": resident})}
        await conn.execute(st.offered.sql, *st.offered.args(values))
    return True


def _alert_values(
    st: PressStatements, v: dict[str, Any], kind: str, who: dict[str, Any]
) -> dict[str, Any]:
    """The values of an event's alert (`kind`, to `who`), as its write takes them."""
    locales, written, (title, body) = st.alert_texts[kind]
    alert_values = {
        **v,
        **who,
        "kind": "offer" if kind == "offer" else "call_status",
        "call": v["call_id"],
        "offer": v["offer_id"],
        "person": who.get("person"),
        "locales": locales,
        "titles": [t for t, _ in written],
        "bodies": [b for _, b in written],
        "default_title": title,
        "default_body": body,
        "collapse": f"call-{v['call_id']}",
        "expires_at": v["expires_at"] if kind == "offer" else None,
        "ttl": timedelta(minutes=15),
    }
    return {f"w0_{name}": value for name, value in alert_values.items()}


async def press_floor(
    dsn: str,
    settings: Any,
    residents: Sequence[uuid.UUID],
    points: Sequence[tuple[float, float]],
    seconds: float,
    concurrency: int,
) -> dict[str, Any]:
    """Closed loop: `concurrency` connections pressing the app's SQL as fast
    as PostgreSQL answers, each press by the next of `residents` (in turn)."""
    statements = PressStatements()
    rng = random.Random(5)
    latencies: list[float] = []
    offered = 0
    errors: dict[str, int] = {}
    it = itertools.cycle(residents)
    pool = await asyncpg.create_pool(
        dsn, min_size=concurrency, max_size=concurrency, server_settings={"jit": "off"}
    )
    try:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal offered
            async with pool.acquire() as conn:
                while time.perf_counter() < end:
                    resident = next(it)
                    lat, lng = points[rng.randrange(len(points))]
                    t = time.perf_counter()
                    try:
                        if await _press(conn, statements, settings, resident, lat, lng):
                            offered += 1
                    except asyncpg.PostgresError as exc:
                        name = type(exc).__name__
                        errors[name] = errors.get(name, 0) + 1
                        continue
                    latencies.append(time.perf_counter() - t)

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        await pool.close()
    return {
        "concurrency": concurrency,
        "presses_per_s": round(len(latencies) / elapsed, 1),
        # This process's CPU (asyncpg's client side of each press), to set
        # beside the server's CPU per press in the closed loops.
        "client_cpu_ms_per_press": round(cpu / max(len(latencies), 1) * 1000, 2),
        "offered_fraction": round(offered / max(len(latencies), 1), 3),
        "errors": errors,
        **summary(latencies),
    }


def floor_settings(database_url: str) -> Any:
    """The app's settings as the bench's server runs with them (positions
    stay fresh for a day: bench.infra.server_env)."""
    from app.core.config import Settings

    return Settings.model_validate(
        {"database_url": database_url, "duty_position_max_age_seconds": 86400}
    )


async def person_ids(dsn: str) -> list[uuid.UUID]:
    """Everyone in the database, to press as (the floor checks no limit)."""
    conn = await asyncpg.connect(dsn)
    try:
        return [row["id"] for row in await conn.fetch("SELECT id FROM person ORDER BY id")]
    finally:
        await conn.close()
