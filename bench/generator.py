"""The load generator in its own processes (issue 13, target 8).

The district's volunteers and residents are split over N generator
processes (multiprocessing, spawn); each runs a `District` on its own event
loop and answers the bench's commands over a pipe: connect, the /healthz
floor, move, press (open loop), press (closed loop), collect. Volunteers are
split by team, so the members an offer goes to are all in one process and
only one of them accepts, as in one process. Every phase is metered in each
generator: its CPU (user + system of the process, over the phase) and its
event loop's lag (a timer every 10 ms: how late it fired). A generator above
`max_cpu_percent` of a core or with a lag p99 above `max_lag_p99_ms` was
saturated (or starved of CPU): the latencies it measured include its own
waiting, and the report says so instead of giving them (bench/report.py).

`--generators 0` runs the one generator in the bench's own process, as the
bench did before, with the same meters.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import resource
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from bench.infra import Actor, connector
from bench.load import District, Record, merge_records
from bench.stats import summary

MAX_CPU_PERCENT = 85.0
MAX_LAG_P99_MS = 20.0
LAG_TICK_S = 0.01
# Generators start a phase together, this long after the command is sent.
START_DELAY_S = 0.3


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process
    return ru.ru_utime + ru.ru_stime


class Meter:
    """This process's CPU and its event loop's lag over one phase."""

    def __init__(self, tick: float = LAG_TICK_S) -> None:
        self.tick = tick
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._cpu0 = 0.0
        self._t0 = 0.0

    async def _ticker(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(self.tick)
            self.lags.append(max(0.0, time.perf_counter() - t - self.tick))

    def start(self) -> None:
        self.lags = []
        self._cpu0, self._t0 = _cpu_seconds(), time.perf_counter()
        self._task = asyncio.create_task(self._ticker())

    async def stop(self) -> dict[str, Any]:
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        cpu = _cpu_seconds() - self._cpu0
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        lag = summary(self.lags)
        return {
            "cpu_percent": round(100 * cpu / elapsed, 1),
            "cpu_s": round(cpu, 2),
            "elapsed_s": round(elapsed, 2),
            "lag_p50_ms": lag.get("p50_ms", 0.0),
            "lag_p99_ms": lag.get("p99_ms", 0.0),
            "lag_max_ms": lag.get("max_ms", 0.0),
        }


def verdict(
    meters: Sequence[dict[str, Any]],
    *,
    max_cpu_percent: float = MAX_CPU_PERCENT,
    max_lag_p99_ms: float = MAX_LAG_P99_MS,
) -> dict[str, Any]:
    """Was any generator saturated in this phase, and why."""
    reasons = []
    for i, m in enumerate(meters):
        if m["cpu_percent"] > max_cpu_percent:
            reasons.append(
                f"generator {i} used {m['cpu_percent']} % of a core (> {max_cpu_percent})"
            )
        if m["lag_p99_ms"] > max_lag_p99_ms:
            reasons.append(
                f"generator {i}'s event loop lag p99 {m['lag_p99_ms']} ms (> {max_lag_p99_ms})"
            )
    return {
        "saturated": bool(reasons),
        "reasons": reasons,
        "limits": {"cpu_percent": max_cpu_percent, "lag_p99_ms": max_lag_p99_ms},
        "generators": list(meters),
    }


@dataclass
class Spec:
    """What one generator drives."""

    index: int
    base_urls: list[str]
    volunteers: list[Actor]
    residents: list[Actor]
    closed_loop_residents: list[Actor]
    press_bases: list[tuple[float, float]]
    accept_delay: tuple[float, float] = (1.0, 3.0)
    move_interval: float = 30.0


async def _until(at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.perf_counter()))


class Generator:
    """One generator's district; its methods are the commands."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.district = District(
            spec.base_urls,
            spec.volunteers,
            spec.residents,
            accept_delay=spec.accept_delay,
            move_interval=spec.move_interval,
            seed=42 + spec.index,
            press_bases=spec.press_bases,
        )
        self.movers: list[asyncio.Task[None]] = []

    async def connect(self) -> dict[str, float]:
        setup = await self.district.connect()
        return setup

    async def reset(self) -> Record:
        return self.district.reset()

    async def healthz(self, seconds: float, concurrency: int, start_at: float) -> dict[str, Any]:
        """GET /healthz from `concurrency` keep-alive clients (the server's floor)."""
        lat: list[float] = []
        meter = Meter()
        async with aiohttp.ClientSession(
            base_url=self.district.base_url, connector=connector(concurrency)
        ) as http:
            await _until(start_at)
            meter.start()
            end = time.perf_counter() + seconds

            async def client() -> None:
                while time.perf_counter() < end:
                    t = time.perf_counter()
                    async with http.get("/healthz") as r:
                        await r.read()
                        if r.status == 200:
                            lat.append(time.perf_counter() - t)

            start = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
        return {"latencies": lat, "elapsed_s": elapsed, "meter": await meter.stop()}

    async def start_moving(self) -> None:
        self.movers = self.district.start_moving()

    async def stop_moving(self) -> None:
        self.district.moving = False
        for m in self.movers:
            m.cancel()
        await asyncio.gather(*self.movers, return_exceptions=True)
        self.movers = []

    async def press(
        self, rate: float, duration: float, drain: float, start_at: float
    ) -> dict[str, Any]:
        """Poisson presses at `rate`/s (this generator's share), metered while
        pressing; then wait up to `drain` s for the last answers and accepts."""
        await _until(start_at)
        meter = Meter()
        meter.start()
        achieved = await self.district.press_open_loop(rate, duration) if rate > 0 else 0.0
        await _until(start_at + duration)  # the last arrival may come well before the end
        metered = await meter.stop()
        await self.district.drain(drain)
        return {"achieved": achieved, "meter": metered}

    async def closed_loop(
        self,
        seconds: float,
        concurrency: int,
        start_at: float,
        part: int = 0,
        parts: int = 1,
        hold: bool = False,
    ) -> Any:
        """Closed-loop presses by part `part` of `parts` of the residents (so
        that a second loop presses with residents the first did not use);
        `hold`: the volunteers accept nothing meanwhile (presses alone)."""
        await _until(start_at)
        meter = Meter()
        meter.start()
        self.district.holding = hold
        try:
            result = await self.district.press_closed_loop(
                self.spec.closed_loop_residents[part::parts], seconds, concurrency
            )
        finally:
            self.district.holding = False
        result["meter"] = await meter.stop()
        return result

    async def close(self) -> None:
        await self.stop_moving()
        await self.district.close()


# --- the generator process -------------------------------------------------------------


def _child(conn: Connection, spec: Spec) -> None:
    try:
        import uvloop

        uvloop.run(_serve(conn, spec))
    except ImportError:  # pragma: no cover
        asyncio.run(_serve(conn, spec))


async def _serve(conn: Connection, spec: Spec) -> None:
    gen = Generator(spec)
    try:
        while True:
            try:
                name, kwargs = await asyncio.to_thread(conn.recv)
            except EOFError:  # the bench is gone
                return
            if name == "close":
                await gen.close()
                conn.send(("ok", None))
                return
            try:
                conn.send(("ok", await getattr(gen, name)(**kwargs)))
            except Exception:
                conn.send(("error", traceback.format_exc()))
    finally:
        await gen.close()


class GeneratorError(RuntimeError):
    pass


class _Remote:
    """The bench's handle on one generator process."""

    def __init__(self, spec: Spec) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_child, args=(child, spec), name=f"bench-generator-{spec.index}", daemon=True
        )
        self.process.start()
        child.close()

    def _call(self, name: str, kwargs: dict[str, Any]) -> Any:
        self.conn.send((name, kwargs))
        while not self.conn.poll(1.0):
            if not self.process.is_alive():
                raise GeneratorError(f"generator {self.process.name} died")
        status, value = self.conn.recv()
        if status != "ok":
            raise GeneratorError(f"{self.process.name} {name}:\n{value}")
        return value

    async def call(self, name: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._call, name, kwargs)

    async def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.call("close"), 30)
        await asyncio.to_thread(self.process.join, 10)
        if self.process.is_alive():
            self.process.terminate()
            await asyncio.to_thread(self.process.join, 5)
        self.conn.close()


class _Local:
    """The one generator in the bench's own process (`--generators 0`)."""

    def __init__(self, spec: Spec) -> None:
        self.gen = Generator(spec)

    async def call(self, name: str, **kwargs: Any) -> Any:
        return await getattr(self.gen, name)(**kwargs)

    async def close(self) -> None:
        await self.gen.close()


def split_by_team(volunteers: Sequence[Actor], n: int) -> list[list[Actor]]:
    """`n` shares of the volunteers, a team's members all in one share
    (the largest teams first, each to the smallest share so far)."""
    teams: dict[Any, list[Actor]] = defaultdict(list)
    for v in volunteers:
        teams[v.team_id].append(v)
    shares: list[list[Actor]] = [[] for _ in range(n)]
    for members in sorted(teams.values(), key=len, reverse=True):
        min(shares, key=len).extend(members)
    return shares


@dataclass
class Generators:
    """N generator processes (0: one, in this process) over one district."""

    n: int
    base_urls: list[str]
    volunteers: list[Actor]
    residents: list[Actor]
    closed_loop_residents: list[Actor] = field(default_factory=list)
    accept_delay: tuple[float, float] = (1.0, 3.0)
    move_interval: float = 30.0
    max_cpu_percent: float = MAX_CPU_PERCENT
    max_lag_p99_ms: float = MAX_LAG_P99_MS
    handles: list[_Remote | _Local] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [h.process.pid or 0 for h in self.handles if isinstance(h, _Remote)]

    def start(self) -> None:
        count = max(1, self.n)
        bases = [v.base for v in self.volunteers]
        for i, vols in enumerate(split_by_team(self.volunteers, count)):
            spec = Spec(
                index=i,
                base_urls=self.base_urls,
                volunteers=vols,
                residents=self.residents[i::count],
                closed_loop_residents=self.closed_loop_residents[i::count],
                press_bases=bases,
                accept_delay=self.accept_delay,
                move_interval=self.move_interval,
            )
            self.handles.append(_Remote(spec) if self.n > 0 else _Local(spec))

    async def _all(self, name: str, kwargs: Sequence[dict[str, Any]]) -> list[Any]:
        calls = (h.call(name, **kw) for h, kw in zip(self.handles, kwargs, strict=True))
        return list(await asyncio.gather(*calls))

    async def all(self, name: str, **kwargs: Any) -> list[Any]:
        return await self._all(name, [kwargs] * len(self.handles))

    def _shares(self, total: int) -> list[int]:
        """`total` split over the generators as evenly as whole numbers go."""
        k = len(self.handles)
        return [total // k + (1 if i < total % k else 0) for i in range(k)]

    def _verdict(self, meters: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return verdict(
            meters, max_cpu_percent=self.max_cpu_percent, max_lag_p99_ms=self.max_lag_p99_ms
        )

    async def connect(self) -> dict[str, float]:
        """Open every socket and put the volunteers on duty; the slowest
        generator's times."""
        setups = await self.all("connect")
        return {k: max(s[k] for s in setups) for k in setups[0]}

    async def reset(self) -> Record:
        return merge_records(await self.all("reset"))

    async def _clients(
        self, name: str, seconds: float, concurrency: int, **extra: Any
    ) -> dict[str, Any]:
        """`concurrency` closed-loop clients of command `name`, spread over the
        generators, started together: their answers per second, latencies,
        errors and the verdict."""
        start_at = time.perf_counter() + START_DELAY_S
        parts = await self._all(
            name,
            [
                {"seconds": seconds, "concurrency": c, "start_at": start_at, **extra}
                for c in self._shares(concurrency)
            ],
        )
        lat = [x for p in parts for x in p["latencies"]]
        errors: Counter[str] = Counter()
        states: Counter[str] = Counter()
        for p in parts:
            errors.update(p.get("errors", {}))
            states.update(p.get("states", {}))
        elapsed = max(p["elapsed_s"] for p in parts)
        return {
            "concurrency": concurrency,
            "rps": round(len(lat) / max(elapsed, 1e-9), 1),
            "latencies": lat,
            "errors": errors,
            "ran_out": any(p.get("ran_out") for p in parts),
            "states": dict(states),
            "generator": self._verdict([p["meter"] for p in parts]),
        }

    async def healthz(self, seconds: float, concurrency: int) -> dict[str, Any]:
        done = await self._clients("healthz", seconds, concurrency)
        return {
            "concurrency": concurrency,
            "rps": done["rps"],
            **summary(done["latencies"]),
            "generator": done["generator"],
        }

    async def start_moving(self) -> None:
        await self.all("start_moving")

    async def stop_moving(self) -> None:
        await self.all("stop_moving")

    async def press(self, rate: float, duration: float, drain: float) -> dict[str, Any]:
        """Open-loop presses at `rate`/s in all (a Poisson process split in
        k is k Poisson processes at rate/k); the achieved rate and the verdict."""
        start_at = time.perf_counter() + START_DELAY_S
        k = len(self.handles)
        parts = await self.all(
            "press", rate=rate / k, duration=duration, drain=drain, start_at=start_at
        )
        return {
            "achieved": sum(p["achieved"] for p in parts),
            "generator": self._verdict([p["meter"] for p in parts]),
        }

    async def closed_loop(
        self, seconds: float, concurrency: int, *, part: int = 0, parts: int = 1, hold: bool = False
    ) -> dict[str, Any]:
        done = await self._clients(
            "closed_loop", seconds, concurrency, part=part, parts=parts, hold=hold
        )
        return {
            "concurrency": concurrency,
            "rps": done["rps"],
            "errors": sum(done["errors"].values()),
            "error_kinds": dict(done["errors"]),
            "ran_out_of_residents": done["ran_out"],
            "answered_states": done["states"],
            "latency": summary(done["latencies"]),
            "generator": done["generator"],
        }

    async def close(self) -> None:
        await asyncio.gather(*(h.close() for h in self.handles), return_exceptions=True)
        self.handles = []
