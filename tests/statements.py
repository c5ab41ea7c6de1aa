"""The statements the app sends to PostgreSQL, each one a round trip: for
tests that bound them (a press's budget, no principal query in the steady
state, no query per open offer).

A statement goes either through the session (SQLAlchemy's cursor: its
`before_cursor_execute` event) or below it (`app.core.sql`, straight on the
driver's connection: asyncpg's query logger). A statement the session
prepares the driver logs too: it is counted once. What asyncpg or a
transaction sends on its own (BEGIN, COMMIT, savepoints, the type and JIT
lookups of a connection's first statements) is not the app's and is left
out.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_NOT_THE_APPS = re.compile(
    r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT|"
    r"WITH RECURSIVE typeinfo_tree|SELECT\s+current_setting\('jit'\)|"
    r"SELECT\s+set_config\('jit')",
    re.IGNORECASE,
)


def _one_line(statement: str) -> str:
    return " ".join(statement.split())


class Statements:
    """What was sent since the last `taken()`, in order."""

    def __init__(self) -> None:
        self._session: list[str] = []
        self._sent: list[tuple[str, str]] = []  # (how, statement), in order
        self._drivers: list[Any] = []
        self._listening: list[tuple[Any, str, Any]] = []

    def _through_session(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not _NOT_THE_APPS.match(statement):
            self._session.append(statement)
            self._sent.append(("session", statement))

    def _logged(self, query: Any) -> None:
        if not _NOT_THE_APPS.match(query.query):
            self._sent.append(("driver", query.query))

    def _watch(self, driver: Any) -> None:
        if all(driver is not known for known in self._drivers):
            self._drivers.append(driver)
            driver.add_query_logger(self._logged)

    def _listen(self, target: Any, name: str, fn: Any) -> None:
        event.listen(target, name, fn)
        self._listening.append((target, name, fn))

    async def taken(self) -> list[str]:
        """The statements sent since the last call, each once, on one line."""
        await asyncio.sleep(0)  # asyncpg calls its query loggers soon, not at once
        prepared = set(self._session)
        out = [
            _one_line(statement)
            for how, statement in self._sent
            if how == "session" or statement not in prepared
        ]
        self._session.clear()
        self._sent.clear()
        return out

    def stop(self) -> None:
        for target, name, fn in self._listening:
            event.remove(target, name, fn)
        self._listening.clear()
        for driver in self._drivers:
            driver.remove_query_logger(self._logged)
        self._drivers.clear()


def on_engine(engine: AsyncEngine) -> Statements:
    """Every connection the engine's pool hands out from now on."""
    seen = Statements()

    def checkout(dbapi_connection: Any, *args: Any) -> None:
        seen._watch(dbapi_connection.driver_connection)

    seen._listen(engine.sync_engine, "before_cursor_execute", seen._through_session)
    seen._listen(engine.sync_engine, "checkout", checkout)
    return seen


async def on_connection(connection: AsyncConnection) -> Statements:
    """One connection (the tests' own, which their requests share)."""
    seen = Statements()
    seen._listen(connection.sync_connection, "before_cursor_execute", seen._through_session)
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    seen._watch(driver)
    return seen


@asynccontextmanager
async def watching(connection: AsyncConnection) -> AsyncIterator[Statements]:
    """`on_connection` for the block, stopped after it (read it with
    `taken()` inside the block)."""
    seen = await on_connection(connection)
    try:
        yield seen
    finally:
        seen.stop()
