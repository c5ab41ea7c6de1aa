"""The bench's own database, the server subprocess, actors and their tokens."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import psutil
from sqlalchemy import text

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCH_SECRET = "bench-only-secret-key-0123456789abcdef-not-for-production"
RESIDENT_PHONE_BASE = 95_000_000
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


# uvicorn closes a keep-alive connection idle for 5 s; aiohttp keeps one for
# 15 s by default, and a request sent on it as the server closes it fails
# with ClientOSError (seen in the smoke test and the storm). The bench's
# clients let idle connections go first.
CLIENT_KEEPALIVE_S = 3.0


def connector(limit: int) -> aiohttp.TCPConnector:
    """An HTTP connection pool for the bench's clients (see CLIENT_KEEPALIVE_S)."""
    return aiohttp.TCPConnector(limit=limit, keepalive_timeout=CLIENT_KEEPALIVE_S)


def admin_url_from_env() -> str:
    """A URL of the PostgreSQL server's `postgres` database (BENCH_ADMIN_URL,
    else the server of TEST_DATABASE_URL, else 127.0.0.1:5432)."""
    if url := os.environ.get("BENCH_ADMIN_URL"):
        return url
    if url := os.environ.get("TEST_DATABASE_URL"):
        base = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        return base.rsplit("/", 1)[0] + "/postgres"
    return DEFAULT_ADMIN_URL


def raise_nofile() -> int:
    """Raise the soft open-files limit to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class BenchDatabase:
    """A throwaway database `hulian_bench_*` on the admin URL's server."""

    def __init__(
        self,
        admin_url: str,
        name: str | None = None,
        pg_settings: list[tuple[str, str]] | None = None,
    ) -> None:
        self.admin_url = admin_url
        # ALTER DATABASE … SET: settings of this database only (e.g. jit=off).
        self.pg_settings = pg_settings or []
        self.name = name or f"hulian_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        if not self.name.startswith("hulian_bench_"):
            raise ValueError("bench databases are named hulian_bench_*")
        base = admin_url.rsplit("/", 1)[0]
        self.dsn = f"{base}/{self.name}"
        self.url = self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def create(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{self.name}"')
            for key, value in self.pg_settings:
                # A name, or an extension's (`auto_explain.log_min_duration`).
                if not all(part.replace("_", "").isalnum() for part in key.split(".")):
                    raise ValueError(f"bad setting name {key!r}")
                literal = value.replace("'", "''")
                await conn.execute(f"ALTER DATABASE \"{self.name}\" SET {key} = '{literal}'")
        finally:
            await conn.close()

    async def drop(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()

    def _app(self, *args: str, log: Path | None = None) -> float:
        env = {**os.environ, "DATABASE_URL": self.url, "APP_ENV": "dev", "LOG_LEVEL": "WARNING"}
        start = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "app", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"python -m app {' '.join(args)} failed:\n{out.stderr[-3000:]}")
        return time.monotonic() - start

    async def history(self, calls: int) -> float:
        """`calls` resolved calls of the past (`_HISTORY`), then ANALYZE."""
        start = time.monotonic()
        conn = await asyncpg.connect(self.dsn)
        try:
            if calls > 0:
                await conn.execute(_HISTORY, calls)
                await conn.execute(_HISTORY_LAST_EVENTS)
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        return time.monotonic() - start

    def migrate(self) -> float:
        return self._app("migrate")

    def seed(self, teams: int, on_duty: float) -> float:
        return self._app(
            "seed",
            "--scale",
            "guangming",
            "--seed",
            "42",
            "--teams",
            str(teams),
            "--on-duty",
            str(on_duty),
        )


# A district's past, so that the bench's tables look like a deployed
# service's: `calls` resolved calls spread over the 60 days before the run,
# each at a team's base, taken by one of its members, with its accepted offer
# and three events, released and anonymised as retention would have left
# them; then ANALYZE. Without it every table of calls starts empty, and a
# statement prepared early keeps a plan made for empty tables (the live
# hub's read joined `call` by a sequential scan through a whole run:
# docs/benchmarks.md, "Plans and round trips per event").
_HISTORY = """
WITH teams AS (
    SELECT t.id, t.base, t.grid_id, b.parent_id AS community_id, c.parent_id AS street_id,
           (SELECT m.person_id FROM team_member m WHERE m.team_id = t.id
            ORDER BY m.person_id LIMIT 1) AS member,
           row_number() OVER (ORDER BY t.id) - 1 AS n
    FROM team t JOIN area g ON g.id = t.grid_id JOIN area b ON b.id = g.parent_id
    JOIN area c ON c.id = b.parent_id
),
people AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM person),
sizes AS (SELECT (SELECT count(*) FROM teams) AS teams, (SELECT count(*) FROM people) AS people),
past AS (
    SELECT gen_random_uuid() AS id, k,
           now() - interval '60 days' + (k * interval '60 days') / $1 AS at
    FROM generate_series(0, $1 - 1) AS k
),
calls AS (
    INSERT INTO call (id, resident_id, status, category, location, grid_id, community_id,
                      street_id, team_id, responder_id, escalation_level, rounds, created_at,
                      updated_at, closed_at, responder_released_at, anonymised_at)
    SELECT past.id, p.id, 'resolved', 'urgent', t.base, t.grid_id, t.community_id,
           t.street_id, t.id, t.member, 'grid', 1, past.at, past.at + interval '30 minutes',
           past.at + interval '30 minutes', past.at + interval '1 day',
           past.at + interval '31 days'
    FROM past CROSS JOIN sizes
    JOIN teams t ON t.n = past.k % sizes.teams
    JOIN people p ON p.n = (past.k * 7919) % sizes.people
    WHERE t.member IS NOT NULL
    RETURNING id, team_id, responder_id, created_at
),
offers AS (
    INSERT INTO offer (id, call_id, team_id, status, round, distance_m, accepted_by,
                       created_at, expires_at, closed_at)
    SELECT gen_random_uuid(), id, team_id, 'accepted', 1, 10, responder_id, created_at,
           created_at + interval '1 minute', created_at + interval '20 seconds'
    FROM calls
    RETURNING id, call_id, created_at
)
INSERT INTO event (call_id, offer_id, type, at, data)
SELECT o.call_id, step.offer_id, step.type, o.created_at + step.after, '{}'::jsonb
FROM offers o CROSS JOIN LATERAL (
    VALUES (o.id, 'offer.created', interval '0 seconds'),
           (CAST(NULL AS uuid), 'call.updated', interval '20 seconds'),
           (CAST(NULL AS uuid), 'call.updated', interval '30 minutes')
) AS step(offer_id, type, after)
"""
_HISTORY_LAST_EVENTS = """
UPDATE call SET last_event_id = e.last
FROM (SELECT call_id, max(id) AS last FROM event GROUP BY call_id) e
WHERE call.id = e.call_id AND call.last_event_id IS NULL
"""


def server_env(database_url: str, extra: Mapping[str, object] | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "APP_ENV": "dev",
        "LOG_LEVEL": "WARNING",
        "SECRET_KEY": BENCH_SECRET,
        "OTP_PER_IP_PER_HOUR": "100000000",
        "DOUBLE_TAP_SECONDS": "0",
        "DUTY_POSITION_MAX_AGE_SECONDS": "86400",
        "ACCESS_TOKEN_TTL_SECONDS": "86400",
        "RUN_PUSH_WORKER": "true",
        "PUSH_BACKEND": "log",
    }
    env.update({k.upper(): str(v) for k, v in (extra or {}).items()})
    if "BENCH_GC_THRESHOLD" in env or env.get("BENCH_GC_LOG") == "1":
        probe = str(Path(__file__).resolve().parent / "gc_probe")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (probe, env.get("PYTHONPATH")) if p)
    return env


class Server:
    """`python -m app serve` as a subprocess, with a psutil view of its tree."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        workers: int = 1,
        env: Mapping[str, object] | None = None,
        wrap: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        cmd = [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--workers", str(workers)]
        self.process = subprocess.Popen(
            [*(wrap or []), *cmd],
            cwd=PROJECT_ROOT,
            env=server_env(database_url, env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def wait_ready(self, within_s: float = 60.0) -> None:
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(base_url=self.url, timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited:\n{self.log()[-3000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"server not ready after {within_s} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._log.close()


def cpu_pressure_us() -> float | None:
    """Microseconds in which some runnable task of the machine waited for a
    CPU (Linux PSI, /proc/pressure/cpu), or None where there is no PSI."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return float(line.rsplit("total=", 1)[1])


async def db_backends(conn: asyncpg.Connection) -> list[psutil.Process]:
    """The backends serving `conn`'s database, but `conn`'s own (PostgreSQL
    runs on this machine, so psutil reads their CPU)."""
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid()"
    )
    found = []
    for row in rows:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(row["pid"]))
    return found


@dataclass
class Sampler:
    """CPU seconds and RSS of the server tree(s) (and of PostgreSQL) over a phase.

    PostgreSQL's CPU is given twice: every postgres process of the machine
    (the figure of the earlier runs; it includes other databases' work, and
    the machine is shared), and only the backends serving `dsn`'s database
    (found in pg_stat_activity at each sample: a backend that ends between two
    samples loses its last share, an undercount)."""

    server: Server | None
    interval: float = 0.5
    others: list[Server] = field(default_factory=list)
    dsn: str | None = None
    peak_rss: int = 0
    rss_samples: list[tuple[float, int]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _cpu0: dict[int, float] = field(default_factory=dict)
    _pg0: dict[int, float] = field(default_factory=dict)
    _db_first: dict[int, float] = field(default_factory=dict)
    _db_last: dict[int, float] = field(default_factory=dict)
    _bench0: float = 0.0
    _pressure0: float | None = None
    _t0: float = 0.0
    _epoch0: float = 0.0

    @staticmethod
    def cpu(procs: list[psutil.Process]) -> dict[int, float]:
        """CPU seconds by pid (a process that ends in the phase loses its
        share: an undercount, never a negative)."""
        out: dict[int, float] = {}
        for p in procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        return out

    @staticmethod
    def delta(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(max(0.0, v - before.get(pid, 0.0)) for pid, v in after.items())

    @staticmethod
    def _postgres() -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["name"]):
            if p.info["name"] in ("postgres", "postmaster"):
                found.append(p)
        return found

    @staticmethod
    def _own_cpu() -> float:
        t = psutil.Process().cpu_times()
        return float(t.user + t.system)

    def tree(self) -> list[psutil.Process]:
        servers = [*([self.server] if self.server else []), *self.others]
        return [p for s in servers for p in s.tree()]

    def rss(self) -> int:
        total = 0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    async def _db_backends(self, conn: Any) -> None:
        for proc in await db_backends(conn):
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                cpu = t.user + t.system
                if proc.pid not in self._db_first:
                    # Started in the phase: all its CPU is the phase's.
                    self._db_first[proc.pid] = 0.0 if proc.create_time() > self._epoch0 else cpu
                self._db_last[proc.pid] = cpu

    async def _loop(self) -> None:
        conn = await asyncpg.connect(self.dsn) if self.dsn else None
        try:
            while True:
                value = self.rss()
                self.peak_rss = max(self.peak_rss, value)
                self.rss_samples.append((time.monotonic() - self._t0, value))
                if conn is not None:
                    await self._db_backends(conn)
                await asyncio.sleep(self.interval)
        finally:
            if conn is not None:
                await conn.close()

    def start(self) -> None:
        self._t0, self._epoch0 = time.monotonic(), time.time()
        self._cpu0 = self.cpu(self.tree())
        self._pg0 = self.cpu(self._postgres())
        self._db_first, self._db_last = {}, {}
        self._bench0 = self._own_cpu()
        self._pressure0 = cpu_pressure_us()
        self.peak_rss = self.rss()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        cpu = self.delta(self._cpu0, self.cpu(self.tree()))
        pg = self.delta(self._pg0, self.cpu(self._postgres()))
        out = {
            "server_cpu_percent": round(100 * cpu / elapsed, 1),
            "postgres_cpu_percent": round(100 * pg / elapsed, 1),
            "server_peak_rss_mib": round(self.peak_rss / 2**20, 1),
            "bench_cpu_percent": round(100 * (self._own_cpu() - self._bench0) / elapsed, 1),
        }
        if self.dsn:
            db = self.delta(self._db_first, self._db_last)
            out["postgres_db_cpu_percent"] = round(100 * db / elapsed, 1)
        # How contended the (shared) machine was: the share of the phase in
        # which some task waited for a CPU, and the load average at its end.
        pressure = cpu_pressure_us()
        if pressure is not None and self._pressure0 is not None:
            out["machine_cpu_pressure_percent"] = round(
                (pressure - self._pressure0) / 1e4 / elapsed, 1
            )
        out["machine_load_1m"] = round(os.getloadavg()[0], 2)
        return out


@dataclass
class Actor:
    person_id: uuid.UUID
    token: str
    lat: float = 0.0
    lng: float = 0.0
    team_id: uuid.UUID | None = None
    base: tuple[float, float] = (0.0, 0.0)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def bench_settings(database_url: str) -> Any:
    from app.core.config import Settings

    return Settings.model_validate(
        {
            "database_url": database_url,
            "secret_key": BENCH_SECRET,
            "access_token_ttl_seconds": 86400,
            "db_pool_size": 4,
        }
    )


async def make_actors(
    database_url: str, volunteers: int, residents: int, *, seed: int = 42
) -> tuple[list[Actor], list[Actor]]:
    """`volunteers` seeded team members (one per team first, then more) with
    their team's base, and `residents` new persons; a session each."""
    from app.core.db import make_engine, make_sessionmaker
    from app.core.phones import demo_phone
    from app.identity.auth import start_session

    settings = bench_settings(database_url)
    engine = make_engine(settings)
    factory = make_sessionmaker(engine)
    rng = random.Random(seed)
    try:
        async with factory() as session:
            rows = (
                await session.execute(
                    text(
                        """
                        SELECT m.person_id, m.team_id,
                               ST_Y(t.base::geometry) AS lat, ST_X(t.base::geometry) AS lng,
                               row_number() OVER (PARTITION BY m.team_id
                                                  ORDER BY m.person_id) AS n
                        FROM team_member m JOIN team t ON t.id = m.team_id
                        """
                    )
                )
            ).all()
            rows = sorted(rows, key=lambda r: (r.n, rng.random()))[:volunteers]
            if len(rows) < volunteers:
                raise RuntimeError(f"only {len(rows)} team members for {volunteers} volunteers")
            start = (
                await session.execute(
                    text("SELECT count(*) FROM person WHERE phone >= :p"),
                    {"p": demo_phone(RESIDENT_PHONE_BASE)},
                )
            ).scalar_one()
            new_ids = [uuid.uuid4() for _ in range(residents)]
            if new_ids:
                await session.execute(
                    text("INSERT INTO person (id, phone, display_name) VALUES (:id, :phone, :n)"),
                    [
                        {
                            "id": pid,
                            "phone": demo_phone(RESIDENT_PHONE_BASE + start + i),
                            "n": f"bench resident {start + i}",
                        }
                        for i, pid in enumerate(new_ids)
                    ],
                )
            vols = []
            for r in rows:
                pair = await start_session(session, settings, r.person_id)
                vols.append(
                    Actor(r.person_id, pair.access_token, r.lat, r.lng, r.team_id, (r.lat, r.lng))
                )
            res = []
            for pid in new_ids:
                pair = await start_session(session, settings, pid)
                res.append(Actor(pid, pair.access_token))
            await session.commit()
        return vols, res
    finally:
        await engine.dispose()
