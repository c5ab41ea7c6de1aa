"""`python -m bench scale processes`: scaling by processes (issue 13, target 7).

Closed-loop presses (C clients pressing as fast as answered, from the
generator processes of bench/generator.py) against each layout `SxW`: S
server processes (`python -m app serve` on their own ports) with W workers
each, all on one database; each resident talks to one of the servers.
Volunteers are connected on sockets and on duty, so every press finds a team
and its offer is delivered, but they do not accept: what is measured is the
press and what it sets off (its events, their NOTIFY, the hubs' reads and
the sockets' frames). Each layout gets a fresh database.

Then NOTIFY's own ceiling, straight through asyncpg with no server: how
many transactions a second PostgreSQL commits that each write an event row
and NOTIFY it the way app/events/log.py does (the next id under a shared
advisory lock, the row, `pg_notify`), with 1..8 connections, the same
without the NOTIFY, and how fast one LISTEN connection receives them
(and a burst of notifications committed at once, for the listener's own
ceiling).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import asyncpg

from bench.generator import Generators, Meter, verdict
from bench.infra import (
    BenchDatabase,
    Sampler,
    Server,
    admin_url_from_env,
    make_actors,
    raise_nofile,
)
from bench.stats import summary

CHANNEL = "bench_notify_ceiling"
TABLE = "bench_notify_event"
# A call snapshot about the size of the app's (the event row's `data`).
_SNAPSHOT = json.dumps(
    {
        "id": str(uuid.UUID(int=1)),
        "status": "offered",
        "category": "medical",
        "note": None,
        "location": {"lat": 22.75, "lng": 113.94, "accuracy_m": 15},
        "grid": {"id": str(uuid.UUID(int=2)), "name": "Grid 12"},
        "team": {"id": str(uuid.UUID(int=3)), "name": "Team 0413"},
        "responder": None,
        "escalation_level": "grid",
        "created_at": "2026-12-02T10:00:00+00:00",
        "updated_at": "2026-12-02T10:00:00+00:00",
        "last_event_id": 1,
    }
)


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_layout(text: str) -> tuple[int, int]:
    """`SxW`: S server processes of W workers each."""
    servers, _, workers = text.lower().partition("x")
    return int(servers), int(workers or 1)


# --- the closed-loop curve -------------------------------------------------------------


async def _events_per_call(dsn: str) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        calls, events = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM call), (SELECT count(*) FROM event)"
        )
        return round(float(events) / max(int(calls), 1), 2)
    finally:
        await conn.close()


async def layout_step(args: Any, layout: str, out: Path) -> dict[str, Any]:
    """One layout on a fresh database: its closed-loop presses/s, latency and CPU."""
    servers_n, workers = parse_layout(layout)
    db = BenchDatabase(args.admin_url or admin_url_from_env(), pg_settings=list(args.pg_set))
    servers: list[Server] = []
    gens: Generators | None = None
    try:
        await db.create()
        db.migrate()
        db.seed(args.teams[0], 0.0)
        volunteers, residents = await make_actors(db.url, args.volunteers, args.residents)
        # A resident may keep many calls open here, so a few hundred can press
        # for the whole phase (each press still counts their open calls). The
        # pools are smaller than the default 10 + 10 a worker: 4 workers with
        # those met PostgreSQL's max_connections (100, shared with other
        # jobs) while the volunteers went on duty; 16 clients need no more.
        env = {
            "MAX_OPEN_CALLS_PER_RESIDENT": "1000000",
            "DB_POOL_SIZE": "5",
            "DB_MAX_OVERFLOW": "3",
            **dict(args.env),
        }
        for i in range(servers_n):
            servers.append(
                Server(db.url, out / f"processes-{layout}-{i}.log", workers=workers, env=env)
            )
        for server in servers:
            await server.wait_ready()
        rounds = 1 + int(args.duration * 400 / max(len(residents), 1))
        gens = Generators(
            args.generators,
            [s.url for s in servers],
            volunteers,
            [],
            residents * rounds,
            accept_delay=(1e6, 1e6),  # connected and on duty, never accepting
            max_cpu_percent=args.max_generator_cpu,
            max_lag_p99_ms=args.max_generator_lag_ms,
        )
        gens.start()
        await gens.connect()
        if args.warmup > 0:
            await gens.closed_loop(args.warmup, args.clients)
        sampler = Sampler(servers[0], others=servers[1:], dsn=db.dsn)
        sampler.start()
        loop = await gens.closed_loop(args.duration, args.clients)
        res = await sampler.stop()
        row = {
            "layout": layout,
            "servers": servers_n,
            "workers_each": workers,
            "processes": servers_n * workers,
            "clients": args.clients,
            "presses_per_s": loop["rps"],
            "latency": loop["latency"],
            "errors": loop["errors"],
            "error_kinds": loop["error_kinds"],
            "ran_out_of_residents": loop["ran_out_of_residents"],
            "events_per_call": await _events_per_call(db.dsn),
            **res,
            "generator": loop["generator"],
        }
        tracebacks = sum(s.log().count("Traceback") for s in servers)
        row["server_tracebacks"] = tracebacks
        return row
    finally:
        if gens is not None:
            await gens.close()
        for server in servers:
            server.stop()
        with contextlib.suppress(Exception):
            await db.drop()


# --- NOTIFY's ceiling ------------------------------------------------------------------


def _writer_process(
    dsn: str, connections: int, seconds: float, notify: bool, start_at: float
) -> dict[str, Any]:
    """Runs in its own process: `connections` connections committing
    event-row transactions as fast as they go."""
    import uvloop

    result: dict[str, Any] = uvloop.run(_write(dsn, connections, seconds, notify, start_at))
    return result


async def _write(
    dsn: str, connections: int, seconds: float, notify: bool, start_at: float
) -> dict[str, Any]:
    from app.core.locks import NEXT_EVENT_ID

    # The app's own statement: the event sequence's next id, under a shared
    # advisory lock held to the commit (the ids are the real table's).
    next_id = NEXT_EVENT_ID.text
    insert = (
        f"INSERT INTO {TABLE} (id, call_id, offer_id, type, data, note)"
        " OVERRIDING SYSTEM VALUE VALUES ($1, $2, NULL, 'call.updated', $3::jsonb, NULL)"
    )
    conns = [await asyncpg.connect(dsn, server_settings={"jit": "off"}) for _ in range(connections)]
    durations: list[float] = []
    committed: dict[int, float] = {}
    meter = Meter()
    try:
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        meter.start()
        end = time.perf_counter() + seconds

        async def writer(conn: Any) -> None:
            call_id = uuid.uuid4()
            while time.perf_counter() < end:
                t = time.perf_counter()
                async with conn.transaction():
                    event_id = await conn.fetchval(next_id)
                    await conn.execute(insert, event_id, call_id, _SNAPSHOT)
                    if notify:
                        payload = {"id": event_id, "call_id": str(call_id), "type": "call.updated"}
                        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, json.dumps(payload))
                done = time.perf_counter()
                durations.append(done - t)
                committed[event_id] = done

        start = time.perf_counter()
        await asyncio.gather(*(writer(c) for c in conns))
        elapsed = time.perf_counter() - start
    finally:
        for c in conns:
            await c.close()
    return {
        "commits": len(durations),
        "elapsed_s": elapsed,
        "durations": durations,
        "committed": committed,
        "meter": await meter.stop(),
    }


class _Listener:
    """One LISTEN connection; when each notification arrived."""

    def __init__(self) -> None:
        self.got: list[tuple[float, str]] = []
        self.conn: Any = None
        self.expect = 0
        self.all_in = asyncio.Event()

    def _on(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.got.append((time.perf_counter(), payload))
        if self.expect and len(self.got) >= self.expect:
            self.all_in.set()

    async def start(self, dsn: str) -> None:
        self.conn = await asyncpg.connect(dsn)
        await self.conn.add_listener(CHANNEL, self._on)

    async def wait_for(self, count: int, within: float) -> None:
        self.expect = count
        if len(self.got) >= count:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_in.wait(), within)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


async def notify_step(
    dsn: str, pool: ProcessPoolExecutor, connections: int, seconds: float, notify: bool
) -> dict[str, Any]:
    procs = min(2, connections)
    shares = [connections // procs + (1 if i < connections % procs else 0) for i in range(procs)]
    listener = _Listener()
    await listener.start(dsn)
    sampler = Sampler(None, dsn=dsn)
    meter = Meter()
    try:
        loop = asyncio.get_running_loop()
        start_at = time.perf_counter() + 2.0  # the writer processes start and connect
        jobs = [
            loop.run_in_executor(pool, _writer_process, dsn, n, seconds, notify, start_at)
            for n in shares
        ]
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        sampler.start()
        meter.start()
        parts = await asyncio.gather(*jobs)
        commits = sum(p["commits"] for p in parts)
        if notify:
            await listener.wait_for(commits, 10.0)
        listened = await meter.stop()
        res = await sampler.stop()
    finally:
        await listener.close()
    elapsed = max(p["elapsed_s"] for p in parts)
    committed = {k: v for p in parts for k, v in p["committed"].items()}
    delivery = []
    for at, payload in listener.got:
        sent = committed.get(json.loads(payload)["id"])
        if sent is not None:
            delivery.append(max(0.0, at - sent))
    received_in_phase = sum(1 for at, _ in listener.got if at <= start_at + elapsed)
    return {
        "connections": connections,
        "notify": notify,
        "tx_per_s": round(commits / max(elapsed, 1e-9), 1),
        "tx": summary([d for p in parts for d in p["durations"]]),
        "commits": commits,
        "received": len(listener.got),
        "received_per_s_in_phase": round(received_in_phase / max(elapsed, 1e-9), 1),
        "delivery": summary(delivery),
        "postgres_db_cpu_percent": res.get("postgres_db_cpu_percent"),
        "postgres_cpu_percent": res["postgres_cpu_percent"],
        "listener_cpu_percent": listened["cpu_percent"],
        "machine_cpu_pressure_percent": res.get("machine_cpu_pressure_percent"),
        "writers": verdict([p["meter"] for p in parts]),
    }


async def listener_burst(dsn: str, count: int) -> dict[str, Any]:
    """`count` notifications committed in one transaction: how fast one
    LISTEN connection takes them in."""
    listener = _Listener()
    await listener.start(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "SELECT count(pg_notify($1, json_build_object('id', g, 'call_id', $3::text,"
            " 'type', 'call.updated')::text)) FROM generate_series(1, $2) g",
            CHANNEL,
            count,
            str(uuid.uuid4()),
        )
        # From the COMMIT's sending: the listener, on this same loop, may
        # take them all in before the COMMIT's answer is read.
        committing = time.perf_counter()
        await tx.commit()
        await listener.wait_for(count, 60.0)
        last = listener.got[-1][0] if listener.got else committing
        return {
            "notifications": count,
            "received": len(listener.got),
            "seconds": round(last - committing, 3),
            "received_per_s": round(len(listener.got) / max(last - committing, 1e-9), 1),
        }
    finally:
        await conn.close()
        await listener.close()


async def notify_ceiling(args: Any) -> dict[str, Any]:
    db = BenchDatabase(args.admin_url or admin_url_from_env(), pg_settings=list(args.pg_set))
    rows: list[dict[str, Any]] = []
    try:
        await db.create()
        db.migrate()
        conn = await asyncpg.connect(db.dsn)
        try:
            await conn.execute(f"CREATE TABLE {TABLE} (LIKE event INCLUDING ALL)")
            settings = {
                name: await conn.fetchval(f"SHOW {name}")
                for name in ("synchronous_commit", "fsync", "wal_sync_method", "commit_delay")
            }
        finally:
            await conn.close()
        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            for n in args.notify_connections:
                for notify in (True, False):
                    row = await notify_step(db.dsn, pool, n, args.notify_seconds, notify)
                    _log(
                        f"NOTIFY ceiling: {n} connection(s), notify={notify}: "
                        f"{row['tx_per_s']} tx/s, tx p50 {row['tx'].get('p50_ms')} ms, "
                        f"delivery p99 {row['delivery'].get('p99_ms')} ms"
                    )
                    rows.append(row)
        burst = await listener_burst(db.dsn, args.notify_burst)
        _log(f"listener burst: {burst}")
        return {"settings": settings, "rows": rows, "listener_burst": burst}
    finally:
        with contextlib.suppress(Exception):
            await db.drop()


# --- the command -----------------------------------------------------------------------


def _save(out: Path, data: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "processes.json").write_text(json.dumps(data, indent=2, default=str))


async def scale_processes(args: Any) -> dict[str, Any]:
    raise_nofile()
    out = Path(args.out)
    data: dict[str, Any] = {
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "layouts": [],
    }
    for layout in args.layouts:
        _log(f"layout {layout}: closed loop, {args.clients} clients, {args.duration} s")
        try:
            row = await layout_step(args, layout, out)
        except Exception as exc:  # one layout failing keeps the others' figures
            _log(f"layout {layout} failed: {exc!r}")
            data["layouts"].append({"layout": layout, "failed": repr(exc)[:500]})
            _save(out, data)
            continue
        _log(
            f"layout {layout}: {row['presses_per_s']} presses/s, "
            f"p50 {row['latency'].get('p50_ms')} ms, p99 {row['latency'].get('p99_ms')} ms, "
            f"server CPU {row['server_cpu_percent']} %, PostgreSQL (this db) "
            f"{row.get('postgres_db_cpu_percent')} %, errors {row['errors']}"
        )
        data["layouts"].append(row)
        _save(out, data)
    if args.notify_seconds > 0:
        data["notify"] = await notify_ceiling(args)
        _save(out, data)
    plot(data, out / "processes.png")
    print(markdown(data))
    return data


def markdown(data: dict[str, Any]) -> str:
    out = [
        f"Command: `{data['command']}`",
        "",
        "| layout (servers × workers) | presses/s | p50 / p99 ms | errors | server CPU % "
        "| PostgreSQL CPU % (this db / all) | generator CPU % | events per call "
        "| CPU pressure % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["layouts"]:
        if "failed" in r:
            out.append(f"| {r['layout']} | failed: {r['failed'][:120]} |||||||")
            continue
        lat = r["latency"]
        gen = r["generator"]
        cpus = " + ".join(str(m["cpu_percent"]) for m in gen["generators"])
        flag = " (saturated)" if gen["saturated"] else ""
        out.append(
            f"| {r['servers']} × {r['workers_each']} | {r['presses_per_s']} "
            f"| {lat.get('p50_ms', '–')} / {lat.get('p99_ms', '–')} | {r['errors']} "
            f"| {r['server_cpu_percent']} | {r.get('postgres_db_cpu_percent', '–')} / "
            f"{r['postgres_cpu_percent']} | {cpus}{flag} | {r['events_per_call']} "
            f"| {r.get('machine_cpu_pressure_percent', '–')} |"
        )
    notify = data.get("notify")
    if notify:
        out += [
            "",
            f"NOTIFY ceiling (PostgreSQL settings: {notify['settings']}):",
            "",
            "| connections | NOTIFY | transactions/s | tx p50 / p99 ms | received (of committed) "
            "| delivery p50 / p99 ms | PostgreSQL CPU % (this db) | writers' CPU % |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in notify["rows"]:
            tx, d = r["tx"], r["delivery"]
            cpus = " + ".join(str(m["cpu_percent"]) for m in r["writers"]["generators"])
            deliv = f"{d.get('p50_ms', '–')} / {d.get('p99_ms', '–')}" if r["notify"] else "–"
            recv = f"{r['received']} ({r.get('commits', '?')})" if r["notify"] else "–"
            out.append(
                f"| {r['connections']} | {'yes' if r['notify'] else 'no'} | {r['tx_per_s']} "
                f"| {tx.get('p50_ms', '–')} / {tx.get('p99_ms', '–')} | {recv} | {deliv} "
                f"| {r['postgres_db_cpu_percent']} | {cpus} |"
            )
        b = notify["listener_burst"]
        out += [
            "",
            f"One LISTEN connection took in {b['received']} of {b['notifications']} "
            f"notifications committed at once in {b['seconds']} s: {b['received_per_s']}/s.",
        ]
    return "\n".join(out) + "\n"


def plot(data: dict[str, Any], path: Path) -> None:
    rows = [r for r in data["layouts"] if "failed" not in r]
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    labels = [f"{r['servers']}×{r['workers_each']}" for r in rows]
    xs = range(len(rows))
    ax.bar(xs, [r["presses_per_s"] for r in rows], color="tab:blue", alpha=0.7)
    ax.set_xticks(list(xs), labels)
    ax.set_xlabel("server processes × workers each (one database)")
    ax.set_ylabel("closed-loop presses/s", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(xs, [r["server_cpu_percent"] for r in rows], "o-", color="tab:red", label="server")
    ax2.plot(
        xs,
        [r.get("postgres_db_cpu_percent", 0) for r in rows],
        "s--",
        color="tab:green",
        label="PostgreSQL (this db)",
    )
    ax2.set_ylabel("CPU, % of one core")
    ax2.set_ylim(bottom=0)
    ax2.legend(loc="upper left", fontsize=8)
    ax.set_title("closed-loop presses by server processes (2 cores, shared)")
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
