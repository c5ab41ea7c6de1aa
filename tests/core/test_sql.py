"""Statements below the ORM (app/core/sql.py) are part of the session's
unit of work: its transaction, its commit and rollback, its errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.core import sql
from app.core.db import make_sessionmaker

_TX = text("SELECT txid_current() AS tx")
_PID = text("SELECT pg_backend_pid() AS pid")
_INSERT = text("INSERT INTO area_probe_for_sql_tests (id) VALUES (:id)")
_SEEN = text("SELECT count(*) AS n FROM area_probe_for_sql_tests WHERE id = :id")


@pytest.fixture
async def probe(engine: AsyncEngine) -> AsyncIterator[None]:
    """A table of this test's own, committed to, dropped after."""
    async with engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE IF NOT EXISTS area_probe_for_sql_tests (id uuid PRIMARY KEY)")
        )
    yield None
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE area_probe_for_sql_tests"))


async def _seen(engine: AsyncEngine, row: uuid.UUID) -> int:
    async with engine.connect() as other:
        return int((await other.execute(_SEEN, {"id": row})).scalar_one())


async def test_statements_run_in_the_session_s_transaction_and_end_with_it(
    engine: AsyncEngine, probe: None
) -> None:
    factory = make_sessionmaker(engine)
    kept, dropped = uuid.uuid4(), uuid.uuid4()
    async with factory() as session:
        first = (await sql.one(session, _TX, {})).tx
        await sql.execute(session, _INSERT, {"id": dropped})
        assert (await sql.one(session, _TX, {})).tx == first  # one transaction
        assert await _seen(engine, dropped) == 0  # not committed yet
        await session.rollback()
        assert await _seen(engine, dropped) == 0  # the session's rollback ended it

        # A new transaction after the end of the last (not the kept one's).
        second = (await sql.one(session, _TX, {})).tx
        assert second != first
        await sql.execute(session, _INSERT, {"id": kept})
        # SQLAlchemy's statements and ours share it.
        assert (await session.execute(_TX)).scalar_one() == second
        await session.commit()
        assert await _seen(engine, kept) == 1
        third = (await sql.one(session, _TX, {})).tx
        assert third not in (first, second)
        await session.rollback()


async def test_a_driver_error_is_sqlalchemy_s_error(engine: AsyncEngine, probe: None) -> None:
    factory = make_sessionmaker(engine)
    row = uuid.uuid4()
    async with factory() as session:
        await sql.execute(session, _INSERT, {"id": row})
        with pytest.raises(sa_exc.IntegrityError):
            await sql.execute(session, _INSERT, {"id": row})
        await session.rollback()
        assert await _seen(engine, row) == 0


async def test_rows_read_by_attribute(session: AsyncSession) -> None:
    row = await sql.one(session, text("SELECT 1 AS one, CAST(:x AS text) AS x"), {"x": "二"})
    assert (row.one, row.x) == (1, "二")
    with pytest.raises(AttributeError):
        _ = row.missing


async def test_a_statement_in_a_savepoint_is_undone_with_it(
    engine: AsyncEngine, probe: None
) -> None:
    # SQLAlchemy emits a savepoint's SAVEPOINT only when the session next
    # asks for its connection: a statement on the connection kept from
    # before the savepoint must not run outside it.
    factory = make_sessionmaker(engine)
    before, inside, after = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with factory() as session:
        await sql.execute(session, _INSERT, {"id": before})  # the connection is kept
        savepoint = await session.begin_nested()
        await sql.execute(session, _INSERT, {"id": inside})
        await savepoint.rollback()
        await sql.execute(session, _INSERT, {"id": after})  # after it: in the transaction
        await session.commit()
    assert await _seen(engine, before) == 1
    assert await _seen(engine, inside) == 0, "undone with its savepoint"
    assert await _seen(engine, after) == 1


async def test_a_begin_on_a_lost_connection_is_sqlalchemy_s_error(database_url: str) -> None:
    # The first statement of a transaction sends BEGIN itself (`_begun`): a
    # pooled connection PostgreSQL closed while idle fails there, and must
    # fail as SQLAlchemy's cursor would (a DBAPIError, the connection
    # invalidated, so the pool drops it and the request is answered 503,
    # not 500), and the next transaction gets a new connection.
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with make_sessionmaker(engine)() as session:
            backend = (await sql.one(session, _PID, {})).pid
            await session.commit()  # back to the pool, idle
            await _terminate(database_url, backend)
            with pytest.raises(sa_exc.DBAPIError) as raised:
                await sql.one(session, _TX, {})
            assert raised.value.connection_invalidated
            assert "BEGIN" in str(raised.value)
            await session.rollback()
            assert (await sql.one(session, _PID, {})).pid != backend
    finally:
        await engine.dispose()


async def _terminate(database_url: str, backend: int) -> None:
    """End that backend from another connection, and wait until it is gone."""
    gone = text("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :pid)")
    # Autocommit: a transaction reads pg_stat_activity once and keeps what it
    # read, so a check in the same transaction would never see the exit.
    watcher = create_async_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with watcher.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            for _ in range(100):
                if (await conn.execute(gone, {"pid": backend})).scalar_one():
                    return
                await asyncio.sleep(0.02)
    finally:
        await watcher.dispose()
    raise AssertionError("the backend did not exit")


# ---- writes sent inside another statement ------------------------------------------------

_MARK = """
    {p}marked AS (
        INSERT INTO area_probe_for_sql_tests (id)
        SELECT CAST(:id AS uuid) WHERE {when} AND CAST('12:30' AS time) = TIME '12:30'
    )
"""


def _mark(row: uuid.UUID, when: str = "true") -> sql.Write:
    return sql.Write(_MARK, (("when", when),), {"id": row})


def test_writes_are_named_apart_and_composed_once() -> None:
    base = text("WITH kept AS (SELECT :id::text AS id) SELECT id FROM kept")
    writes = [_mark(uuid.uuid4()), _mark(uuid.uuid4(), "1 = :one")]
    writes[1].values["one"] = 1
    statement, values = sql.with_writes(base, writes)
    assert statement.text.startswith("WITH w0_marked AS")
    assert "w1_marked AS" in statement.text
    assert ":w1_one" in statement.text, "a fill's values are renamed too"
    assert ":id::text" in statement.text, "the statement's own values are its own"
    assert "'12:30'" in statement.text, "a colon in a literal is not a value"
    assert set(values) == {"w0_id", "w1_id", "w1_one"}
    assert (
        sql.with_writes(base, [_mark(uuid.uuid4()), _mark(uuid.uuid4(), "1 = :one")])[0]
        is statement
    ), "one statement per shape: compiled once"
    assert sql.with_writes(base, []) == (base, {})


async def test_writes_run_with_the_statement_whether_or_not_it_reads_them(
    engine: AsyncEngine, probe: None
) -> None:
    first, second, skipped = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with make_sessionmaker(engine)() as session:
        statement, values = sql.with_writes(
            text("SELECT CAST(:n AS int) + 1 AS answer"),
            [_mark(first), _mark(second), _mark(skipped, "false")],
        )
        row = await sql.one(session, statement, {"n": 41, **values})
        assert row.answer == 42
        assert await _seen(engine, first) == 0, "not before the commit"
        await sql.execute_writes(session, [_mark(uuid.uuid4(), "false")])
        await session.commit()
    assert [await _seen(engine, r) for r in (first, second, skipped)] == [1, 1, 0]
