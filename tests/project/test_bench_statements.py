"""`python -m bench run --statements` (bench/statements.py): PostgreSQL's
time by statement from pg_stat_statements, or a clear refusal when the
server did not load it."""

from __future__ import annotations

import asyncpg
import pytest

from app.core.db import asyncpg_dsn
from bench import statements


def _stats(plans: int) -> dict[str, object]:
    return {
        "calls": 30,
        "plans": plans,
        "exec_ms": 12.5,
        "plan_ms": 30.0 if plans else 0.0,
        "top": [
            {
                "calls": 20,
                "plans": plans,
                "exec_ms": 10.0,
                "plan_ms": 30.0 if plans else 0.0,
                "rows": 20,
                "query": "SELECT a || b FROM t WHERE x = $1 OR y | 2 = 0",
            },
            {"calls": 0, "plans": 0, "exec_ms": 0.0, "plan_ms": 0.0, "rows": 0, "query": "Q"},
        ],
    }


def test_the_table_gives_each_statements_time_and_its_plans() -> None:
    lines = statements.markdown(_stats(plans=20))
    assert lines[0].endswith("30 executions, 12 ms executing, 30 ms planning")
    # 20 executions, 20 plans: planned on every run, 2 ms each in all.
    assert (
        lines[4]
        == "| 20 | 20 | 10 | 30 | 2.000 | `SELECT a \\|\\| b FROM t WHERE x = $1 OR y \\| 2 = 0` |"
    )
    assert lines[5].startswith("| 0 | 0 | 0 | 0 | 0.000 |")


def test_planning_not_tracked_is_said_not_shown_as_none() -> None:
    assert "planning not tracked" in statements.markdown(_stats(plans=0))[0]


async def test_a_server_without_the_module_is_refused_before_the_run(database_url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        preload = await conn.fetchval("SHOW shared_preload_libraries")
        here = await statements.loaded(conn)
    finally:
        await conn.close()
    assert here == ("pg_stat_statements" in [x.strip() for x in preload.split(",")])
    if not here:
        with pytest.raises(SystemExit, match="shared_preload_libraries"):
            await statements.check(asyncpg_dsn(database_url))
