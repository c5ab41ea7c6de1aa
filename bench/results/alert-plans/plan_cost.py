"""PostgreSQL's CPU for one resident's status alert in the statement of
the event that brings it (`events._INSERT`): with the person in an array
(`alerts._LISTED`) planned for its values on every execution, as the
app's statement was (`python -m bench.press_cpu --plans`: 0 generic
plans), and with a generic plan; and as a plain value (`alerts._ONE`) in
PostgreSQL's default plan cache mode (whether the array form gets its
generic plan depends on the tables' statistics: on this script's fresh
database it does). On one connection, alternated, each execution rolled
back; the backend's CPU time (psutil: PostgreSQL runs on this machine)
per execution, and how each statement was planned.

    python bench/results/alert-plans/plan_cost.py [--rounds 6] [--n 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import psutil

from app.core import sql
from app.events import log as events
from app.models.notification import NotificationKind
from app.notifications import alerts
from bench.infra import BenchDatabase, admin_url_from_env


def _listed(person: uuid.UUID) -> list[uuid.UUID]:
    return [person]


def _one(person: uuid.UUID) -> uuid.UUID:
    return person


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def measure(rounds: int, n: int) -> dict[str, Any]:
    db = BenchDatabase(admin_url_from_env())
    await db.create()
    try:
        db.migrate()
        db.seed(100, 0.5)
        conn = await asyncpg.connect(db.dsn)
        try:
            people = [r["id"] for r in await conn.fetch("SELECT id FROM person LIMIT 200")]
            grid = await conn.fetchval("SELECT id FROM area WHERE level = 'grid' LIMIT 1")
            calls: list[uuid.UUID] = []
            for _ in range(50):
                call_id = uuid.uuid4()
                await conn.execute(
                    "INSERT INTO call (id, resident_id, status, category, escalation_level,"
                    " location, grid_id, community_id, street_id, rounds)"
                    " SELECT $1, $2, 'offered', 'urgent', 'grid',"
                    " ST_SetSRID(ST_MakePoint(113.93, 22.77), 4326)::geography, g.id,"
                    " b.parent_id, c.parent_id, 1"
                    " FROM area g JOIN area b ON b.id = g.parent_id"
                    " JOIN area c ON c.id = b.parent_id WHERE g.id = $3",
                    call_id,
                    people[len(calls)],
                    grid,
                )
                calls.append(call_id)
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            alert = alerts.Alert(
                NotificationKind.call_status, "status.offered", "urgent", None, None, None
            )
            forms: dict[str, tuple[str, str, Callable[[uuid.UUID], Any], str]] = {
                "array, planned for its values": (
                    alerts._LISTED,
                    "people",
                    _listed,
                    "force_custom_plan",
                ),
                "array, generic plan": (alerts._LISTED, "people", _listed, "force_generic_plan"),
                "plain value, default mode": (alerts._ONE, "person", _one, "auto"),
            }
            prepared = {}
            for name, (who, key, wrap, mode) in forms.items():
                write = alerts._alert_write(who, {key: wrap(people[0])}, alert)
                statement, values = sql.with_writes(events._INSERT, write)
                compiled = sql.compiled(statement)
                prepared[name] = (
                    await conn.prepare(compiled.sql),
                    compiled,
                    values,
                    key,
                    wrap,
                    mode,
                )
            spent: dict[str, list[float]] = {name: [] for name in forms}
            for _ in range(rounds):
                for name, (statement, compiled, values, key, wrap, mode) in prepared.items():
                    await conn.execute(f"SET plan_cache_mode = {mode}")
                    cpu = _cpu(pid)
                    for i in range(n):
                        event_id = await conn.fetchval(
                            "SELECT nextval(pg_get_serial_sequence('event', 'id'))"
                        )
                        tx = conn.transaction()
                        await tx.start()
                        await statement.fetch(
                            *compiled.args(
                                {
                                    **values,
                                    f"w0_{key}": wrap(people[i % 50]),
                                    "w0_call": calls[i % 50],
                                    "w0_ttl": timedelta(minutes=15),
                                    "id": event_id,
                                    "call_id": calls[i % 50],
                                    "offer_id": None,
                                    "type": "call.updated",
                                    "data": "{}",
                                    "note": None,
                                    "touch": True,
                                }
                            )
                        )
                        await tx.rollback()
                    spent[name].append((_cpu(pid) - cpu) / n * 1e6)
            planned = {
                r["name"]: (r["generic_plans"], r["custom_plans"])
                for r in await conn.fetch(
                    "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements"
                )
            }
            plans = {name: planned[p[0].get_name()] for name, p in prepared.items()}
        finally:
            await conn.close()
    finally:
        await db.drop()
    return {
        "us_backend_cpu_per_execution": {k: [round(v) for v in vs] for k, vs in spent.items()},
        "plans_generic_custom": plans,
        "note": "each execution also reserves an event id (one more statement, both forms)",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.rounds, args.n)), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
