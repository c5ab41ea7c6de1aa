"""The async engine and the one place that commits.

Services `flush()`; `session_scope()` (used by the session dependency and by
the command line) commits when the unit of work ends without an error, by
the rule of `unit_of_work()`, which the tests' per-request savepoint uses too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings
from app.core.errors import AppError, DatabaseUnavailable, Overloaded, ServiceUnavailable


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """postgresql+asyncpg://… (SQLAlchemy) → postgresql://… (asyncpg's own
    connections: the live hub, the principal listener, the seeder)."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def make_engine(settings: Settings, **overrides: object) -> AsyncEngine:
    options: dict[str, object] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout_seconds,
        # No pre-ping: it cost every request two round trips (BEGIN and
        # ROLLBACK on checkout) to catch a connection PostgreSQL closed since,
        # which is rare (a restart, a terminated backend). Such a connection
        # now fails its request with 503 `database_unavailable` (Retry-After;
        # `unavailable` below) and is replaced; the next request is served.
        "pool_pre_ping": False,
        # An error's text would otherwise carry the statement's parameters
        # (phones, positions, notes) into whatever prints it.
        "hide_parameters": True,
        # JIT off: the dispatch query's cost estimate makes PostgreSQL compile
        # it on each new connection, 230-415 ms a time (docs/benchmarks.md),
        # for queries that run in about a millisecond.
        "connect_args": {
            "server_settings": {"application_name": "hulian", "jit": "off"},
            "timeout": 5,
        },
    }
    options.update(overrides)
    return create_async_engine(settings.database_url_str, **options)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class Transaction(Protocol):
    """What a unit of work ends: a session, or a savepoint of one."""

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


@asynccontextmanager
async def unit_of_work(transaction: Transaction) -> AsyncIterator[None]:
    """The rule, written once: commit on success, roll back on any error
    except a domain error that says its writes must stand (`keep_changes`)."""
    try:
        yield
    except AppError as exc:
        if exc.keep_changes:
            await transaction.commit()
        else:
            await transaction.rollback()
        raise
    except BaseException:
        await transaction.rollback()
        raise
    await transaction.commit()


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work on a new session (see `unit_of_work`)."""
    async with factory() as session, unit_of_work(session):
        yield session


# SQLSTATEs that mean "not now" rather than "wrong": PostgreSQL has no
# connection left (53300), is starting or stopping (57P01-57P03), or the
# connection failed (class 08).
_BUSY_STATES = frozenset({"53300"})
_DOWN_STATES = frozenset({"57P01", "57P02", "57P03"})


def unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """What a database failure means to a client, or None when `exc` is not
    one: the pool had no connection to lend within DB_POOL_TIMEOUT_SECONDS
    (or PostgreSQL has none left): 503 `overloaded`; PostgreSQL cannot be
    reached or went away: 503 `database_unavailable`. Never a 500."""
    if isinstance(exc, sa_exc.TimeoutError):
        return Overloaded("Every database connection is busy; try again in a moment.")
    if isinstance(exc, sa_exc.DBAPIError):
        state = getattr(exc.orig, "sqlstate", None) or ""
        if state in _BUSY_STATES:
            return Overloaded("The database has no connection to spare; try again in a moment.")
        if exc.connection_invalidated or state in _DOWN_STATES or state.startswith("08"):
            return DatabaseUnavailable("The database cannot be reached; try again shortly.")
        return None
    if isinstance(exc, ConnectionError):
        # asyncpg's connect raises OSError subclasses as they are.
        return DatabaseUnavailable("The database cannot be reached; try again shortly.")
    return None
