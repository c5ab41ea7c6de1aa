"""`python -m bench run | scale | storm …` (docs/benchmarks.md)."""

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
    r.add_argument("--saturation-calls", type=int, default=3000)
    r.add_argument("--env", type=_env, action="append", default=[], help="server KEY=VALUE")
    r.add_argument("--out", default="bench-results/run")
    r.add_argument("--admin-url", default=None)
    r.add_argument("--keep-db", action="store_true")
    r.add_argument(
        "--pg-set", type=_env, action="append", default=[], help="ALTER DATABASE SET KEY=VALUE"
    )
    r.add_argument("--profile", action="store_true", help="py-spy the server in the load phase")
    r.add_argument("--profile-format", choices=["raw", "flamegraph"], default="raw")

    s = sub.add_parser("scale", help="scale curves: nearest, sockets, knee")
    s.add_argument("curve", choices=["nearest", "sockets", "knee"])
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
    s.add_argument("--env", type=_env, action="append", default=[], help="server KEY=VALUE")
    s.add_argument("--out", default="bench-results/scale")
    s.add_argument("--admin-url", default=None)
    s.add_argument(
        "--pg-set", type=_env, action="append", default=[], help="ALTER DATABASE SET KEY=VALUE"
    )
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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "hot":
        from pathlib import Path

        from bench.hot import summarise

        print(summarise(Path(args.profile), args.top))
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
    from bench.scale import scale

    runner(scale(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
