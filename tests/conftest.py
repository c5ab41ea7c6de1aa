from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from app.core.config import AppEnv, Settings
from app.core.db import unit_of_work
from app.main import create_app
from tests.dbutil import migrated_database, restore_statistics, run_app_command, table_sizes
from tests.live import Ledger
from tests.principals import bearer, make_person, token_for
from tests.spec_check import UndeclaredProblems

DEMO_SEED = ("seed", "--scale", "guangming", "--seed", "42")


@pytest.fixture(scope="session")
def database_url() -> str:
    """The test database: built by the migrations, seeded with the demo
    district (seed 42), shared by the session. Tests must not commit to it:
    use `connection`/`session`, whose transaction is rolled back."""
    url = migrated_database()
    run_app_command(url, *DEMO_SEED)
    return url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def ledger(engine: AsyncEngine) -> AsyncIterator[Ledger]:
    """What a test commits (people, teams, parked volunteers), undone after."""
    ledger = Ledger()
    try:
        yield ledger
    finally:
        await ledger.cleanup(engine)


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back after the test."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        sizes = await table_sizes(conn)
        try:
            yield conn
        finally:
            await transaction.rollback()
            # A test that ran ANALYZE leaves its rows counted (tests/dbutil.py).
            await restore_statistics(conn, sizes)


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    async with AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as session:
        yield session


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for a test: never a developer's `.env`; no sweeper and no push
    worker unless asked (they would act on committed rows of other tests)."""
    values: dict[str, Any] = {
        "run_sweeper": False,
        "run_push_worker": False,
        "run_sms_worker": False,
        "run_quota_reminders": False,
        **overrides,
        "database_url": database_url,
        "app_env": AppEnv.test,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


def join_test_transaction(application: FastAPI, session: AsyncSession) -> None:
    """Make the app's requests run in the test's transaction, each inside a
    savepoint that is undone on error, as the real unit of work would be.

    And keep no principals: that transaction is never committed, so the
    NOTIFY that makes a process forget a changed principal never comes
    (tests/identity/test_principal_cache.py tests the cache, committed)."""
    settings: Settings = application.state.settings
    application.state.settings = settings.model_copy(update={"principal_cache_seconds": 0})

    @asynccontextmanager
    async def test_session() -> AsyncIterator[AsyncSession]:
        async with unit_of_work(await session.begin_nested()):
            yield session

    application.state.unit_of_work = test_session


@pytest.fixture
async def app(settings: Settings, session: AsyncSession) -> AsyncIterator[FastAPI]:
    """The app, its requests joined to the test's rolled-back transaction."""
    application = create_app(settings)
    join_test_transaction(application, session)
    undeclared: list[str] = []
    application.add_middleware(UndeclaredProblems, found=undeclared)
    async with LifespanManager(application):
        yield application
    assert not undeclared, f"problems app/http/responses.py does not declare: {undeclared}"


@pytest.fixture
async def anon_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def resident_token(session: AsyncSession, settings: Settings) -> str:
    person_id = await make_person(session, "测试居民")
    return await token_for(session, settings, person_id)


@pytest.fixture
async def client(app: FastAPI, resident_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in as a plain resident."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(resident_token)
    ) as http:
        yield http
