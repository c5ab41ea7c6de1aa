"""Statements below the ORM: the hot paths' SQL (a press, an accept, a
progress step) straight on the unit of work's own asyncpg connection.

A `text()` statement is compiled once for asyncpg (`$n` placeholders, its
parameter names in order) and run as a prepared statement from asyncpg's
statement cache, inside the session's transaction: the same connection, the
same BEGIN, committed or rolled back by `app.core.db.unit_of_work` with
everything else the request wrote. Through `session.execute` a statement
cost about four times the CPU (SQLAlchemy's compiled cache, parameter
processing, result metadata, the greenlet switch; docs/benchmarks.md).

What stays the same as through the session: the SQL (the statements are
the modules' own `text()` constants, which `bench/floor.py` runs too); the
transaction (SQLAlchemy's driver adapter begins it here if no statement
has yet, exactly as its own cursor does, so its commit and rollback end
it); errors (a driver error becomes the `sqlalchemy.exc.DBAPIError` the
session would have raised, `IntegrityError` included, and a lost connection
is invalidated: `app.core.db.unavailable` answers 503 for it as before);
rows read by attribute (`row.grid_id`), as SQLAlchemy's are.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Compiled:
    """A statement as asyncpg takes it: SQL with `$n`, and the names of the
    values in that order."""

    sql: str
    names: tuple[str, ...]

    def args(self, values: dict[str, Any]) -> list[Any]:
        return [values[name] for name in self.names]


@functools.lru_cache(maxsize=1024)
def compiled(statement: TextClause) -> Compiled:
    """`statement` compiled for asyncpg, once. Statements are module
    constants (or built once, `functools.cache`): a `text()` made per call
    would be compiled per call (the cache is bounded, never a leak)."""
    done = statement.compile(dialect=_DIALECT)
    return Compiled(done.string, tuple(done.positiontup or ()))


class Row:
    """A row read by attribute, like SQLAlchemy's (`row.id`)."""

    __slots__ = ("_record",)

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None


# Where a session keeps the connection of its transaction for the next
# statement: asking SQLAlchemy for it costs two greenlet switches (about
# 24 µs, a tenth of a statement), and a press runs a dozen statements.
_KEPT = "hulian.sql.driver"


async def _driver(db: AsyncSession | AsyncConnection) -> tuple[AsyncConnection, Any]:
    """The unit of work's connection and its SQLAlchemy driver adapter, with
    the transaction begun."""
    if isinstance(db, AsyncConnection):
        return await _begun(db)
    # Kept for as long as the session's transaction and its innermost
    # savepoint are the same ones (a commit or rollback ends the one, a
    # `begin_nested` or its end changes the other), the connection still
    # valid and its driver's transaction still open. A new savepoint must
    # go through `db.connection()`: SQLAlchemy emits its SAVEPOINT only when
    # the session next asks for its connection, and a statement sent on a
    # kept connection before that would not be undone with the savepoint.
    root, nested = _where(db)
    kept = db.info.get(_KEPT)
    if (
        kept is not None
        and root is not None
        and kept[0] is root
        and kept[1] is nested
        and not kept[2].closed
        and not kept[2].invalidated
        and kept[3]._transaction is not None
    ):
        return kept[2], kept[3]
    connection, adapted = await _begun(await db.connection())
    db.info[_KEPT] = (*_where(db), connection, adapted)
    return connection, adapted


def _where(db: AsyncSession) -> tuple[Any, Any]:
    """The session's transaction and its innermost savepoint (or None)."""
    sync = db.sync_session
    return sync.get_transaction(), sync.get_nested_transaction()


async def _begun(connection: AsyncConnection) -> tuple[AsyncConnection, Any]:
    adapted: Any = (await connection.get_raw_connection()).dbapi_connection
    if adapted._transaction is None:
        # What the adapter's cursor does before its first statement: BEGIN,
        # tracked by the adapter, so the session's commit or rollback ends it.
        # Its errors as SQLAlchemy's cursor would raise them (a connection
        # PostgreSQL closed is invalidated, and answered 503, not 500).
        try:
            await adapted._start_transaction()
        except Exception as error:
            raise await _as_sqlalchemy(connection, adapted, "BEGIN", error) from error
    return connection, adapted


async def _run(
    db: AsyncSession | AsyncConnection, statement: TextClause, values: dict[str, Any], how: str
) -> Any:
    connection, adapted = await _driver(db)
    query = compiled(statement)
    try:
        return await getattr(adapted._connection, how)(query.sql, *query.args(values))
    except Exception as error:
        raise await _as_sqlalchemy(connection, adapted, query.sql, error) from error


async def _as_sqlalchemy(
    connection: AsyncConnection, adapted: Any, sql: str, error: Exception
) -> Exception:
    """The error SQLAlchemy would have raised for this driver error."""
    try:
        adapted._handle_exception(error)  # raises the adapter's DB-API error
    except adapted.dbapi.Error as dbapi_error:
        lost = connection.dialect.is_disconnect(dbapi_error, adapted, None)
        if lost:
            await connection.invalidate(dbapi_error)
        wrapped: Exception = sa_exc.DBAPIError.instance(
            sql,
            None,
            dbapi_error,
            adapted.dbapi.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=connection.dialect,
        )
        return wrapped
    except Exception as other:  # not a database error: as it was
        return other
    return error


async def fetchrow(
    db: AsyncSession | AsyncConnection, statement: TextClause, values: dict[str, Any]
) -> Row | None:
    """The first row, or None."""
    record = await _run(db, statement, values, "fetchrow")
    return Row(record) if record is not None else None


async def one(
    db: AsyncSession | AsyncConnection, statement: TextClause, values: dict[str, Any]
) -> Row:
    """The one row the statement returns (it always returns one)."""
    row = await fetchrow(db, statement, values)
    if row is None:
        raise sa_exc.NoResultFound("No row was found when one was required")
    return row


async def fetch(
    db: AsyncSession | AsyncConnection, statement: TextClause, values: dict[str, Any]
) -> list[Row]:
    return [Row(record) for record in await _run(db, statement, values, "fetch")]


async def execute(
    db: AsyncSession | AsyncConnection, statement: TextClause, values: dict[str, Any]
) -> None:
    """Run a statement whose rows (if any) nobody reads."""
    await _run(db, statement, values, "execute")


# ---- writes sent inside another statement ------------------------------------------------


@dataclass(frozen=True)
class Write:
    """Rows to write inside another statement (`with_writes`), as its first
    common table expressions: one round trip for both. PostgreSQL runs a
    data-modifying CTE once, to completion, whether or not the statement
    reads it; every part of the statement sees the database as it was when
    the statement began (so a Write must not read what the statement
    writes).

    `template`: the CTEs, comma-separated, each named `{p}name` (`p`, a
    prefix `with_writes` gives each Write, keeps names apart); `fills`:
    the template's other fields, fragments of SQL put in as they are;
    `values`: the bound values, by their names in the template and fills
    (prefixed too when sent)."""

    template: str
    fills: tuple[tuple[str, str], ...]
    values: dict[str, Any]


# A bound name as `text()` reads it (`:name`, not a `::` cast).
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
_NOTHING = text("SELECT 1")


def with_writes(
    statement: TextClause, writes: Sequence[Write]
) -> tuple[TextClause, dict[str, Any]]:
    """`statement` (a `text()` of plain SQL, with or without a plain WITH of
    its own) with `writes` sent in it, and the writes' values to add to its
    own."""
    if not writes:
        return statement, {}
    values: dict[str, Any] = {}
    for n, write in enumerate(writes):
        values.update({f"w{n}_{name}": value for name, value in write.values.items()})
    return _composed(statement, tuple((w.template, w.fills) for w in writes)), values


@functools.lru_cache(maxsize=256)
def _composed(
    statement: TextClause, shapes: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
) -> TextClause:
    """One statement per shape (so `compiled` compiles it once)."""
    parts = []
    for n, (template, fills) in enumerate(shapes):
        prefix = f"w{n}_"
        part = template.format(p=prefix, **dict(fills))
        parts.append(_BIND.sub(rf":{prefix}\1", part).strip())
    writes = ",\n".join(parts)
    base = statement.text.strip()
    if base[:4].upper() == "WITH" and base[4:5].isspace():
        return text(f"WITH {writes},\n{base[4:].lstrip()}")
    return text(f"WITH {writes}\n{base}")


async def execute_writes(db: AsyncSession | AsyncConnection, writes: Sequence[Write]) -> None:
    """Writes on their own: one statement."""
    if writes:
        await execute(db, *with_writes(_NOTHING, writes))
