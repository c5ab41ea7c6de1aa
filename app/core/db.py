"""The async engine and the one place that commits.

Services `flush()`; `session_scope()` (used by the session dependency and by
the command line) commits when the unit of work ends without an error, by
the rule of `unit_of_work()`, which the tests' per-request savepoint uses too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings
from app.core.errors import AppError


def make_engine(settings: Settings, **overrides: object) -> AsyncEngine:
    options: dict[str, object] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_pre_ping": True,
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
