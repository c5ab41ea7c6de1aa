"""`python -m bench run`: one full run with its floors."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import report
from bench.infra import (
    BenchDatabase,
    Sampler,
    Server,
    admin_url_from_env,
    make_actors,
    raise_nofile,
)
from bench.load import (
    PRESS_JITTER_M,
    District,
    analyse,
    healthz_floor,
    jitter,
    nearest_floor,
    point,
)


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def calls_saturation(
    base_url: str, district: District, residents: list[Any], seconds: float, concurrency: int
) -> dict[str, Any]:
    """Closed loop: `concurrency` clients pressing as fast as answered, each
    press by a fresh resident (one call each, so no per-resident limit)."""
    rng = random.Random(11)
    ok = 0
    errors = 0
    end = time.perf_counter() + seconds
    it = iter(residents)

    async def worker() -> None:
        nonlocal ok, errors
        while time.perf_counter() < end:
            resident = next(it, None)
            if resident is None:
                return
            v = district.volunteers[rng.randrange(len(district.volunteers))]
            lat, lng = jitter(rng, v.base[0], v.base[1], PRESS_JITTER_M)
            try:
                async with district.http.post(
                    "api/v1/calls", json={"location": point(lat, lng)}, headers=resident.headers
                ) as r:
                    await r.read()
                    status = r.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            if status in (200, 201):
                ok += 1
            else:
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {"concurrency": concurrency, "rps": round(ok / elapsed, 1), "errors": errors}


async def run(args: Any) -> dict[str, Any]:
    raise_nofile()
    out = Path(args.out)
    db = BenchDatabase(args.admin_url or admin_url_from_env(), pg_settings=list(args.pg_set))
    server: Server | None = None
    result: dict[str, Any] = {
        "command": "python -m bench " + shlex.join(sys.argv[1:]),
        "params": {
            k: v for k, v in vars(args).items() if k not in ("func", "admin_url") and v is not None
        },
        "database": db.name,
    }
    try:
        _log(f"database {db.name}")
        await db.create()
        result["setup"] = {
            "migrate_s": round(db.migrate(), 1),
            "seed_s": round(db.seed(args.teams, 0.0), 1),
        }
        residents_n = args.residents or max(20, int(args.rate * 5))
        sat_n = args.saturation_calls if args.saturation_seconds > 0 else 0
        t = time.perf_counter()
        volunteers, residents = await make_actors(db.url, args.volunteers, residents_n + sat_n)
        residents, sat_residents = residents[:residents_n], residents[residents_n:]
        result["setup"]["tokens_s"] = round(time.perf_counter() - t, 1)
        _log(f"{len(volunteers)} volunteers, {len(residents)} residents; starting the server")
        server = Server(db.url, out / "server.log", workers=args.workers, env=dict(args.env))
        await server.wait_ready()
        district = District(
            server.url,
            volunteers,
            residents,
            accept_delay=(args.accept_min, args.accept_max),
            move_interval=args.move_interval,
        )
        try:
            result["setup"].update(await district.connect())
            _log(f"sockets open, volunteers on duty: {result['setup']}")
            setup_errors = district.reset()
            result["setup"]["errors"] = dict(setup_errors.errors)
            if args.floor_seconds > 0:
                points = [(v.lat, v.lng) for v in volunteers]
                result["floors"] = {
                    "healthz": await healthz_floor(server.url, args.floor_seconds),
                    "nearest_sql": await nearest_floor(db.dsn, points, args.floor_seconds, 8),
                    "nearest_sql_serial": await nearest_floor(
                        db.dsn, points, args.floor_seconds, 1
                    ),
                }
                _log(f"floors: {result['floors']}")
            movers = district.start_moving()
            sampler = Sampler(server)
            sampler.start()
            spy = None
            if args.profile:
                spy = await asyncio.create_subprocess_exec(
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "--pid",
                    str(server.process.pid),
                    "--subprocesses",
                    "--rate",
                    "250",
                    "--format",
                    args.profile_format,
                    "--duration",
                    str(int(args.duration)),
                    "--output",
                    str(out / f"profile.{'txt' if args.profile_format == 'raw' else 'svg'}"),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            _log(f"pressing at {args.rate}/s for {args.duration} s")
            achieved = await district.press_open_loop(args.rate, args.duration)
            await district.drain(args.drain)
            if spy is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(spy.wait(), 30)
            district.moving = False
            result["resources"] = await sampler.stop()
            for m in movers:
                m.cancel()
            await asyncio.gather(*movers, return_exceptions=True)
            result["load"] = analyse(district.reset(), args.rate, achieved, args.duration)
            if sat_residents:
                result["calls_saturation"] = await calls_saturation(
                    server.url, district, sat_residents, args.saturation_seconds, 16
                )
        finally:
            await district.close()
        result["ratios"] = ratios(result)
        log_text = server.log()
        result["server_tracebacks"] = log_text.count("Traceback")
        paths = report.write(result, out)
        print(report.markdown(result))
        _log(f"wrote {', '.join(str(p) for p in paths.values())}")
        return result
    finally:
        if server is not None:
            server.stop()
        if not args.keep_db:
            with contextlib.suppress(Exception):
                await db.drop()


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    floors = result.get("floors")
    if not floors:
        return {}
    out: dict[str, Any] = {}
    post = result["load"]["post_calls"]
    n = floors["nearest_sql_serial"]
    if post.get("count") and n.get("count"):
        out["POST /calls p50 ÷ nearest SQL p50 (serial)"] = round(
            post["p50_ms"] / max(n["p50_ms"], 1e-6), 1
        )
    sat = result.get("calls_saturation")
    if sat:
        out["POST /calls max throughput ÷ nearest SQL q/s (8 conns)"] = round(
            sat["rps"] / max(floors["nearest_sql"]["qps"], 1e-6), 3
        )
        out["POST /calls max throughput ÷ /healthz req/s"] = round(
            sat["rps"] / max(floors["healthz"]["rps"], 1e-6), 3
        )
    return out
