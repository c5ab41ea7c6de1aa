"""`python -m bench storm`: a reconnect storm while residents press.

Every socket is connected (volunteers on duty and residents, each having
said `ping`), presses go on at a modest open-loop rate, and then every
socket is dropped at once (the client aborts its TCP connection, as a
network cut or a restarted proxy would) and reconnects at once with
`resume` from the last event id it got. Reported: the presses' latency and
errors before, during and after the storm; how long until every socket was
back (its `resume` answered, then a `pong`); failed reconnect attempts; and
whether each volunteer got every offer of its team exactly once, in order,
across the drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from websockets.asyncio.client import ClientConnection, connect

from bench import infra
from bench.infra import Actor, Server, connector
from bench.load import point
from bench.scale import _log, _save
from bench.stats import summary


@dataclass(eq=False)
class Client:
    """One socket's owner: what it got, and its current connection."""

    actor: Actor
    ws: ClientConnection | None = None
    ids: list[int] = field(default_factory=list)
    offers: list[int] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None
    closes: Counter[str] = field(default_factory=Counter)
    # The last event id the app knew of when it connected (as from its
    # last REST read): what it resumes from if no event came since.
    synced: int = 0

    @property
    def resume_from(self) -> int:
        return max(self.ids[-1] if self.ids else 0, self.synced)


class Storm:
    def __init__(self, base_url: str, clients: list[Client], pressers: list[Actor]) -> None:
        self.ws_url = base_url.replace("http://", "ws://", 1) + "/api/v1/ws"
        self.base_url = base_url
        self.clients = clients
        self.pressers = pressers
        self.rng = random.Random(11)
        # (sent at, seconds, outcome) of every press.
        self.presses: list[tuple[float, float, str]] = []
        self.failed_attempts: Counter[str] = Counter()
        self.pressing = False

    async def _open(self, client: Client, after: int | None) -> None:
        """Connect, `resume` (when it has an id) and `ping`; back when the
        pong arrives (the replay, if any, came before it)."""
        ws = await connect(
            self.ws_url,
            additional_headers=client.actor.headers,
            ping_interval=None,
            max_size=2**20,
            open_timeout=120,
            compression=None,
        )
        if after is not None:
            await ws.send(json.dumps({"type": "resume", "after": after}))
        await ws.send(json.dumps({"type": "ping"}))
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if message.get("type") == "pong":
                break
            self._got(client, message)
        client.ws = ws
        client.reader = asyncio.create_task(self._read(client, ws))

    def _got(self, client: Client, message: dict[str, Any]) -> None:
        if "id" in message:
            client.ids.append(message["id"])
            if message.get("type") == "offer.created":
                client.offers.append(message["id"])

    async def _read(self, client: Client, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._got(client, json.loads(raw))
        except Exception as exc:
            client.closes[type(exc).__name__] += 1
        if ws.close_code is not None and ws.close_code != 1000:
            client.closes[str(ws.close_code)] += 1

    async def open_all(self, concurrency: int) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(client: Client) -> None:
            async with gate:
                await self._open(client, None)

        await asyncio.gather(*(one(c) for c in self.clients))

    async def reconnect(self, client: Client) -> float:
        """Until connected again: seconds from the drop's end to the pong."""
        start = time.perf_counter()
        while True:
            try:
                await self._open(client, client.resume_from)
                return time.perf_counter() - start
            except Exception as exc:
                self.failed_attempts[type(exc).__name__] += 1
                await asyncio.sleep(self.rng.uniform(0.5, 1.5))

    def drop_all(self) -> None:
        """Cut every TCP connection at once, no closing handshake."""
        for client in self.clients:
            if client.reader is not None:
                client.reader.cancel()
            if client.ws is not None:
                client.ws.transport.abort()
            client.ws = None

    async def press(self, http: aiohttp.ClientSession, resident: Actor, at: Actor) -> None:
        body = {"location": point(*at.base)}
        sent = time.perf_counter()
        try:
            async with http.post("api/v1/calls", json=body, headers=resident.headers) as r:
                await r.read()
                outcome = str(r.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome = f"{type(exc).__name__}: {exc}"[:120]
        self.presses.append((sent, time.perf_counter() - sent, outcome))

    async def press_loop(self, rate: float, spots: list[Actor]) -> None:
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(
            base_url=self.base_url,
            connector=connector(256),
            timeout=aiohttp.ClientTimeout(total=60),
        ) as http:
            n = 0
            next_at = time.perf_counter()
            while self.pressing:
                next_at += self.rng.expovariate(rate)
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                resident = self.pressers[n % len(self.pressers)]
                spot = spots[self.rng.randrange(len(spots))]
                task = asyncio.create_task(self.press(http, resident, spot))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        for client in self.clients:
            if client.reader is not None:
                client.reader.cancel()
        conns = [c.ws for c in self.clients if c.ws is not None]
        await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


def _phase(presses: list[tuple[float, float, str]], start: float, end: float) -> dict[str, Any]:
    chosen = [p for p in presses if start <= p[0] < end]
    errors = Counter(outcome for _, _, outcome in chosen if outcome not in ("200", "201"))
    return {
        "presses": summary([seconds for _, seconds, _ in chosen]),
        "errors": dict(errors),
        "error_count": sum(errors.values()),
    }


async def _offers_by_person(dsn: str, after: int) -> dict[str, set[int]]:
    """Every offer.created after `after`, by each member of the offered team
    (a volunteer may be on more than one team)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT e.id, m.person_id FROM event e JOIN offer o ON o.id = e.offer_id "
            "JOIN team_member m ON m.team_id = o.team_id "
            "WHERE e.type = 'offer.created' AND e.id > $1",
            after,
        )
    finally:
        await conn.close()
    out: dict[str, set[int]] = {}
    for row in rows:
        out.setdefault(str(row["person_id"]), set()).add(row["id"])
    return out


def _exactness(clients: list[Client], offers: dict[str, set[int]]) -> dict[str, Any]:
    """Ids strictly increasing on each client across the drop, and every
    volunteer got its teams' offers, each once."""
    out_of_order = sum(
        1 for c in clients if any(b <= a for a, b in zip(c.ids, c.ids[1:], strict=False))
    )
    volunteers = [c for c in clients if c.actor.team_id is not None]
    missing = extra = expected = 0
    for c in volunteers:
        want = offers.get(str(c.actor.person_id), set())
        got = set(c.offers)
        expected += len(want)
        missing += len(want - got)
        extra += len(got - want)
    return {
        "sockets_out_of_order": out_of_order,
        "volunteer_offers_expected": expected,
        "volunteer_offers_missing": missing,
        # Offers beyond their teams': seeded members who are also
        # dispatchers see their area's (not an error).
        "volunteer_offers_beyond_their_teams": extra,
    }


async def _on_duty(base_url: str, volunteers: list[Actor]) -> Counter[str]:
    gate = asyncio.Semaphore(32)
    statuses: Counter[str] = Counter()
    async with aiohttp.ClientSession(base_url=base_url, connector=connector(100)) as http:

        async def one(a: Actor) -> None:
            async with gate:
                body = {"on_duty": True, "location": point(*a.base)}
                async with http.put("api/v1/me/duty", json=body, headers=a.headers) as r:
                    await r.read()
                    statuses[str(r.status)] += 1

        await asyncio.gather(*(one(a) for a in volunteers))
    return statuses


async def storm(args: Any) -> dict[str, Any]:
    infra.raise_nofile()
    out = Path(args.out)
    db = infra.BenchDatabase(args.admin_url or infra.admin_url_from_env())
    server: Server | None = None
    bench: Storm | None = None
    try:
        await db.create()
        db.migrate()
        db.seed(args.teams, 0.0)
        residents_n = args.sockets - args.volunteers + args.pressers
        _log(f"minting {args.volunteers} volunteers and {residents_n} residents")
        volunteers, residents = await infra.make_actors(db.url, args.volunteers, residents_n)
        pressers, on_sockets = residents[: args.pressers], residents[args.pressers :]
        server = Server(
            db.url,
            out / "storm-server.log",
            workers=args.workers,
            env={"MAX_OPEN_CALLS_PER_RESIDENT": "100000", **dict(args.env)},
        )
        await server.wait_ready()
        duty = await _on_duty(server.url, volunteers)
        clients = [Client(a) for a in volunteers + on_sockets]
        bench = Storm(server.url, clients, pressers)
        t = time.perf_counter()
        await bench.open_all(concurrency=64)
        _log(f"{len(clients)} sockets open in {time.perf_counter() - t:.1f} s; duty {dict(duty)}")
        offers_after = await _max_event_id(db.dsn)
        for client in clients:
            client.synced = offers_after
        sampler = infra.Sampler(server)
        bench.pressing = True
        presser = asyncio.create_task(bench.press_loop(args.rate, volunteers))
        before_start = time.perf_counter()
        await asyncio.sleep(args.before)
        spy = await _spy(server, out / "storm-profile.txt") if args.profile else None
        sampler.start()
        client_cpu = _cpu_seconds()
        drop_at = time.perf_counter()
        bench.drop_all()
        _log(f"dropped {len(clients)} sockets; reconnecting")
        took = await asyncio.gather(*(bench.reconnect(c) for c in clients))
        back_at = time.perf_counter()
        storm_resources = await sampler.stop()
        storm_resources["client_cpu_percent"] = round(
            100 * (_cpu_seconds() - client_cpu) / (back_at - drop_at), 1
        )
        _log(f"all back in {back_at - drop_at:.1f} s")
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has
            await spy.wait()
        await asyncio.sleep(args.after)
        bench.pressing = False
        await presser
        end = time.perf_counter()
        await asyncio.sleep(3)  # the last offers reach the sockets
        offers = await _offers_by_person(db.dsn, offers_after)
        result = {
            "command": "python -m bench " + " ".join(sys.argv[1:]),
            "sockets": len(clients),
            "volunteers": len(volunteers),
            "workers": args.workers,
            "press_rate": args.rate,
            "all_back_s": round(back_at - drop_at, 2),
            "reconnect": summary(took),
            "failed_reconnect_attempts": dict(bench.failed_attempts),
            "close_codes_seen": dict(sum((c.closes for c in clients), Counter())),
            "before": _phase(bench.presses, before_start, drop_at),
            "storm": _phase(bench.presses, drop_at, back_at),
            "after": _phase(bench.presses, back_at, end),
            "exactness": _exactness(clients, offers),
            "storm_resources": storm_resources,
        }
        _save(out, "storm", result)
        _log(json.dumps(result))
        return result
    finally:
        if bench is not None:
            await bench.close()
        if server is not None:
            server.stop()
        with contextlib.suppress(Exception):
            await db.drop()


async def _spy(server: Server, path: Path) -> asyncio.subprocess.Process:
    """py-spy on the server (its workers too) until stopped, raw format
    (`python -m bench hot` summarises it)."""
    return await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("py-spy")),
        *("record", "--pid", str(server.process.pid), "--subprocesses", "--rate", "250"),
        *("--format", "raw", "--output", str(path)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def _cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


async def _max_event_id(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value: int = await conn.fetchval("SELECT coalesce(max(id), 0) FROM event")
        return value
    finally:
        await conn.close()
