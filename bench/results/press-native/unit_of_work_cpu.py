"""The client's CPU of one unit of work of one statement: through the
app's session (`session_scope` and `app.core.sql`), through an asyncpg
pool with a transaction, and through the pool without one. The difference
of the first two is what SQLAlchemy's session costs a request.
(2026-12-03, fifth; docs/benchmarks.md.)

    python bench/results/press-native/unit_of_work_cpu.py [DATABASE_URL]
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Awaitable, Callable

import asyncpg
import uvloop
from sqlalchemy import text

from app.core import sql
from app.core.config import Settings
from app.core.db import asyncpg_dsn, make_engine, make_sessionmaker, session_scope

ROUNDS = 3000
_ONE = text("SELECT CAST(:x AS int)")


async def measure(url: str) -> None:
    settings = Settings.model_validate({"database_url": url})
    engine = make_engine(settings)
    factory = make_sessionmaker(engine)
    pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=1, max_size=2)

    async def via_session(i: int) -> None:
        async with session_scope(factory) as db:
            await sql.fetchrow(db, _ONE, {"x": i})

    async def via_pool(i: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.fetchrow("SELECT $1::int", i)

    async def bare(i: int) -> None:
        async with pool.acquire() as conn:
            await conn.fetchrow("SELECT $1::int", i)

    ways: list[Callable[[int], Awaitable[None]]] = [via_session, via_pool, bare]
    try:
        for way in ways * 2:
            for i in range(300):
                await way(i)
            before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            for i in range(ROUNDS):
                await way(i)
            after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            per = 1e6 / ROUNDS
            print(f"{way.__name__:12s} CPU {cpu * per:6.1f} µs, wall {wall * per:6.1f} µs")
    finally:
        await pool.close()
        await engine.dispose()


def main() -> None:
    url = (
        sys.argv[1]
        if len(sys.argv) > 1
        else "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    uvloop.run(measure(url))


if __name__ == "__main__":
    main()
