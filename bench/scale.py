"""`python -m bench scale nearest | sockets | knee`: the scale curves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.infra import (
    BenchDatabase,
    Sampler,
    Server,
    admin_url_from_env,
    make_actors,
    raise_nofile,
)
from bench.load import District, Sockets, analyse, nearest_args, nearest_sql, point
from bench.stats import summary


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _save(out: Path, name: str, data: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))


async def _team_points(dsn: str, n: int) -> list[tuple[float, float]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT ST_Y(base::geometry) AS lat, ST_X(base::geometry) AS lng "
            "FROM team ORDER BY md5(id::text) LIMIT $1",
            n,
        )
        return [(r["lat"], r["lng"]) for r in rows]
    finally:
        await conn.close()


def _nearby_sql() -> str:
    """The SQL of `GET /teams/nearby` (teams.NEARBY_SQL), positional."""
    from app.teams.service import NEARBY_SQL

    sql = NEARBY_SQL.text
    for i, name in enumerate(["lng", "lat", "radius_m", "limit"], 1):
        sql = re.sub(rf"(?<!:):{name}\b", f"${i}", sql)
    return sql


async def _dispatch(stmt: Any, lat: float, lng: float) -> int:
    """One `dispatch.nearest_teams(want=1, skip=[])` as the app computes it
    (its first k, widened while too few teams came back): the tries it took."""
    from datetime import timedelta

    from app.dispatch import policy

    k, tries = policy.first_k(1, 0), 1
    while True:
        row = await stmt.fetchrow(
            *nearest_args(lat, lng, max_age=timedelta(days=1), radius_m=3000.0, k=k)
        )
        if row["teams"] != "[]" or row["seen"] < k or k >= policy.MAX_K:
            return tries
        k, tries = k * 8, tries + 1


async def _sql_serial(
    dsn: str, points: list[tuple[float, float]], nearby_samples: int
) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn, server_settings={"jit": "off"})
    try:
        stmt = await conn.prepare(nearest_sql())
        lat: list[float] = []
        tries = 0
        for p_lat, p_lng in points[:20]:  # warm up
            await _dispatch(stmt, p_lat, p_lng)
        for p_lat, p_lng in points:
            t = time.perf_counter()
            tries += await _dispatch(stmt, p_lat, p_lng)
            lat.append(time.perf_counter() - t)
        nearby = await conn.prepare(_nearby_sql())
        lat2: list[float] = []
        for p_lat, p_lng in points[:nearby_samples]:
            t = time.perf_counter()
            await nearby.fetch(p_lng, p_lat, 3000.0, 10)
            lat2.append(time.perf_counter() - t)
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        on_duty = await conn.fetchval("SELECT count(*) FROM duty WHERE on_duty")
        return {
            "sql": summary(lat),
            "sql_tries_per_dispatch": round(tries / max(len(points), 1), 3),
            "nearby_sql": summary(lat2),
            "db_size_mib": round(size / 2**20),
            "on_duty": on_duty,
        }
    finally:
        await conn.close()


# The lines of a plan that say how each table is read.
_PLAN_KEYS = re.compile(r"Scan|Heap Fetches|Execution Time|Planning Time")


async def _explain(dsn: str, point: tuple[float, float], out: Path) -> dict[str, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the dispatch SQL (the app's first k) and
    of NEARBY_SQL at one point, warm; the whole plans go to `out`, the lines
    naming the scans to the result."""
    from datetime import timedelta

    from app.dispatch import policy

    lat, lng = point
    conn = await asyncpg.connect(dsn, server_settings={"jit": "off"})
    plans: dict[str, list[str]] = {}
    try:
        for name, sql, args in (
            (
                "dispatch",
                nearest_sql(),
                tuple(
                    nearest_args(
                        lat,
                        lng,
                        max_age=timedelta(days=1),
                        radius_m=3000.0,
                        k=policy.first_k(1, 0),
                    )
                ),
            ),
            ("nearby", _nearby_sql(), (lng, lat, 3000.0, 10)),
        ):
            stmt = await conn.prepare("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            await stmt.fetch(*args)  # warm
            plans[name] = [r[0] for r in await stmt.fetch(*args)]
    finally:
        await conn.close()
    _write_plans(out, plans)
    return {k: [line.strip() for line in v if _PLAN_KEYS.search(line)] for k, v in plans.items()}


def _write_plans(out: Path, plans: dict[str, list[str]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"-- {k}\n" + "\n".join(v) + "\n\n" for k, v in plans.items()))


async def _vacuum(dsn: str) -> float:
    """VACUUM (ANALYZE) the tables the two queries read: the state autovacuum
    reaches on its own some time after the seed's bulk load (visibility map
    set, so index-only scans need no heap page)."""
    conn = await asyncpg.connect(dsn)
    try:
        t = time.perf_counter()
        await conn.execute("SET statement_timeout = 0")
        await conn.execute("VACUUM (ANALYZE) team, team_member, duty, person")
        return time.perf_counter() - t
    finally:
        await conn.close()


async def _nearby_serial(
    base_url: str, token: str, points: list[tuple[float, float]]
) -> dict[str, Any]:
    """GET /teams/nearby at each point, each followed by GET /me: the same
    request floor (token check, principal, session, JSON) without the
    nearby query, so that the difference is what the query costs."""
    nearby: list[float] = []
    me: list[float] = []
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        for i, (p_lat, p_lng) in enumerate(points):
            params = {"lat": p_lat, "lng": p_lng, "radius_m": 3000, "limit": 10}
            t = time.perf_counter()
            r = await http.get("/api/v1/teams/nearby", params=params)
            t2 = time.perf_counter()
            r2 = await http.get("/api/v1/me")
            t3 = time.perf_counter()
            if i >= 20 and r.status_code == 200 and r2.status_code == 200:
                nearby.append(t2 - t)
                me.append(t3 - t2)
    return {"nearby_api": summary(nearby), "me_api": summary(me)}


async def curve_nearest(args: Any, out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if args.db and len(args.teams) != 1:
        raise SystemExit("--db measures one database: give one --teams value, its size")
    for teams in args.teams:
        db = BenchDatabase(
            args.admin_url or admin_url_from_env(), name=args.db, pg_settings=list(args.pg_set)
        )
        server: Server | None = None
        try:
            row: dict[str, Any] = {"teams": teams}
            if args.db:
                _log(f"measuring {db.name} as it is, migrated to head")
            else:
                await db.create()
            db.migrate()
            if not args.db:
                _log(f"seeding {teams} teams into {db.name}")
                row["seed_s"] = round(db.seed(teams, 0.3), 1)
            row["vacuum_s"] = round(await _vacuum(db.dsn), 1)
            points = await _team_points(db.dsn, args.samples)
            rng = random.Random(3)
            points = [
                (lat + rng.uniform(-0.003, 0.003), lng + rng.uniform(-0.003, 0.003))
                for lat, lng in points
            ]
            row.update(await _sql_serial(db.dsn, points, args.nearby_samples))
            row["explain"] = await _explain(db.dsn, points[0], out / f"nearest-{teams}-plans.txt")
            _, [resident] = await make_actors(db.url, 0, 1)
            server = Server(db.url, out / f"nearest-{teams}.log", workers=1, env=dict(args.env))
            await server.wait_ready()
            row.update(
                await _nearby_serial(server.url, resident.token, points[: args.nearby_samples + 20])
            )
            _log(f"nearest at {teams}: {row}")
            rows.append(row)
            _save(out, "nearest", rows)
        finally:
            if server is not None:
                server.stop()
            if args.db or args.keep_db:
                _log(f"kept {db.name}")
            else:
                with contextlib.suppress(Exception):
                    await db.drop()
    return rows


async def curve_sockets(args: Any, out: Path) -> list[dict[str, Any]]:
    raise_nofile()
    db = BenchDatabase(args.admin_url or admin_url_from_env(), pg_settings=list(args.pg_set))
    server: Server | None = None
    sockets: Sockets | None = None
    rows: list[dict[str, Any]] = []
    try:
        await db.create()
        db.migrate()
        db.seed(300, 0.0)
        top = max(args.sockets)
        levels = sorted(args.sockets)
        # A round of presses first, unmeasured: a new server's first
        # statements on each connection are planned and typed anew.
        pressing = args.presses * (len(levels) + 1)
        _log(f"minting {top} resident sessions, and {pressing} for the presses")
        _, residents = await make_actors(db.url, 0, top + pressing)
        residents, pressers = residents[:top], residents[top:]
        points = await _team_points(db.dsn, 50)
        server = Server(
            db.url,
            out / "sockets.log",
            workers=1,
            env={"RUN_PUSH_WORKER": "false", **dict(args.env)},
        )
        await server.wait_ready()
        sampler = Sampler(server)
        await _press_cost(server, db.dsn, pressers[: args.presses], points, 0.0)
        await asyncio.sleep(2)
        base_rss = sampler.rss()
        sockets = Sockets(server.url, deflate=not args.no_deflate)
        opened = 0
        for n, level in enumerate(levels):
            t = time.perf_counter()
            await sockets.open_many(residents[opened:level], concurrency=64)
            open_s = time.perf_counter() - t
            opened = level
            await asyncio.sleep(3)
            sampler.start()
            await asyncio.sleep(10)
            idle = await sampler.stop()
            rss = sampler.rss()
            row = {
                "sockets": level,
                "ws_protocol": dict(args.env).get("WS_PROTOCOL", "server default"),
                "permessage_deflate_offered": not args.no_deflate,
                # What the server agreed to, from the handshake's answer.
                "permessage_deflate": any(
                    "permessage-deflate"
                    in (c.response.headers.get("Sec-WebSocket-Extensions") or "")
                    for c in sockets.conns[:1]
                    if c.response is not None
                ),
                "open_s": round(open_s, 1),
                "server_rss_mib": round(rss / 2**20, 1),
                "base_rss_mib": round(base_rss / 2**20, 1),
                "kib_per_socket": round((rss - base_rss) / level / 1024, 1),
                "idle_server_cpu_percent": idle["server_cpu_percent"],
                "idle_postgres_cpu_percent": idle["postgres_cpu_percent"],
                **await _press_cost(
                    server,
                    db.dsn,
                    pressers[(n + 1) * args.presses : (n + 2) * args.presses],
                    points,
                    idle["server_cpu_percent"],
                ),
            }
            _log(f"sockets: {row}")
            rows.append(row)
            _save(out, "sockets-no-deflate" if args.no_deflate else "sockets", rows)
    finally:
        if sockets is not None:
            await sockets.close()
        if server is not None:
            server.stop()
        with contextlib.suppress(Exception):
            await db.drop()
    _plot_sockets(rows, out / ("sockets-no-deflate.png" if args.no_deflate else "sockets.png"))
    return rows


_LAST_EVENT = "SELECT coalesce(max(id), 0) FROM event"


async def _press_cost(
    server: Server,
    dsn: str,
    pressers: list[Any],
    points: list[tuple[float, float]],
    idle_cpu_percent: float,
) -> dict[str, Any]:
    """What the server's CPU does per press and per event with the sockets
    open and idle (issue 13, target 3): presses by residents without a
    socket, four at a time, none of whose events any idle socket may see;
    the server's CPU over them less its idle rate, divided by the presses
    and by the events they wrote."""
    conn = await asyncpg.connect(dsn)
    try:
        first = await conn.fetchval(_LAST_EVENT)
        statuses: dict[int, int] = {}
        gate = asyncio.Semaphore(4)
        sampler = Sampler(server)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:

            async def press(i: int, resident: Any) -> None:
                lat, lng = points[i % len(points)]
                async with gate:
                    answer = await http.post(
                        "/api/v1/calls",
                        json={"location": point(lat, lng)},
                        headers=resident.headers,
                    )
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

            started = time.monotonic()
            sampler.start()
            await asyncio.gather(*(press(i, r) for i, r in enumerate(pressers)))
            # The hub hands the last events on after their answers.
            await asyncio.sleep(0.5)
            used = await sampler.stop()
            elapsed = time.monotonic() - started
        events = await conn.fetchval("SELECT count(*) FROM event WHERE id > $1", first)
    finally:
        await conn.close()
    busy_s = max(0.0, (used["server_cpu_percent"] - idle_cpu_percent) / 100 * elapsed)
    created = statuses.get(201, 0)
    return {
        "presses": len(pressers),
        "press_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "press_events": events,
        "press_phase_s": round(elapsed, 2),
        "press_server_cpu_percent": used["server_cpu_percent"],
        "server_cpu_ms_per_press": round(1000 * busy_s / max(created, 1), 3),
        "server_cpu_us_per_event": round(1e6 * busy_s / max(events, 1), 1),
    }


def _plot_sockets(rows: list[dict[str, Any]], path: Path) -> None:
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sockets = [r["sockets"] for r in rows]
    fig, (memory, cpu) = plt.subplots(1, 2, figsize=(10, 4))
    memory.plot(sockets, [r["kib_per_socket"] for r in rows], "o-")
    memory.axhline(30, color="grey", linestyle="--", label="target 5: 30 KiB")
    memory.set_xlabel("idle sockets (one worker)")
    memory.set_ylabel("KiB per idle socket (RSS)")
    memory.set_ylim(bottom=0)
    memory.set_title("target 5: memory per idle socket", fontsize=10)
    memory.legend()
    cpu.plot(sockets, [r["server_cpu_us_per_event"] for r in rows], "o-")
    cpu.set_xlabel("idle sockets (one worker)")
    cpu.set_ylabel("server CPU µs per event")
    cpu.set_ylim(bottom=0)
    cpu.set_title("target 3: its press included, the idle rate taken off", fontsize=10)
    for ax in (memory, cpu):
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


async def curve_knee(args: Any, out: Path) -> list[dict[str, Any]]:
    raise_nofile()
    db = BenchDatabase(args.admin_url or admin_url_from_env(), pg_settings=list(args.pg_set))
    server: Server | None = None
    rows: list[dict[str, Any]] = []
    try:
        await db.create()
        db.migrate()
        db.seed(max(1000, args.volunteers // 4), 0.0)
        residents_n = int(max(args.rates) * 5)
        volunteers, residents = await make_actors(db.url, args.volunteers, residents_n)
        server = Server(db.url, out / "knee.log", workers=args.workers, env=dict(args.env))
        await server.wait_ready()
        district = District(server.url, volunteers, residents)
        try:
            await district.connect()
            district.reset()
            movers = district.start_moving()
            for rate in sorted(args.rates):
                district.residents = residents[: max(20, int(rate * 5))]
                sampler = Sampler(server)
                sampler.start()
                achieved = await district.press_open_loop(rate, args.duration)
                await district.drain(10)
                res = await sampler.stop()
                a = analyse(district.reset(), rate, achieved, args.duration)
                row = {
                    "rate": rate,
                    "achieved": a["rate_achieved"],
                    "post_calls": a["post_calls"],
                    "press_to_offer": a["press_to_offer"],
                    "accept_to_call_updated": a["accept_to_call_updated"],
                    "errors": a["error_count"],
                    "error_kinds": a["errors"],
                    **res,
                }
                _log(
                    f"knee rate {rate}: POST p99 {a['post_calls'].get('p99_ms')} ms, "
                    f"press→offer p99 {a['press_to_offer'].get('p99_ms')} ms, "
                    f"errors {a['error_count']}, server CPU {res['server_cpu_percent']}%"
                )
                rows.append(row)
                _save(out, "knee", rows)
                p99 = a["press_to_offer"].get("p99_ms", 1e9)
                if p99 > 2000 or a["error_count"] > 0.01 * max(a["calls_sent"], 1):
                    break
            district.moving = False
            for m in movers:
                m.cancel()
            await asyncio.gather(*movers, return_exceptions=True)
        finally:
            await district.close()
    finally:
        if server is not None:
            server.stop()
        with contextlib.suppress(Exception):
            await db.drop()
    _plot_knee(rows, out / "knee.png")
    return rows


def _plot_knee(rows: list[dict[str, Any]], path: Path) -> None:
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    rates = [r["rate"] for r in rows]
    for key, label in (("press_to_offer", "press → offer p99"), ("post_calls", "POST /calls p99")):
        ax.plot(rates, [r[key].get("p99_ms", float("nan")) for r in rows], "o-", label=label)
    ax.plot(rates, [r["press_to_offer"].get("p50_ms", float("nan")) for r in rows], "o--")
    ax.set_yscale("log")
    ax.set_xlabel("offered calls/s (Poisson)")
    ax.set_ylabel("ms (log)")
    ax.set_title("press → offer as the call rate rises (dashed: p50)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


async def scale(args: Any) -> None:
    out = Path(args.out)
    if args.curve == "nearest":
        await curve_nearest(args, out)
    elif args.curve == "sockets":
        await curve_sockets(args, out)
    else:
        await curve_knee(args, out)
