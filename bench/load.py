"""The simulated district: volunteers on sockets, residents pressing, floors."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
from websockets.asyncio.client import ClientConnection, connect

from app.core.sql import Compiled, compiled
from bench.infra import Actor, connector
from bench.stats import summary

METERS_PER_DEG = 111_320.0
# Presses land on a volunteer's team base (bases are inside their grid; even
# 5 m off, a base on the district's edge now and then gives 422
# outside_service_area, which is not what the bench measures).
PRESS_JITTER_M = 0.0


def jitter(rng: random.Random, lat: float, lng: float, meters: float) -> tuple[float, float]:
    r = meters * math.sqrt(rng.random())
    a = rng.random() * 2 * math.pi
    dlat = r * math.cos(a) / METERS_PER_DEG
    dlng = r * math.sin(a) / (METERS_PER_DEG * math.cos(math.radians(lat)))
    return lat + dlat, lng + dlng


def point(lat: float, lng: float) -> dict[str, float]:
    return {"lat": round(lat, 6), "lng": round(lng, 6), "accuracy_m": 15}


@dataclass
class Record:
    """What one load phase saw, keyed by call id."""

    pressed: dict[str, float] = field(default_factory=dict)
    press_sent: list[float] = field(default_factory=list)
    post_latency: list[float] = field(default_factory=list)
    post_latency_at: list[float] = field(default_factory=list)
    first_offer: dict[str, float] = field(default_factory=dict)
    accept_sent: dict[str, float] = field(default_factory=dict)
    accept_latency: list[float] = field(default_factory=list)
    accepted_seen: dict[str, float] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    conflicts: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)


class Sockets:
    """Open, keep and read the actors' WebSockets."""

    def __init__(self, base_url: str, *, deflate: bool = True) -> None:
        self.deflate = deflate
        self.ws_url = base_url.replace("http://", "ws://", 1) + "/api/v1/ws"
        self.conns: list[ClientConnection] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, actor: Actor) -> ClientConnection:
        ws = await connect(
            self.ws_url,
            additional_headers=actor.headers,
            ping_interval=None,
            max_size=2**20,
            open_timeout=60,
            compression="deflate" if self.deflate else None,
        )
        await ws.send(json.dumps({"type": "ping"}))
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if message.get("type") == "pong":
                break
        self.conns.append(ws)
        return ws

    async def open_many(self, actors: list[Actor], concurrency: int = 32) -> list[ClientConnection]:
        gate = asyncio.Semaphore(concurrency)
        out: list[ClientConnection | None] = [None] * len(actors)

        async def one(i: int, a: Actor) -> None:
            async with gate:
                out[i] = await self.open(a)

        await asyncio.gather(*(one(i, a) for i, a in enumerate(actors)))
        return [c for c in out if c is not None]

    def read(self, ws: ClientConnection, handler: Any) -> None:
        async def loop() -> None:
            with contextlib.suppress(Exception):
                async for raw in ws:
                    handler(json.loads(raw), time.perf_counter())

        self.tasks.append(asyncio.create_task(loop()))

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in self.conns), return_exceptions=True)
        self.conns.clear()
        self.tasks.clear()


@dataclass
class Answer:
    status_code: int
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)

    def code(self) -> str:
        with contextlib.suppress(Exception):
            return str(self.json().get("code", ""))
        return ""


class District:
    """Volunteers and residents connected to one server, or spread over
    several (each actor talks to one of them, chosen by its person id)."""

    def __init__(
        self,
        base_url: str | Sequence[str],
        volunteers: list[Actor],
        residents: list[Actor],
        *,
        accept_delay: tuple[float, float] = (1.0, 3.0),
        resolve_delay: float = 0.5,
        move_interval: float = 30.0,
        seed: int = 42,
        press_bases: list[tuple[float, float]] | None = None,
    ) -> None:
        self.base_urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self.base_url = self.base_urls[0]
        self.volunteers = volunteers
        self.residents = residents
        # Where presses land: a team base (by default, one of these volunteers').
        self.press_bases = press_bases or [v.base for v in volunteers]
        self.accept_delay = accept_delay
        self.resolve_delay = resolve_delay
        self.move_interval = move_interval
        self.rng = random.Random(seed)
        self._https: dict[int, aiohttp.ClientSession] = {}
        self.all_sockets = [Sockets(u) for u in self.base_urls]
        self.record = Record()
        self.claimed: set[str] = set()
        self.busy: set[uuid.UUID] = set()
        self.bg: set[asyncio.Task[Any]] = set()
        self.moving = False
        # Volunteers hold (see offers, accept none): to measure presses alone.
        self.holding = False

    def _server_of(self, actor: Actor) -> int:
        return actor.person_id.int % len(self.base_urls)

    def _session(self, i: int) -> aiohttp.ClientSession:
        if i not in self._https:
            self._https[i] = aiohttp.ClientSession(
                base_url=self.base_urls[i],
                connector=connector(512),
                timeout=aiohttp.ClientTimeout(total=30),
            )
        return self._https[i]

    @property
    def http(self) -> aiohttp.ClientSession:
        return self._session(0)

    def http_for(self, actor: Actor) -> aiohttp.ClientSession:
        return self._session(self._server_of(actor))

    @property
    def sockets(self) -> Sockets:
        return self.all_sockets[0]

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.bg.add(task)
        task.add_done_callback(self.bg.discard)

    async def request(
        self, label: str, method: str, url: str, actor: Actor, body: Any = None
    ) -> tuple[Answer | None, float]:
        rec = self.record
        rec.requests[label] += 1
        start = time.perf_counter()
        try:
            async with self.http_for(actor).request(
                method, url.lstrip("/"), json=body, headers=actor.headers
            ) as resp:
                raw = await resp.read()
                answer = Answer(resp.status, raw)
        except (aiohttp.ClientError, TimeoutError) as exc:
            rec.errors[f"{label} {type(exc).__name__}"] += 1
            return None, time.perf_counter() - start
        elapsed = time.perf_counter() - start
        rec.statuses[f"{label} {answer.status_code}"] += 1
        if answer.status_code >= 400:
            key = f"{label} {answer.status_code} {answer.code()}"
            if answer.status_code == 409 and label == "accept":
                rec.conflicts[key] += 1
            else:
                rec.errors[key] += 1
        return answer, elapsed

    # --- setup -------------------------------------------------------------

    async def connect(self) -> dict[str, float]:
        t0 = time.perf_counter()
        for i, sockets in enumerate(self.all_sockets):
            mine = [a for a in self.volunteers if self._server_of(a) == i]
            for actor, ws in zip(mine, await sockets.open_many(mine), strict=True):
                sockets.read(ws, self._volunteer_handler(actor))
        t1 = time.perf_counter()
        for i, sockets in enumerate(self.all_sockets):
            mine = [a for a in self.residents if self._server_of(a) == i]
            for ws in await sockets.open_many(mine):
                sockets.read(ws, self._resident_event)
        t2 = time.perf_counter()
        gate = asyncio.Semaphore(32)

        async def on_duty(a: Actor) -> None:
            async with gate:
                a.lat, a.lng = jitter(self.rng, a.lat, a.lng, 60)
                await self.request(
                    "duty",
                    "PUT",
                    "/api/v1/me/duty",
                    a,
                    {"on_duty": True, "location": point(a.lat, a.lng)},
                )

        await asyncio.gather(*(on_duty(a) for a in self.volunteers))
        return {
            "volunteer_sockets_s": round(t1 - t0, 2),
            "resident_sockets_s": round(t2 - t1, 2),
            "duty_s": round(time.perf_counter() - t2, 2),
        }

    # --- events ------------------------------------------------------------

    def _volunteer_handler(self, actor: Actor) -> Any:
        def handle(message: dict[str, Any], at: float) -> None:
            if message.get("type") != "offer.created":
                return
            call_id = str(message.get("call_id"))
            rec = self.record
            if call_id not in rec.first_offer:
                rec.first_offer[call_id] = at
            offer = message.get("data") or {}
            offer_id = str(offer.get("id"))
            if offer.get("status") != "open" or offer_id in self.claimed or self.holding:
                return
            if actor.person_id in self.busy:
                return
            self.claimed.add(offer_id)
            self.busy.add(actor.person_id)
            self.spawn(self._accept(actor, call_id, offer_id))

        return handle

    def _resident_event(self, message: dict[str, Any], at: float) -> None:
        if message.get("type") != "call.updated":
            return
        data = message.get("data") or {}
        if data.get("status") == "accepted":
            self.record.accepted_seen.setdefault(str(message.get("call_id")), at)

    async def _accept(self, actor: Actor, call_id: str, offer_id: str) -> None:
        try:
            await asyncio.sleep(self.rng.uniform(*self.accept_delay))
            self.record.accept_sent[call_id] = time.perf_counter()
            resp, elapsed = await self.request(
                "accept", "POST", f"/api/v1/offers/{offer_id}/accept", actor
            )
            if resp is None or resp.status_code != 200:
                return
            self.record.accept_latency.append(elapsed)
            await asyncio.sleep(self.resolve_delay)
            for status in ("on_site", "resolved"):
                await self.request(
                    "progress",
                    "POST",
                    f"/api/v1/calls/{call_id}/progress",
                    actor,
                    {"status": status},
                )
        finally:
            self.busy.discard(actor.person_id)

    # --- movement ----------------------------------------------------------

    async def _mover(self, actor: Actor) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.move_interval))
        base = (actor.lat, actor.lng)
        while self.moving:
            lat, lng = jitter(self.rng, base[0], base[1], 60)
            await self.request("location", "PUT", "/api/v1/me/location", actor, point(lat, lng))
            await asyncio.sleep(self.move_interval * self.rng.uniform(0.8, 1.2))

    def start_moving(self) -> list[asyncio.Task[None]]:
        self.moving = True
        return [asyncio.create_task(self._mover(a)) for a in self.volunteers]

    # --- pressing ----------------------------------------------------------

    async def _press(self, resident: Actor, lat: float, lng: float, t0: float) -> None:
        rec = self.record
        rec.press_sent.append(t0)
        resp, elapsed = await self.request(
            "calls", "POST", "/api/v1/calls", resident, {"location": point(lat, lng)}
        )
        rec.post_latency.append(elapsed)
        rec.post_latency_at.append(t0)
        if resp is not None and resp.status_code in (200, 201):
            rec.pressed[str(resp.json()["id"])] = t0

    async def press_open_loop(self, rate: float, duration: float) -> float:
        """Poisson arrivals at `rate`/s for `duration` s; the achieved send rate."""
        start = time.perf_counter()
        next_at = start
        n = 0
        end = start + duration
        while True:
            next_at += self.rng.expovariate(rate)
            if next_at >= end:
                break
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            resident = self.residents[n % len(self.residents)]
            lat, lng = self.press_point()
            self.spawn(self._press(resident, lat, lng, time.perf_counter()))
            n += 1
        return n / max(time.perf_counter() - start, 1e-9)

    def press_point(self) -> tuple[float, float]:
        base = self.press_bases[self.rng.randrange(len(self.press_bases))]
        return jitter(self.rng, base[0], base[1], PRESS_JITTER_M)

    async def press_closed_loop(
        self, residents: list[Actor], seconds: float, concurrency: int
    ) -> dict[str, Any]:
        """Closed loop: `concurrency` clients pressing as fast as answered,
        each press by the next of `residents` (a fresh one each unless the
        server lets a resident keep many calls open); stops early if they run
        out. The latencies are of the 2xx answers."""
        ok: list[float] = []
        errors: Counter[str] = Counter()
        end = time.perf_counter() + seconds
        it = iter(residents)
        ran_out = False

        async def client() -> None:
            nonlocal ran_out
            while time.perf_counter() < end:
                resident = next(it, None)
                if resident is None:
                    ran_out = True
                    return
                lat, lng = self.press_point()
                t = time.perf_counter()
                try:
                    async with self.http_for(resident).post(
                        "api/v1/calls", json={"location": point(lat, lng)}, headers=resident.headers
                    ) as r:
                        raw = await r.read()
                        status = r.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors[f"calls {type(exc).__name__}"] += 1
                    continue
                if status in (200, 201):
                    ok.append(time.perf_counter() - t)
                    # A press that found no team is cheaper than one offered:
                    # the answers' states say which were measured.
                    states[str(json.loads(raw).get("status"))] += 1
                else:
                    errors[f"calls {status} {Answer(status, raw).code()}"] += 1

        states: Counter[str] = Counter()
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return {
            "concurrency": concurrency,
            "elapsed_s": time.perf_counter() - start,
            "latencies": ok,
            "errors": dict(errors),
            "ran_out": ran_out,
            "states": dict(states),
        }

    async def drain(self, within: float = 15.0) -> None:
        deadline = time.perf_counter() + within
        while self.bg and (left := deadline - time.perf_counter()) > 0:
            await asyncio.wait(list(self.bg), timeout=left)

    async def close(self) -> None:
        self.moving = False
        for t in list(self.bg):
            t.cancel()
        await asyncio.gather(*self.bg, return_exceptions=True)
        for sockets in self.all_sockets:
            await sockets.close()
        for http in self._https.values():
            await http.close()
        self._https.clear()

    def reset(self) -> Record:
        rec, self.record = self.record, Record()
        return rec


def merge_records(records: Sequence[Record]) -> Record:
    """One Record of several generators' (their clocks are the same: on
    Linux `perf_counter` is CLOCK_MONOTONIC, one clock for the machine)."""
    out = Record()
    for rec in records:
        out.pressed.update(rec.pressed)
        out.press_sent.extend(rec.press_sent)
        out.post_latency.extend(rec.post_latency)
        out.post_latency_at.extend(rec.post_latency_at[: len(rec.post_latency)])
        for call_id, at in rec.first_offer.items():
            out.first_offer[call_id] = min(at, out.first_offer.get(call_id, at))
        out.accept_sent.update(rec.accept_sent)
        out.accept_latency.extend(rec.accept_latency)
        for call_id, at in rec.accepted_seen.items():
            out.accepted_seen[call_id] = min(at, out.accepted_seen.get(call_id, at))
        for name in ("errors", "conflicts", "requests", "statuses"):
            getattr(out, name).update(getattr(rec, name))
    out.press_sent.sort()
    return out


def analyse(rec: Record, rate: float, achieved: float, duration: float) -> dict[str, Any]:
    post = list(rec.post_latency)  # tasks cut short by the drain may still append
    press_offer = [rec.first_offer[c] - t for c, t in rec.pressed.items() if c in rec.first_offer]
    accept_update = [
        rec.accepted_seen[c] - t for c, t in rec.accept_sent.items() if c in rec.accepted_seen
    ]
    return {
        "rate_target": rate,
        "rate_achieved": round(achieved, 2),
        "duration_s": duration,
        "calls_sent": len(rec.press_sent),
        "calls_created": len(rec.pressed),
        "calls_offered_seen": len(press_offer),
        "calls_accepted_seen": len(accept_update),
        "post_calls": summary(rec.post_latency),
        "press_to_offer": summary(press_offer),
        "accept_to_call_updated": summary(accept_update),
        "accept_request": summary(rec.accept_latency),
        "requests": dict(rec.requests),
        "statuses": dict(rec.statuses),
        "errors": dict(rec.errors),
        "error_count": sum(rec.errors.values()),
        "accept_conflicts": dict(rec.conflicts),
        "_series": {
            "post_at": [t - rec.press_sent[0] for t in rec.post_latency_at[: len(post)]],
            "post": post,
            "press_to_offer": press_offer,
            "accept_to_call_updated": accept_update,
        },
    }


# --- floors ----------------------------------------------------------------


def nearest_sql() -> str:
    """The SQL of dispatch._NEAREST_TEAMS, compiled for asyncpg ($1, $2, …);
    bind it with `nearest_args`."""
    return _nearest().sql


def nearest_args(
    lat: float,
    lng: float,
    *,
    max_age: timedelta,
    radius_m: float,
    k: int,
    skip: Sequence[uuid.UUID] = (),
    want: int = 1,
) -> list[Any]:
    """The arguments of `nearest_sql()` in its order, with the team rule's
    thresholds as the app's defaults set them."""
    values = {
        "lat": lat,
        "lng": lng,
        "max_age": max_age,
        "radius_m": radius_m,
        "k": k,
        "skip": list(skip),
        "want": want,
        **_team_rule(),
    }
    return _nearest().args(values)


@functools.cache
def _team_rule() -> dict[str, Any]:
    """The team rule's thresholds, read once: building `Settings()` (the
    environment, the `.env` file, a hundred fields validated) costs about
    5 ms, which every timed query paid when this was done per call."""
    from app.core.config import Settings
    from app.teams import rules

    return rules.params(Settings())


def _nearest() -> Compiled:
    from app.dispatch.policy import _NEAREST_TEAMS

    return compiled(_NEAREST_TEAMS)


async def nearest_floor(
    dsn: str,
    points: list[tuple[float, float]],
    seconds: float,
    concurrency: int,
    *,
    radius_m: float = 3000.0,
    max_age_s: int = 86400,
) -> dict[str, Any]:
    """The nearest-team query alone through raw asyncpg (want=1, the first k
    dispatch reads: `policy.first_k`)."""
    from app.dispatch.policy import first_k

    sql = nearest_sql()
    k = first_k(1, 0)
    lat: list[float] = []
    found = 0
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    rng = random.Random(7)
    try:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal found
            async with pool.acquire() as conn:
                stmt = await conn.prepare(sql)
                while time.perf_counter() < end:
                    p_lat, p_lng = points[rng.randrange(len(points))]
                    t = time.perf_counter()
                    row = await stmt.fetchrow(
                        *nearest_args(
                            p_lat,
                            p_lng,
                            max_age=timedelta(seconds=max_age_s),
                            radius_m=radius_m,
                            k=k,
                        )
                    )
                    lat.append(time.perf_counter() - t)
                    if row is not None and row["teams"] not in ("[]", None):
                        found += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    finally:
        await pool.close()
    return {
        "concurrency": concurrency,
        "qps": round(len(lat) / elapsed, 1),
        "found_fraction": round(found / max(len(lat), 1), 3),
        **summary(lat),
    }
