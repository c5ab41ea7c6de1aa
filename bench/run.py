"""`python -m bench run`: one full run with its floors."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench import report, statements
from bench.floor import floor_settings, person_ids, press_floor
from bench.generator import Generators
from bench.infra import (
    BenchDatabase,
    Sampler,
    Server,
    admin_url_from_env,
    make_actors,
    raise_nofile,
)
from bench.load import analyse, nearest_floor


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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
        if args.statements:
            await statements.check(db.dsn)
        result["setup"] = {
            "migrate_s": round(db.migrate(), 1),
            "seed_s": round(db.seed(args.teams, 0.0), 1),
        }
        if args.history:
            result["setup"]["history_s"] = round(await db.history(args.history), 1)
        residents_n = args.residents or max(20, int(args.rate * 5))
        sat_n = args.saturation_calls if args.saturation_seconds > 0 else 0
        t = time.perf_counter()
        volunteers, residents = await make_actors(db.url, args.volunteers, residents_n + sat_n)
        residents, sat_residents = residents[:residents_n], residents[residents_n:]
        result["setup"]["tokens_s"] = round(time.perf_counter() - t, 1)
        _log(f"{len(volunteers)} volunteers, {len(residents)} residents; starting the server")
        server = Server(db.url, out / "server.log", workers=args.workers, env=dict(args.env))
        await server.wait_ready()
        gens = Generators(
            args.generators,
            [server.url],
            volunteers,
            residents,
            sat_residents,
            accept_delay=(args.accept_min, args.accept_max),
            move_interval=args.move_interval,
            max_cpu_percent=args.max_generator_cpu,
            max_lag_p99_ms=args.max_generator_lag_ms,
        )
        gens.start()
        try:
            result["setup"].update(await gens.connect())
            _log(f"sockets open, volunteers on duty: {result['setup']}")
            setup_errors = await gens.reset()
            result["setup"]["errors"] = dict(setup_errors.errors)
            if args.floor_seconds > 0:
                points = [(v.lat, v.lng) for v in volunteers]
                result["floors"] = {
                    "healthz": await gens.healthz(args.floor_seconds, 32),
                    "nearest_sql": await nearest_floor(db.dsn, points, args.floor_seconds, 8),
                    "nearest_sql_serial": await nearest_floor(
                        db.dsn, points, args.floor_seconds, 1
                    ),
                }
                _log(f"floors: {result['floors']}")
            await gens.start_moving()
            sampler = Sampler(server, dsn=db.dsn)
            sampler.start()
            spy = None
            if args.profile:
                spy = await _spy(server, args, out / "profile", args.duration)
            _log(
                f"pressing at {args.rate}/s for {args.duration} s "
                f"from {max(1, args.generators)} generator(s)"
            )
            if args.statements:
                await statements.reset(db.dsn)
            pressed = await gens.press(args.rate, args.duration, args.drain)
            if args.statements:
                result["statements"] = await statements.top(db.dsn)
            if spy is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(spy.wait(), 30)
            await gens.stop_moving()
            result["resources"] = await sampler.stop()
            result["load"] = analyse(
                await gens.reset(), args.rate, pressed["achieved"], args.duration
            )
            result["generator"] = {
                "processes": args.generators,
                "pids": gens.pids,
                **pressed["generator"],
            }
            result["latency_valid"] = not pressed["generator"]["saturated"]
            _log(report.generator_line(result["generator"]))
            if sat_residents:
                # Two closed loops, each with its own half of the residents:
                # the whole loop (the volunteers accept and resolve each call,
                # so the server serves those requests too), then presses alone
                # (the volunteers accept nothing), the floor's own work:
                # target 2's figure.
                for key, stem, hold in (
                    ("calls_saturation", "profile-closed", False),
                    ("calls_saturation_presses", "profile-presses", True),
                ):
                    if hold:
                        # The whole loop's last accepts and resolutions end first.
                        await asyncio.sleep(max(args.drain, args.accept_max + 2))
                    spy = None
                    if args.profile:
                        spy = await _spy(server, args, out / stem, args.saturation_seconds)
                    cpu0 = Sampler.cpu(server.tree())
                    result[key] = await gens.closed_loop(
                        args.saturation_seconds, 16, part=int(hold), parts=2, hold=hold
                    )
                    # The server's CPU per answered press: unlike calls/s, it
                    # holds on a machine whose other load varies.
                    spent = Sampler.delta(cpu0, Sampler.cpu(server.tree()))
                    answered = result[key].get("latency", {}).get("count") or 0
                    if answered:
                        result[key]["server_cpu_ms_per_call"] = round(spent / answered * 1000, 2)
                    if spy is not None:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(spy.wait(), 30)
        finally:
            await gens.close()
        log_text = server.log()
        if sat_residents and args.floor_seconds > 0:
            # The press floor (target 2) on the same database, with the
            # server stopped so that nothing else runs on it.
            assert server is not None
            server.stop()
            server = None
            _log(f"press floor: the press's SQL alone, 16 connections, {args.saturation_seconds} s")
            result["floors"]["press_sql"] = await press_floor(
                db.dsn,
                floor_settings(db.url),
                await person_ids(db.dsn),
                [(v.lat, v.lng) for v in volunteers],
                args.saturation_seconds,
                16,
            )
        result["ratios"] = ratios(result)
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


async def _spy(server: Server, args: Any, stem: Path, seconds: float) -> asyncio.subprocess.Process:
    """py-spy on the server and its workers for `seconds`."""
    suffix = "txt" if args.profile_format == "raw" else "svg"
    return await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("py-spy")),
        "record",
        "--pid",
        str(server.process.pid),
        "--subprocesses",
        "--rate",
        str(args.profile_rate),
        "--format",
        args.profile_format,
        "--duration",
        str(max(1, int(seconds))),
        "--output",
        f"{stem}.{suffix}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    floors = result.get("floors")
    if not floors:
        return {}
    out: dict[str, Any] = {}
    post = result["load"]["post_calls"]
    n = floors["nearest_sql_serial"]
    if post.get("count") and n.get("count") and result.get("latency_valid", True):
        out["POST /calls p50 ÷ nearest SQL p50 (serial)"] = round(
            post["p50_ms"] / max(n["p50_ms"], 1e-6), 1
        )
    sat = result.get("calls_saturation")
    alone = result.get("calls_saturation_presses")
    press = floors.get("press_sql")
    if alone and press:
        # Target 2: at least 0.5.
        out["POST /calls closed-loop, presses alone ÷ press SQL floor (16 each)"] = round(
            alone["rps"] / max(press["presses_per_s"], 1e-6), 3
        )
    if sat and press:
        out["POST /calls closed-loop, whole loop ÷ press SQL floor (16 each)"] = round(
            sat["rps"] / max(press["presses_per_s"], 1e-6), 3
        )
    # The most POST /calls gave: presses alone (the whole loop where a run
    # has no such loop, as before).
    most = alone or sat
    if most:
        out["POST /calls max throughput ÷ nearest SQL q/s (8 conns)"] = round(
            most["rps"] / max(floors["nearest_sql"]["qps"], 1e-6), 3
        )
        out["POST /calls max throughput ÷ /healthz req/s"] = round(
            most["rps"] / max(floors["healthz"]["rps"], 1e-6), 3
        )
    return out
