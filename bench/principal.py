"""A cheap authenticated GET with and without the principal cache (issue
13, target 4): `python -m bench.principal [--clients 8 --seconds 10 --rounds 2]`.

One database (migrated, no district: GET /api/v1/me needs only people and
their sessions), one server process of one worker at a time, started with
`PRINCIPAL_CACHE_SECONDS=0` (before: the principal is loaded by a query on
every request) and with the default (after: kept by the process until a
NOTIFY says it changed). The two alternate for `--rounds` rounds, each a
closed loop of `--clients` clients, each client a person with a session of
their own, for `--seconds` after a warm-up. Reported per phase: requests
per second, p50/p99 latency, the server's CPU per request (the figure to
read on a shared machine: the rate also depends on what else runs), and
transactions committed on the database per request
(`pg_stat_database.xact_commit`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy import text

from app.core.db import make_engine, make_sessionmaker
from app.core.phones import demo_phone
from app.identity.auth import start_session
from bench.infra import (
    BenchDatabase,
    Sampler,
    Server,
    admin_url_from_env,
    bench_settings,
    connector,
)
from bench.stats import summary as percentiles

WARMUP_S = 2.0


async def _people(database_url: str, n: int) -> list[str]:
    """n people, each with a session; their access tokens."""
    settings = bench_settings(database_url)
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            tokens = []
            for i in range(n):
                person_id = uuid.uuid4()
                await session.execute(
                    text("INSERT INTO person (id, phone, display_name) VALUES (:id, :p, :n)"),
                    {"id": person_id, "p": demo_phone(96_000_000 + i), "n": f"bench {i}"},
                )
                tokens.append((await start_session(session, settings, person_id)).access_token)
            await session.commit()
        return tokens
    finally:
        await engine.dispose()


async def _commits(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        # Statistics are flushed by each backend at most once a second.
        await asyncio.sleep(1.1)
        value: int = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return value
    finally:
        await conn.close()


async def _closed_loop(url: str, tokens: list[str], seconds: float) -> tuple[int, int, list[float]]:
    """Errors, requests in all (the warm-up's too) and the measured latencies."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    async with aiohttp.ClientSession(connector=connector(len(tokens) + 4)) as http:

        async def client(token: str, until: float, keep: bool) -> None:
            nonlocal errors, sent
            headers = {"Authorization": f"Bearer {token}"}
            while time.monotonic() < until:
                sent += 1
                t0 = time.perf_counter()
                async with http.get(f"{url}/api/v1/me", headers=headers) as answer:
                    await answer.read()
                    if answer.status != 200:
                        errors += 1
                if keep:
                    latencies.append(time.perf_counter() - t0)

        warm = time.monotonic() + WARMUP_S
        await asyncio.gather(*(client(t, warm, False) for t in tokens))
        until = time.monotonic() + seconds
        await asyncio.gather(*(client(t, until, True) for t in tokens))
    return errors, sent, latencies


async def _phase(
    db: BenchDatabase, tokens: list[str], cache: bool, seconds: float, out: Path, n: int
) -> dict[str, Any]:
    env = {} if cache else {"principal_cache_seconds": 0}
    name = "after" if cache else "before"
    server = Server(db.url, out / f"{name}-{n}.log", env=env)
    try:
        await server.wait_ready()
        sampler = Sampler(server)
        commits0 = await _commits(db.dsn)
        sampler.start()
        started = time.monotonic()
        errors, sent, latencies = await _closed_loop(server.url, tokens, seconds)
        elapsed = time.monotonic() - started
        usage = await sampler.stop()
        commits = await _commits(db.dsn) - commits0
    finally:
        server.stop()
    done = len(latencies)
    spread = percentiles(latencies)
    cpu_s = usage["server_cpu_percent"] / 100 * elapsed
    return {
        "phase": name,
        "round": n,
        "requests": done,
        "errors": errors,
        "rps": round(done / seconds, 1),
        "p50_ms": spread.get("p50_ms", 0.0),
        "p99_ms": spread.get("p99_ms", 0.0),
        "server_cpu_ms_per_request": round(1000 * cpu_s / max(done, 1), 3),
        # Over every request sent, the warm-up's too; the listener's pings
        # and the statistics reads add a few.
        "db_commits_per_request": round(commits / max(sent, 1), 3),
        "server_cpu_percent": usage["server_cpu_percent"],
        # The clients run in this process: its CPU is theirs.
        "client_cpu_percent": usage["bench_cpu_percent"],
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    db = BenchDatabase(args.admin_url or admin_url_from_env())
    await db.create()
    try:
        db.migrate()
        tokens = await _people(db.url, args.clients)
        phases = []
        for n in range(args.rounds):
            for cache in (False, True):
                phase = await _phase(db, tokens, cache, args.seconds, out, n)
                print(json.dumps(phase))
                phases.append(phase)
    finally:
        await db.drop()
    summary: dict[str, Any] = {"clients": args.clients, "seconds": args.seconds, "phases": phases}
    for name in ("before", "after"):
        mine = [p for p in phases if p["phase"] == name]
        summary[name] = {
            key: round(statistics.median(p[key] for p in mine), 3)
            for key in (
                "rps",
                "p50_ms",
                "p99_ms",
                "server_cpu_ms_per_request",
                "db_commits_per_request",
            )
        }
    summary["rps_ratio"] = round(summary["after"]["rps"] / summary["before"]["rps"], 2)
    return summary


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.principal")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients, closed loop")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    p.add_argument("--rounds", type=int, default=2, help="before/after pairs, alternating")
    p.add_argument("--out", default="bench-results/principal")
    p.add_argument("--admin-url", default=None)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        import uvloop

        summary = uvloop.run(bench(args))
    except ImportError:  # pragma: no cover
        summary = asyncio.run(bench(args))
    (out / "principal.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "phases"}, indent=2))


if __name__ == "__main__":
    main()
