"""The event log: every change of a call or offer writes one row, in the
same transaction as the change, and what its subscribers write for it (the
alerts) in the same statement. A statement-level trigger on `event`
(migration 5d7e9b1f3a20) sends an empty NOTIFY on `CHANNEL`, which
PostgreSQL folds into one per transaction and delivers only on commit:
nothing is announced before the transaction commits, and the live hub,
woken, reads the log itself."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import jsontext, locks, sql
from app.core.config import Settings
from app.events import subscribers
from app.models.call import EventType
from app.notifications.alerts import CallBefore

CHANNEL = "hulian_events"

# The id, and a shared advisory lock on it held until the transaction ends:
# the live hub tells a hole left by a rollback from one still being written
# by trying that lock (app/events/hub.py, app/core/locks.py).
_NEXT_ID = locks.NEXT_EVENT_ID
# The row, and the call pointed at it (and, for a change of the call
# itself, stamped as updated), in one round trip. (A call's first event is
# written with the call: `born`.)
_INSERT = text(
    """
    WITH written AS (
        INSERT INTO event (id, call_id, offer_id, type, data, note)
        OVERRIDING SYSTEM VALUE
        VALUES (:id, :call_id, :offer_id, :type, CAST(:data AS jsonb), :note)
        RETURNING id, call_id
    )
    UPDATE call SET last_event_id = written.id,
                    updated_at = CASE WHEN :touch THEN now() ELSE call.updated_at END
    FROM written WHERE call.id = written.call_id
    """
)


async def next_event_id(session: AsyncSession) -> int:
    """Reserve the id of the next event, so a snapshot can carry it."""
    event_id: int = (await session.execute(_NEXT_ID)).scalar_one()
    return event_id


async def append(
    session: AsyncSession,
    event_type: EventType,
    call_id: uuid.UUID,
    data: dict[str, Any],
    *,
    offer_id: uuid.UUID | None = None,
    event_id: int | None = None,
    note: str | None = None,
    settings: Settings | None = None,
    touch_call: bool = False,
    call: CallBefore | None = None,
) -> int:
    """Write one event (`data`: the Call or Offer as JSON-ready data, `note`:
    what was said of the step) and announce it on commit; what else it
    writes is decided by the list in app/events/subscribers.py and written
    by the same statement. `touch_call`: the event is a change of the call
    itself (`updated_at` becomes the transaction's time). `call`: for a
    `call.updated`, the call as it was before (the subscribers are not to
    read it back)."""
    if event_id is None:
        event_id = await next_event_id(session)
    writes = await _subscribed(session, event_type, call_id, data, offer_id, settings, call)
    statement, written = sql.with_writes(_INSERT, writes)
    await sql.execute(
        session,
        statement,
        {
            "id": event_id,
            "call_id": call_id,
            "offer_id": offer_id,
            "type": event_type.value,
            "data": jsontext.dumps(data),
            "note": note,
            "touch": touch_call,
            **written,
        },
    )
    return event_id


async def _subscribed(
    session: AsyncSession,
    event_type: EventType,
    call_id: uuid.UUID,
    data: dict[str, Any],
    offer_id: uuid.UUID | None,
    settings: Settings | None,
    call: CallBefore | None = None,
    *,
    offer_to: uuid.UUID | None = None,
) -> list[sql.Write]:
    # In the event's transaction, before its statement: what they return is
    # written by that statement, with the event, before the NOTIFY.
    writes: list[sql.Write] = []
    for subscriber in subscribers.SUBSCRIBERS:
        writes += await subscriber(
            session,
            event_type,
            call_id,
            data,
            offer_id,
            settings=settings,
            call=call,
            offer_to=offer_to,
        )
    return writes


def born(insert_call: str) -> TextClause:
    """A call and its first event (`call.updated`, the call as it was born)
    in one statement: `insert_call` is an INSERT INTO call of one row that
    takes its `last_event_id` from `reserved.id` (the event's id, reserved
    here). Its `:data` is the snapshot with any `last_event_id`: the
    reserved id is written into it."""
    return text(
        f"""
        WITH reserved AS MATERIALIZED ({_NEXT_ID.text}),
        call_row AS ({insert_call} RETURNING id)
        INSERT INTO event (id, call_id, offer_id, type, data, note)
        OVERRIDING SYSTEM VALUE
        SELECT reserved.id, call_row.id, NULL, :type,
               jsonb_set(CAST(:data AS jsonb), '{{last_event_id}}', to_jsonb(reserved.id)),
               NULL
        FROM reserved, call_row
        """  # noqa: S608 - constant fragments, values are bound
    )


def with_offer(insert_offer: str) -> TextClause:
    """An offer and its `offer.created` in one statement: `insert_offer` is an
    INSERT INTO offer of one row (no RETURNING); the event (`:type`, `:data`)
    takes an id reserved here, names the offer, and the call is pointed at
    it. The subscribers' writes that reference the offer (its alerts) go in
    the same statement: foreign keys are checked at the statement's end,
    when the offer's row is there."""
    return text(
        f"""
        WITH reserved AS MATERIALIZED ({_NEXT_ID.text}),
        offer_row AS ({insert_offer} RETURNING id, call_id),
        written AS (
            INSERT INTO event (id, call_id, offer_id, type, data, note)
            OVERRIDING SYSTEM VALUE
            SELECT reserved.id, offer_row.call_id, offer_row.id, :type,
                   CAST(:data AS jsonb), NULL
            FROM reserved, offer_row
            RETURNING id, call_id
        )
        UPDATE call SET last_event_id = written.id
        FROM written WHERE call.id = written.call_id
        """  # noqa: S608 - constant fragments, values are bound
    )


def with_move(update_call: str) -> TextClause:
    """A call's move and its `call.updated` in one statement, for a caller
    that knows the whole snapshot the move leaves (`:data`): `update_call`
    is an UPDATE of the call's row that takes its `last_event_id` from
    `reserved.id` (`FROM reserved`) and returns `call.id` and `reserved.id
    AS event_id`. The snapshot's `last_event_id` is the reserved id, written
    into `:data` here; the statement returns the event's id, or no row when
    the UPDATE matched none."""
    return text(
        f"""
        WITH reserved AS MATERIALIZED ({_NEXT_ID.text}),
        moved AS ({update_call})
        INSERT INTO event (id, call_id, offer_id, type, data, note)
        OVERRIDING SYSTEM VALUE
        SELECT moved.event_id, moved.id, NULL, :type,
               jsonb_set(CAST(:data AS jsonb), '{{last_event_id}}', to_jsonb(moved.event_id)),
               NULL
        FROM moved
        RETURNING id
        """  # noqa: S608 - constant fragments, values are bound
    )


async def append_with(
    session: AsyncSession,
    statement: TextClause,
    values: dict[str, Any],
    event_type: EventType,
    call_id: uuid.UUID,
    data: dict[str, Any],
    *,
    offer_id: uuid.UUID | None = None,
    settings: Settings | None = None,
    offer_to: uuid.UUID | None = None,
    call: CallBefore | None = None,
) -> sql.Row | None:
    """Run a statement that writes a row and its event (`born`, `with_offer`,
    `with_move`: `values` for the row, `data` the event's), with what runs
    with every event; the statement's row, if it returns one. `offer_to`:
    the member a paired offer was made to (its alerts' subscriber cannot
    read the offer's row, written by the same statement); `call`: for a
    `call.updated`, the call as it was before."""
    writes = await _subscribed(
        session, event_type, call_id, data, offer_id, settings, call, offer_to=offer_to
    )
    composed, written = sql.with_writes(statement, writes)
    return await sql.fetchrow(
        session,
        composed,
        {**values, "type": event_type.value, "data": jsontext.dumps(data), **written},
    )
