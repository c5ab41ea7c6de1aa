"""The client's CPU per round trip of one prepared statement on one asyncpg
connection, with asyncio's loop and with uvloop (the server's): user and
system time per statement. (2026-12-03, fifth; docs/benchmarks.md.)

    python bench/results/press-native/round_trip_cpu.py [DSN]
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time

import asyncpg
import uvloop

STATEMENTS = 5000


async def measure(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for i in range(200):
            await conn.fetchval("SELECT $1::int", i)
        for _ in range(3):
            before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            for i in range(STATEMENTS):
                await conn.fetchval("SELECT $1::int", i)
            after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
            user = (after.ru_utime - before.ru_utime) / STATEMENTS * 1e6
            system = (after.ru_stime - before.ru_stime) / STATEMENTS * 1e6
            print(
                f"user {user:.1f} µs, system {system:.1f} µs, wall {wall / STATEMENTS * 1e6:.1f} µs"
            )
    finally:
        await conn.close()


def main() -> None:
    dsn = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres"
    print("asyncio:")
    asyncio.run(measure(dsn))
    print("uvloop:")
    uvloop.run(measure(dsn))


if __name__ == "__main__":
    main()
