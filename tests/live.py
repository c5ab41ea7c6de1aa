"""Helpers for tests whose rows are really committed: scenes that other
connections (an app on its own pool, a `python -m app serve` subprocess, a
sweeper) can see, their cleanup, and live servers.

The seeded district is shared by the whole test session and other tests
count its rows, so everything committed here is undone at the end: the
calls, people and teams a test made are deleted, and the seeded volunteers
it took off duty are put back on duty.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.areas import service as areas
from app.core.config import Settings
from app.main import create_app
from tests.dbutil import PROJECT_ROOT
from tests.principals import bearer, make_person, token_for
from tests.scene import Member, SceneTeam, make_team

# ---- committed scenes and their cleanup ---------------------------------------------------


@dataclass
class Ledger:
    """What a test committed, so that it can all be undone."""

    persons: list[uuid.UUID] = field(default_factory=list)
    teams: list[uuid.UUID] = field(default_factory=list)
    parked: list[uuid.UUID] = field(default_factory=list)

    def team(self, team: SceneTeam) -> SceneTeam:
        self.teams.append(team.id)
        self.persons.extend(m.person_id for m in team.members)
        self.persons.extend(team.reserves)
        return team

    def member(self, member: Member) -> Member:
        self.persons.append(member.person_id)
        return member

    async def park_duty_near(
        self, session: AsyncSession, lat: float, lng: float, meters: float
    ) -> None:
        """Take the seeded volunteers near a spot off duty (their positions
        kept), so that the test's own teams decide the dispatch."""
        ids = (
            await session.execute(
                text(
                    """
                    UPDATE duty SET on_duty = false
                    WHERE on_duty = true AND NOT (person_id = ANY(CAST(:mine AS uuid[])))
                      AND ST_DWithin(location,
                                     ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                                     :m, false)
                    RETURNING person_id
                    """
                ),
                {"lat": lat, "lng": lng, "m": meters, "mine": self.persons},
            )
        ).scalars()
        self.parked.extend(ids)

    async def cleanup(self, engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            await delete_committed(conn, self.persons, self.teams)
            await conn.execute(
                text("UPDATE duty SET on_duty = true WHERE person_id = ANY(CAST(:p AS uuid[]))"),
                {"p": [p for p in self.parked if p not in self.persons]},
            )
        self.persons.clear()
        self.teams.clear()
        self.parked.clear()


async def delete_committed(
    conn: AsyncConnection, persons: list[uuid.UUID], teams: list[uuid.UUID]
) -> None:
    """Delete the calls that involve these people or teams (their offers,
    events and ratings go with them), then the people, then the teams."""
    params = {"p": persons, "t": teams}
    calls = list(
        (
            await conn.execute(
                text(
                    """
                    SELECT id FROM call
                    WHERE resident_id = ANY(CAST(:p AS uuid[]))
                       OR responder_id = ANY(CAST(:p AS uuid[]))
                       OR team_id = ANY(CAST(:t AS uuid[]))
                       OR id IN (SELECT call_id FROM offer
                                 WHERE team_id = ANY(CAST(:t AS uuid[]))
                                    OR assigned_by = ANY(CAST(:p AS uuid[]))
                                    OR accepted_by = ANY(CAST(:p AS uuid[])))
                    """
                ),
                params,
            )
        ).scalars()
    )
    await conn.execute(
        text(
            "DELETE FROM activity WHERE call_id = ANY(CAST(:c AS uuid[])) "
            "OR team_id = ANY(CAST(:t AS uuid[]))"
        ),
        {"c": calls, "t": teams},
    )
    await conn.execute(text("DELETE FROM call WHERE id = ANY(CAST(:c AS uuid[]))"), {"c": calls})
    await conn.execute(text("DELETE FROM person WHERE id = ANY(CAST(:p AS uuid[]))"), params)
    await conn.execute(text("DELETE FROM team WHERE id = ANY(CAST(:t AS uuid[]))"), params)


async def spots(engine: AsyncEngine, n: int, apart_m: float) -> list[tuple[float, float]]:
    """n points of the district, each well inside it (700 m from its edge)
    and at least `apart_m` from the others; always the same ones."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    """
                    SELECT ST_Y(p) AS lat, ST_X(p) AS lng
                    FROM (SELECT ST_PointOnSurface(boundary) AS p, code FROM area
                          WHERE level = 'grid') g,
                         area s
                    WHERE s.level = 'street'
                      AND NOT ST_DWithin(p::geography, ST_Boundary(s.boundary)::geography, 700)
                    ORDER BY g.code
                    """
                )
            )
        ).all()
        chosen: list[tuple[float, float]] = []
        for row in rows:
            if len(chosen) == n:
                break
            near = (
                await conn.execute(
                    text(
                        """
                        SELECT coalesce(min(ST_Distance(
                            ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                            ST_SetSRID(ST_MakePoint(x.lng, x.lat), 4326)::geography, false)),
                            'Infinity')
                        FROM unnest(CAST(:lats AS float8[]), CAST(:lngs AS float8[]))
                             AS x(lat, lng)
                        """
                    ),
                    {
                        "lat": row.lat,
                        "lng": row.lng,
                        "lats": [c[0] for c in chosen],
                        "lngs": [c[1] for c in chosen],
                    },
                )
            ).scalar_one()
            if near >= apart_m:
                chosen.append((row.lat, row.lng))
    if len(chosen) < n:
        raise RuntimeError(f"only {len(chosen)} spots {apart_m} m apart in the district")
    return chosen


async def committed_team(
    engine: AsyncEngine,
    settings: Settings,
    ledger: Ledger,
    lat: float,
    lng: float,
    **options: Any,
) -> SceneTeam:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        team = ledger.team(await make_team(session, settings, lat, lng, **options))
        await session.commit()
    return team


async def committed_person(
    engine: AsyncEngine,
    settings: Settings,
    ledger: Ledger,
    name: str = "呼叫居民",
    *,
    dispatcher_of: uuid.UUID | None = None,
) -> Member:
    """A person (a resident, or a dispatcher of an area) with a token."""
    async with AsyncSession(engine, expire_on_commit=False) as session:
        person_id = await make_person(session, name)
        ledger.persons.append(person_id)
        if dispatcher_of is not None:
            await session.execute(
                text("INSERT INTO dispatcher (person_id, area_id) VALUES (:p, :a)"),
                {"p": person_id, "a": dispatcher_of},
            )
        token = await token_for(session, settings, person_id)
        await session.commit()
    return Member(person_id, bearer(token))


async def phone_of(engine: AsyncEngine, person_id: object) -> str:
    async with engine.connect() as conn:
        phone: str = (
            await conn.execute(text("SELECT phone FROM person WHERE id = :p"), {"p": person_id})
        ).scalar_one()
    return phone


async def person_with(engine: AsyncEngine, phone: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(text("SELECT id FROM person WHERE phone = :p"), {"p": phone})
        ).scalar_one_or_none()


async def community_of(engine: AsyncEngine, lat: float, lng: float) -> uuid.UUID:
    """The community a point lies in, as the service locates it."""
    async with AsyncSession(engine) as session:
        community: uuid.UUID = (await areas.locate_ids(session, lat, lng)).community
    return community


async def column(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    """The one value a query of committed rows answers."""
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def park(engine: AsyncEngine, ledger: Ledger, lat: float, lng: float, meters: float) -> None:
    async with AsyncSession(engine) as session:
        await ledger.park_duty_near(session, lat, lng, meters)
        await session.commit()


# ---- an app on its own pool ----------------------------------------------------------------


@asynccontextmanager
async def live_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app as deployed, in this process: its own pool, every request
    commits its own transaction; its sweeper runs if the settings say so."""
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://live") as http:
            yield app, http


# ---- `python -m app serve` subprocesses --------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """One `python -m app serve` process on a free port."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        env: Mapping[str, object] | None = None,
        *,
        workers: int = 1,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        environment = {
            **os.environ,
            "DATABASE_URL": database_url,
            "APP_ENV": "test",
            "LOG_LEVEL": "WARNING",
            # On and after the reminder day it would remind every seeded
            # member short of the quota, committed in the shared database.
            "RUN_QUOTA_REMINDERS": "false",
            **{key.upper(): str(value) for key, value in (env or {}).items()},
        }
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.ready_at: float | None = None

    async def wait_ready(self, within_s: float = 30.0) -> float:
        """Wait for /healthz; the monotonic time it first answered."""
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(base_url=self.url, timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"server exited ({self.process.returncode}):\n{self.log()[-4000:]}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        self.ready_at = time.monotonic()
                        return self.ready_at
                await asyncio.sleep(0.05)
        raise RuntimeError(f"server not ready after {within_s} s:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash or an OOM kill."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def log(self) -> str:
        """Everything the process wrote (JSON lines); after `stop()` too."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within_s: float, interval: float = 0.05
) -> float:
    """Poll until `check()` holds; the seconds it took. Fails after `within_s`."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > within_s:
            raise AssertionError(f"not so after {within_s} s")
        await asyncio.sleep(interval)
