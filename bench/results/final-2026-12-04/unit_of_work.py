"""What a unit of work costs the app's process around its statements: one
statement (`SELECT CAST($1 AS int)`) in a transaction, 3,000 times a round,
six rounds each, CPU time of this process per unit (uvloop):

- `session`: `app.core.db.session_scope` and `app.core.sql.fetchrow`, as a
  request's unit of work runs;
- `connection`: SQLAlchemy's `AsyncConnection` (no ORM session), the same
  statement through `app.core.sql`;
- `pool`: a connection of SQLAlchemy's pool, BEGIN and COMMIT sent on its
  asyncpg connection directly;
- `asyncpg`: one held asyncpg connection and its `transaction()`.

Run from the repository (the test database, migrated):
    .venv/bin/python bench/results/final-2026-12-04/unit_of_work.py [URL]
(`unit_of_work.txt` beside it holds the figures of docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

import asyncpg
import uvloop
from sqlalchemy import text

from app.core import sql
from app.core.config import Settings
from app.core.db import asyncpg_dsn, make_engine, make_sessionmaker, session_scope

URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/hulian_test"
STATEMENT = text("SELECT CAST(:a AS int) AS x")
RAW = "SELECT CAST($1 AS int) AS x"
UNITS = 3000
ROUNDS = 6


async def main(url: str) -> None:
    settings = Settings.model_validate(
        {"database_url": url, "secret_key": "x" * 40, "app_env": "dev"}
    )
    engine = make_engine(settings)
    factory = make_sessionmaker(engine)
    held = await asyncpg.connect(asyncpg_dsn(url))

    async def session() -> None:
        async with session_scope(factory) as unit:
            await sql.fetchrow(unit, STATEMENT, {"a": 1})

    async def connection() -> None:
        async with engine.connect() as unit:
            await sql.fetchrow(unit, STATEMENT, {"a": 1})
            await unit.commit()

    async def pool() -> None:
        pooled = await engine.raw_connection()
        try:
            driver = pooled.dbapi_connection._connection  # type: ignore[union-attr]
            await driver.execute("BEGIN")
            await driver.fetchrow(RAW, 1)
            await driver.execute("COMMIT")
        finally:
            pooled.close()

    async def bare() -> None:
        async with held.transaction():
            await held.fetchrow(RAW, 1)

    kinds: dict[str, Callable[[], Awaitable[None]]] = {
        "session": session,
        "connection": connection,
        "pool": pool,
        "asyncpg": bare,
    }
    spent: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(ROUNDS):
        for name, unit in kinds.items():
            for _ in range(100):
                await unit()
            started = time.process_time()
            for _ in range(UNITS):
                await unit()
            spent[name].append((time.process_time() - started) / UNITS * 1e6)
    await held.close()
    await engine.dispose()
    for name, figures in spent.items():
        ordered = sorted(figures)
        print(
            f"{name:<10} CPU µs per unit of work: median {ordered[len(ordered) // 2]:.0f},"
            f" rounds {', '.join(f'{f:.0f}' for f in figures)}"
        )


if __name__ == "__main__":
    uvloop.install()
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else URL))
