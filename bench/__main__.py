"""`python -m bench run | scale | storm | hot | pglog …` (docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any


def _env(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("expected KEY=VALUE")
    return key, val


def _floats(value: str) -> list[float]:
    return [float(v) for v in value.split(",") if v]


def _ints(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v]


def _generator_args(p: argparse.ArgumentParser) -> None:
    from bench.generator import MAX_CPU_PERCENT, MAX_LAG_P99_MS

    p.add_argument(
        "--generators",
        type=int,
        default=2,
        help="load generator processes (0: in the bench's own process, as before)",
    )
    p.add_argument(
        "--max-generator-cpu",
        type=float,
        default=MAX_CPU_PERCENT,
        help="%% of a core above which a generator counts as saturated",
    )
    p.add_argument(
        "--max-generator-lag-ms",
        type=float,
        default=MAX_LAG_P99_MS,
        help="event loop lag p99 above which a generator counts as saturated",
    )


def _processes_args(s: argparse.ArgumentParser) -> None:
    """`scale processes` (bench/processes.py; --teams: the first is seeded)."""
    s.add_argument(
        "--layouts",
        type=lambda v: [x for x in v.split(",") if x],
        default=["1x1", "1x2", "1x4", "2x1", "2x2"],
        help="server processes x workers each, e.g. 1x2,2x2",
    )
    s.add_argument("--clients", type=int, default=16, help="closed-loop clients")
    s.add_argument("--residents", type=int, default=400)
    s.add_argument("--warmup", type=float, default=3.0, help="s of presses before measuring")
    s.add_argument("--notify-connections", type=_ints, default=[1, 2, 4, 8])
    s.add_argument("--notify-seconds", type=float, default=5.0, help="0: skip NOTIFY's ceiling")
    s.add_argument("--notify-burst", type=int, default=20_000)
    _generator_args(s)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="one run: seed, serve, drive, report (with the floors)")
    r.add_argument("--teams", type=int, default=1000)
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--rate", type=float, default=50.0, help="calls per second (Poisson)")
    r.add_argument("--duration", type=float, default=30.0, help="seconds of pressing")
    r.add_argument("--volunteers", type=int, default=500)
    r.add_argument("--residents", type=int, default=None, help="default: max(20, 5 × rate)")
    r.add_argument("--accept-min", type=float, default=1.0)
    r.add_argument("--accept-max", type=float, default=3.0)
    r.add_argument("--move-interval", type=float, default=30.0, help="s between moves")
    r.add_argument("--drain", type=float, default=10.0, help="s to wait for accepts after")
    r.add_argument("--floor-seconds", type=float, default=3.0, help="0: skip the floors")
    r.add_argument("--saturation-seconds", type=float, default=0.0)
    r.add_argument(
        "--saturation-calls",
        type=int,
        default=6000,
        help="residents for the two closed loops, half each (each presses once)",
    )
    r.add_argument(
        "--history",
        type=int,
        default=20_000,
        help=(
            "resolved calls of the past 60 days, then ANALYZE (0: empty tables, as every"
            " run without --history had before 20000 became the default)"
        ),
    )
    r.add_argument("--env", type=_env, action="append", default=[], help="server KEY=VALUE")
    r.add_argument("--out", default="bench-results/run")
    r.add_argument("--admin-url", default=None)
    r.add_argument("--keep-db", action="store_true")
    r.add_argument(
        "--pg-set", type=_env, action="append", default=[], help="ALTER DATABASE SET KEY=VALUE"
    )
    r.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the server in the load phase and in each closed loop",
    )
    r.add_argument(
        "--statements",
        action="store_true",
        help="PostgreSQL's time by statement in the load phase (pg_stat_statements, "
        "which must be in shared_preload_libraries: bench/statements.py)",
    )
    r.add_argument(
        "--profile-rate",
        type=int,
        default=250,
        help="samples a second: py-spy's reads slow the server (250: a closed loop at 0.4x)",
    )
    r.add_argument("--profile-format", choices=["raw", "flamegraph"], default="raw")
    _generator_args(r)

    s = sub.add_parser("scale", help="scale curves: nearest, sockets, knee, processes")
    s.add_argument("curve", choices=["nearest", "sockets", "knee", "processes"])
    s.add_argument("--teams", type=_ints, default=[10_000, 100_000])
    s.add_argument("--sockets", type=_ints, default=[1000, 5000, 10_000])
    s.add_argument("--rates", type=_floats, default=[25, 50, 100, 150, 200, 300])
    s.add_argument("--volunteers", type=int, default=2000)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--duration", type=float, default=15.0)
    s.add_argument("--samples", type=int, default=400)
    s.add_argument(
        "--nearby-samples", type=int, default=100, help="of GET /teams/nearby (slow at 1M)"
    )
    s.add_argument("--no-deflate", action="store_true", help="sockets without permessage-deflate")
    s.add_argument(
        "--presses",
        type=int,
        default=300,
        help="sockets: presses at each level, for the server's CPU per event (target 3)",
    )
    s.add_argument(
        "--db", default=None, help="nearest: measure this seeded hulian_bench_* database, kept"
    )
    s.add_argument("--keep-db", action="store_true", help="nearest: do not drop the database")
    s.add_argument("--env", type=_env, action="append", default=[], help="server KEY=VALUE")
    s.add_argument("--out", default="bench-results/scale")
    s.add_argument("--admin-url", default=None)
    s.add_argument(
        "--pg-set", type=_env, action="append", default=[], help="ALTER DATABASE SET KEY=VALUE"
    )
    _processes_args(s)
    st = sub.add_parser("storm", help="every socket dropped and back at once, while pressing")
    st.add_argument("--sockets", type=int, default=5000, help="volunteers' and residents'")
    st.add_argument("--volunteers", type=int, default=500, help="on duty, get offers")
    st.add_argument("--pressers", type=int, default=100, help="residents who press")
    st.add_argument("--teams", type=int, default=300)
    st.add_argument("--rate", type=float, default=5.0, help="presses per second (Poisson)")
    st.add_argument("--workers", type=int, default=1)
    st.add_argument("--before", type=float, default=15.0, help="s of pressing before the drop")
    st.add_argument("--after", type=float, default=15.0, help="s of pressing once all are back")
    st.add_argument("--env", type=_env, action="append", default=[], help="server KEY=VALUE")
    st.add_argument("--out", default="bench-results/storm")
    st.add_argument("--profile", action="store_true", help="py-spy the server in the storm")
    st.add_argument("--admin-url", default=None)
    h = sub.add_parser("hot", help="summarise a py-spy raw profile by app function")
    h.add_argument("profile")
    h.add_argument("--top", type=int, default=25)
    g = sub.add_parser("pglog", help="summarise auto_explain's plans in a PostgreSQL log")
    g.add_argument("log")
    g.add_argument("--top", type=int, default=25)
    g.add_argument(
        "--scan", default=None, help="count apart the plans with this, e.g. 'Seq Scan on call'"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "hot":
        from pathlib import Path

        from bench.hot import summarise

        print(summarise(Path(args.profile), args.top))
        return 0
    if args.command == "pglog":
        from pathlib import Path

        from bench import pglog

        print(pglog.summarise(Path(args.log), args.top, args.scan))
        return 0
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    if args.command == "run":
        from bench.run import run

        result = runner(run(args))
        return 0 if result["load"]["calls_created"] > 0 else 1
    if args.command == "storm":
        from bench.storm import storm

        runner(storm(args))
        return 0
    if args.curve == "processes":
        from bench.processes import scale_processes

        runner(scale_processes(args))
        return 0
    from bench.scale import scale

    runner(scale(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
