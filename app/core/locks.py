"""Advisory locks: the one module that takes them.

PostgreSQL keeps two advisory key spaces, one keyed by a single bigint and one
by two int4s, and "these two key spaces do not overlap" (PostgreSQL docs,
"Advisory Lock Functions"). They are shared by everything on the database,
so each belongs to one owner here:

- **The single-bigint space belongs to event ids, and to nothing else.** The
  transaction that writes an event holds a shared lock on its id until it
  ends (`NEXT_EVENT_ID`); the live hub tells a hole in the ids still being
  written from one left by a rollback by trying that lock (`HELD_EVENT_IDS`,
  app/events/hub.py). Any other lock hashed into this space could land on an
  event id: it would hold up that event's delivery, and wait on (or, as a
  try-lock, fail because of) whoever writes it.
- **Every other lock is `(namespace, hashtext(key))`** in the two-int space,
  the namespace one of `Lock`. Kinds of lock never share a key, and none
  meets an event id. The key is hashed to 32 bits: two keys of one namespace
  may collide, which only makes two unrelated requests queue (or a try-lock
  report busy) for as long as the first one's transaction lasts.

Every lock here is transaction-scoped: it goes with the commit or rollback,
a crash frees it, and nothing has to remember to release it.
"""

from __future__ import annotations

from enum import IntEnum, unique
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core import sql


@unique
class Lock(IntEnum):
    """Namespaces of the two-int key space. Values are stored nowhere but
    must never be reused for another kind of lock while an old process may
    still run."""

    # A request with an Idempotency-Key (key: `<person>:<idempotency key>`).
    idempotency_key = 1
    # One resident's calls are opened one at a time (key: the person).
    resident_calls = 2
    # One accept per volunteer at a time (key: the person).
    accept = 3
    # A rate-limit bucket (key: the bucket's name).
    rate_limit = 4
    # Seeders of one database (key: `demo`).
    seed = 5
    # A phone's one-time codes: made, tried and closed one request at a time
    # (key: the phone).
    otp_codes = 6
    # A pass of the monthly quota reminders (key: the month): one process
    # at a time does it, the others skip (app/activities/reminders.py).
    quota_reminders = 7


# `xact_lock` as an expression, for a statement that takes the lock with
# other work (binds `:ns` and `:key`: `lock_values`).
XACT_LOCK_SQL = "pg_advisory_xact_lock(CAST(:ns AS integer), hashtext(:key))"
_XACT_LOCK = text(f"SELECT {XACT_LOCK_SQL}")
_TRY_XACT_LOCK = text(
    "SELECT pg_try_advisory_xact_lock(CAST(:ns AS integer), hashtext(:key)) AS acquired"
)
# The same for a raw asyncpg connection (the seeder).
_XACT_LOCK_ASYNCPG = "SELECT pg_advisory_xact_lock($1::integer, hashtext($2))"


async def xact_lock(db: AsyncSession | AsyncConnection, namespace: Lock, key: str) -> None:
    """Wait for the lock on `key` in `namespace`; held until the transaction ends."""
    await sql.execute(db, _XACT_LOCK, lock_values(namespace, key))


def lock_values(namespace: Lock, key: str) -> dict[str, Any]:
    """The values `XACT_LOCK_SQL` binds."""
    return {"ns": int(namespace), "key": key}


async def try_xact_lock(db: AsyncSession | AsyncConnection, namespace: Lock, key: str) -> bool:
    """Take the lock on `key` in `namespace` if nobody holds it (held until the
    transaction ends); False at once if somebody does."""
    row = await sql.one(db, _TRY_XACT_LOCK, lock_values(namespace, key))
    return bool(row.acquired)


async def xact_lock_asyncpg(conn: Any, namespace: Lock, key: str) -> None:
    """`xact_lock` on an asyncpg connection (untyped: asyncpg ships no stubs)."""
    await conn.execute(_XACT_LOCK_ASYNCPG, int(namespace), key)


# ---- the single-bigint space: event ids ------------------------------------------------

# The next event id, and a shared lock on it held until the transaction ends
# (shared: many writers hold their own ids; only the hub's probe conflicts).
NEXT_EVENT_ID = text(
    """
    SELECT id FROM (SELECT nextval(pg_get_serial_sequence('event', 'id')) AS id) AS n,
                   LATERAL pg_advisory_xact_lock_shared(n.id) AS locked
    """
)

# For asyncpg, ids $1..$2 of a hole: the first whose writer still runs (holds
# its lock), or NULL. The hub's connection runs no transaction, so the probe
# takes session locks and releases those it got within the same statement.
HELD_EVENT_IDS = """
    WITH tried AS MATERIALIZED (
        SELECT x, pg_try_advisory_lock(x) AS got FROM generate_series($1::bigint, $2::bigint) x
    ),
    released AS MATERIALIZED (SELECT pg_advisory_unlock(x) FROM tried WHERE got)
    SELECT (SELECT min(x) FROM tried WHERE NOT got) + 0 * (SELECT count(*) FROM released)
"""
