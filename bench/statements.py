"""PostgreSQL's time by statement over a run's load phase, from
pg_stat_statements: `python -m bench run --statements`.

The module must be loaded when PostgreSQL starts, which a run cannot do
for itself; by hand, for a measurement (and undone after it):

    psql -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
    pg_ctlcluster 15 main restart
    psql -c "ALTER SYSTEM SET pg_stat_statements.track_planning = on" \\
         -c "SELECT pg_reload_conf()"

The run then resets the counters of its own database when the pressing
starts and reads them when it ends: executions, plans, the time executing
and planning (planning only with `track_planning` on) and rows, by
statement, largest total first. A statement planned about as often as it
runs is planned anew each time (docs/benchmarks.md, "A plan per press").
"""

from __future__ import annotations

from typing import Any

import asyncpg

_LOADED = """
    SELECT 'pg_stat_statements' = ANY (
        string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')
    )
"""
_RESET = """
    SELECT pg_stat_statements_reset(
        0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)
"""
_TOP = """
    SELECT s.calls, s.plans, s.total_exec_time AS exec_ms, s.total_plan_time AS plan_ms,
           s.rows, s.query
    FROM pg_stat_statements s
    WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    ORDER BY s.total_exec_time + s.total_plan_time DESC
"""

NOT_LOADED = (
    "--statements needs pg_stat_statements in PostgreSQL's shared_preload_libraries "
    "(a server restart; see bench/statements.py)"
)


async def loaded(conn: asyncpg.Connection) -> bool:
    """Whether the server loaded the module when it started."""
    return bool(await conn.fetchval(_LOADED))


async def check(dsn: str) -> None:
    """Refuse a run whose server has not loaded the module, before it seeds."""
    conn = await asyncpg.connect(dsn)
    try:
        if not await loaded(conn):
            raise SystemExit(NOT_LOADED)
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    finally:
        await conn.close()


async def reset(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_RESET)
    finally:
        await conn.close()


async def top(dsn: str, n: int = 25) -> dict[str, Any]:
    """The run's database's statements since `reset`: totals, and the `n`
    with the most time."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(_TOP)
    finally:
        await conn.close()
    statements = [
        {
            "calls": r["calls"],
            "plans": r["plans"],
            "exec_ms": round(r["exec_ms"], 1),
            "plan_ms": round(r["plan_ms"], 1),
            "rows": r["rows"],
            "query": " ".join(r["query"].split())[:240],
        }
        for r in rows
    ]
    return {
        "calls": sum(s["calls"] for s in statements),
        "plans": sum(s["plans"] for s in statements),
        "exec_ms": round(sum(s["exec_ms"] for s in statements), 1),
        "plan_ms": round(sum(s["plan_ms"] for s in statements), 1),
        "top": statements[:n],
    }


def markdown(stats: dict[str, Any]) -> list[str]:
    """The table of `top`'s statements, for run.md."""
    planning = (
        f"{stats['plan_ms']:.0f} ms planning"
        if stats["plans"]
        else "planning not tracked (pg_stat_statements.track_planning is off)"
    )
    out = [
        f"PostgreSQL by statement, load phase (pg_stat_statements): {stats['calls']} executions, "
        f"{stats['exec_ms']:.0f} ms executing, {planning}",
        "",
        "| executions | plans | executing ms | planning ms | ms each | statement |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for s in stats["top"]:
        each = (s["exec_ms"] + s["plan_ms"]) / s["calls"] if s["calls"] else 0.0
        query = s["query"][:110].replace("|", "\\|")
        out.append(
            f"| {s['calls']} | {s['plans']} | {s['exec_ms']:.0f} | {s['plan_ms']:.0f} "
            f"| {each:.3f} | `{query}` |"
        )
    return [*out, ""]
