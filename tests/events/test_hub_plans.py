"""The live hub's pump reads the newest events through one generic plan.

For the ids the pump asks for (the newest few), a plan made for the values
is estimated far cheaper than PostgreSQL's generic plan for any id, so with
the default `plan_cache_mode` PostgreSQL planned every read anew (0.7 ms of
its CPU each, about two reads a call) to choose the same index walk
(docs/benchmarks.md, "A plan per press"). The pump's connection forces the
generic plan; it runs nothing else that a plan for its values would serve
better."""

from __future__ import annotations

from app.events import hub as live

READS = 8


async def test_the_pumps_reads_are_planned_once(database_url: str) -> None:
    hub = live.EventHub(database_url)
    conn = await hub._connect()
    try:
        top = await conn.fetchval("SELECT coalesce(max(id), 0) FROM event")
        for n in range(READS):
            await conn.fetch(live._FOLLOWING, top - 1 - n, [top], top - 1 - n, live.BATCH)
        plans = await conn.fetch(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
            live._FOLLOWING,
        )
        assert [(p["generic_plans"], p["custom_plans"]) for p in plans] == [(READS, 0)]
    finally:
        await conn.close()
