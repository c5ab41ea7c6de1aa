"""Advisory locks (app/core/locks.py): every kind in its own namespace of the
two-int key space; the single-bigint space belongs to event ids alone. A lock
only means something between two sessions: these tests use real, separate
connections."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core import locks
from app.core.config import Settings
from app.core.db import asyncpg_dsn
from app.core.locks import Lock
from tests.scene import make_resident

ROOT = Path(__file__).resolve().parents[2]
KEY = "某人:press-1"


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection of its own, in a transaction rolled back at the end."""
    async with engine.connect() as conn:
        tx = await conn.begin()
        try:
            yield conn
        finally:
            await tx.rollback()


async def hashtext(conn: AsyncConnection, key: str) -> int:
    value: int = (await conn.execute(text("SELECT hashtext(:k)"), {"k": key})).scalar_one()
    return value


def same_bits(namespace: Lock, hashed: int) -> int:
    """The bigint whose lock PostgreSQL shows with the same classid and objid
    as the two-int lock (namespace, hashed): only objsubid tells them apart."""
    return (int(namespace) << 32) | (hashed & 0xFFFFFFFF)


def test_namespaces_are_distinct_int4() -> None:
    values = [int(member) for member in Lock.__members__.values()]  # aliases included
    assert len(values) == len(set(values))
    assert {Lock.idempotency_key, Lock.resident_calls, Lock.accept, Lock.rate_limit, Lock.seed}
    assert all(0 < v < 2**31 for v in values)


async def test_every_lock_is_taken_in_the_two_int_space(engine: AsyncEngine) -> None:
    async with transaction(engine) as conn:
        for namespace in Lock:
            await locks.xact_lock(conn, namespace, KEY)
        held = (
            await conn.execute(
                text(
                    """
                    SELECT classid::bigint, objid::bigint, objsubid FROM pg_locks
                    WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                    """
                )
            )
        ).all()
        hashed = await hashtext(conn, KEY)
    # objsubid 2: the (int4, int4) form; 1 would be the single bigint.
    assert sorted(tuple(row) for row in held) == sorted(
        (int(namespace), hashed & 0xFFFFFFFF, 2) for namespace in Lock
    )


async def test_a_lock_holds_its_key_in_its_namespace_only(engine: AsyncEngine) -> None:
    async with transaction(engine) as a, transaction(engine) as b:
        assert await locks.try_xact_lock(a, Lock.resident_calls, KEY)
        for other in Lock:
            if other is not Lock.resident_calls:
                assert await locks.try_xact_lock(b, other, KEY), other
        assert not await locks.try_xact_lock(b, Lock.resident_calls, KEY), "held by a"
        assert await locks.try_xact_lock(b, Lock.resident_calls, KEY + "x")
        # Re-entrant in its own transaction, as PostgreSQL's locks are.
        assert await locks.try_xact_lock(a, Lock.resident_calls, KEY)


async def test_a_lock_is_held_until_its_transaction_ends(engine: AsyncEngine) -> None:
    async with engine.connect() as a, engine.connect() as b, engine.connect() as c:
        held = await a.begin()
        await locks.xact_lock(a, Lock.accept, KEY)
        await b.begin()
        waiting = asyncio.create_task(locks.xact_lock(b, Lock.accept, KEY))
        await asyncio.sleep(0.3)
        assert not waiting.done(), "the wait form waits"
        await c.begin()
        assert not await locks.try_xact_lock(c, Lock.accept, KEY), "the try form does not"
        await held.commit()
        await asyncio.wait_for(waiting, 5)
        assert not await locks.try_xact_lock(c, Lock.accept, KEY), "now b holds it"
        await b.rollback()
        assert await locks.try_xact_lock(c, Lock.accept, KEY)
        await c.rollback()


async def test_the_seeders_asyncpg_form_is_the_same_lock(
    engine: AsyncEngine, database_url: str
) -> None:
    seeder = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with seeder.transaction(), transaction(engine) as other:
            await locks.xact_lock_asyncpg(seeder, Lock.seed, KEY)
            assert not await locks.try_xact_lock(other, Lock.seed, KEY)
            assert await locks.try_xact_lock(other, Lock.rate_limit, KEY)
        async with transaction(engine) as other:
            assert await locks.try_xact_lock(other, Lock.seed, KEY), "gone with its transaction"
    finally:
        await seeder.close()


async def test_no_lock_meets_an_event_id(engine: AsyncEngine, database_url: str) -> None:
    async with engine.connect() as writer, transaction(engine) as other:
        written = await writer.begin()
        hashed = await hashtext(writer, KEY)
        ids = sorted({hashed, *(same_bits(namespace, hashed) for namespace in Lock)})
        # Writers of events with those ids, as `events.next_event_id` leaves them.
        for event_id in ids:
            await writer.execute(text("SELECT pg_advisory_xact_lock_shared(:id)"), {"id": event_id})
        await other.execute(text("SET LOCAL lock_timeout = '2s'"))
        for namespace in Lock:
            assert await locks.try_xact_lock(other, namespace, KEY), namespace
            await locks.xact_lock(other, namespace, KEY + "!")
        await written.rollback()

        # And the other way: the live hub's probe sees no writer behind those
        # ids while every namespaced lock on the key is held.
        hub = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            for event_id in ids:
                assert await hub.fetchval(locks.HELD_EVENT_IDS, event_id, event_id) is None
            await other.execute(text("SELECT pg_advisory_xact_lock_shared(:id)"), {"id": ids[-1]})
            # (one id at a time: the probe walks every id of its range)
            assert await hub.fetchval(locks.HELD_EVENT_IDS, ids[-1], ids[-1]) == ids[-1]
        finally:
            await hub.close()


async def test_an_event_writer_never_holds_up_opening_a_call(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, engine: AsyncEngine
) -> None:
    """Before namespaces, the per-resident and Idempotency-Key locks hashed
    into the event ids' space: a transaction writing an event whose id
    matched the hash made the press wait, or answer 409 "in flight"."""
    resident = await make_resident(session, settings)
    person = str(resident.person_id)
    await session.execute(text("SET LOCAL lock_timeout = '2s'"))
    keys = [f"calls:{person}", f"idem:{person}:press-1", person, f"{person}:press-1"]
    async with engine.connect() as writer:
        for key in keys:
            hashed = await hashtext(writer, key)
            old = [
                (
                    await writer.execute(
                        text("SELECT hashtextextended(:k, :s)"), {"k": key, "s": s}
                    )
                ).scalar_one()
                for s in (0, 7)
            ]
            for event_id in {hashed, *old, *(same_bits(n, hashed) for n in Lock)}:
                await writer.execute(text("SELECT pg_advisory_lock_shared(:id)"), {"id": event_id})
        try:
            answer = await anon_client.post(
                "/api/v1/calls",
                json={"location": {"lat": 22.77, "lng": 113.93}, "category": "urgent"},
                headers={**resident.headers, "Idempotency-Key": "press-1"},
            )
        finally:
            await writer.execute(text("SELECT pg_advisory_unlock_all()"))
    assert answer.status_code == 201, answer.text


def test_only_the_locks_module_takes_advisory_locks() -> None:
    """A new inline advisory lock fails here: it belongs in app/core/locks.py,
    in a namespace of its own."""
    inline = re.compile(r"pg_(try_)?advisory", re.IGNORECASE)
    allowed = {ROOT / "app" / "core" / "locks.py"}
    scanned = [
        path
        for folder in ("app", "migrations", "bench", "scripts")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in {".py", ".sql", ".sh", ".mako"}
    ]
    assert ROOT / "app" / "core" / "locks.py" in scanned
    offenders = [
        str(path.relative_to(ROOT))
        for path in scanned
        if path not in allowed and inline.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    assert all(inline.search(path.read_text(encoding="utf-8")) for path in allowed)
