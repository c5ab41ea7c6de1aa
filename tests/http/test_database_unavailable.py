"""A database that is busy or away answers 503 with Retry-After, never 500:
the pool's connections all lent (`overloaded`), PostgreSQL out of
connections (`overloaded`), PostgreSQL unreachable (`database_unavailable`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from tests.conftest import make_settings
from tests.live import Ledger, committed_person
from tests.problems import assert_problem

LOCATE = ("/api/v1/areas/locate", {"lat": 22.77, "lng": 113.93})


@asynccontextmanager
async def _serving(
    database_url: str, **overrides: object
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(make_settings(database_url, run_sweeper=False, **overrides))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield app, http


async def test_a_request_that_finds_every_connection_busy_is_told_to_retry(
    database_url: str, engine: AsyncEngine, ledger: Ledger
) -> None:
    headers = (await committed_person(engine, make_settings(database_url), ledger)).headers
    async with _serving(
        database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=0.2
    ) as (app, http):
        path, params = LOCATE
        assert (await http.get(path, params=params, headers=headers)).status_code == 200
        app_engine: AsyncEngine = app.state.engine
        async with app_engine.connect() as held:  # the pool's only connection
            await held.execute(text("SELECT 1"))
            busy = await http.get(path, params=params, headers=headers)
            assert_problem(busy, 503, "overloaded")
            assert busy.headers["retry-after"] == "1"
        # Given back: served again.
        assert (await http.get(path, params=params, headers=headers)).status_code == 200


async def test_postgresql_out_of_connections_is_overloaded(
    database_url: str, engine: AsyncEngine
) -> None:
    role = f"hulian_full_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        # A role allowed no connection: PostgreSQL refuses it as it refuses
        # anyone once max_connections is reached (SQLSTATE 53300).
        await conn.execute(text(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"))
    try:
        url = make_url(database_url).set(username=role)
        async with _serving(url.render_as_string(hide_password=False)) as (_, http):
            refused = await http.post("/api/v1/auth/otp", json={"phone": "13800138000"})
            assert_problem(refused, 503, "overloaded")
            assert refused.headers["retry-after"] == "1"
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP ROLE {role}"))


async def test_an_unreachable_database_is_unavailable_not_an_internal_error() -> None:
    # Nothing listens on port 1.
    async with _serving("postgresql+asyncpg://postgres@127.0.0.1:1/hulian_test") as (_, http):
        down = await http.post("/api/v1/auth/otp", json={"phone": "13800138000"})
        assert_problem(down, 503, "database_unavailable")
        assert down.headers["retry-after"] == "5"


async def test_a_connection_postgresql_closed_fails_one_request_and_is_replaced(
    database_url: str, engine: AsyncEngine, ledger: Ledger
) -> None:
    headers = (await committed_person(engine, make_settings(database_url), ledger)).headers
    async with _serving(database_url, db_pool_size=1, db_max_overflow=0) as (_, http):
        path, params = LOCATE
        assert (await http.get(path, params=params, headers=headers)).status_code == 200
        async with engine.begin() as conn:  # as a restart would
            ended = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'hulian'"
                )
            )
            assert ended.all(), "the app's pooled connection was not found"
        first = await http.get(path, params=params, headers=headers)
        if first.status_code != 200:
            assert_problem(first, 503, "database_unavailable")
        assert (await http.get(path, params=params, headers=headers)).status_code == 200
