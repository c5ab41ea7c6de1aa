"""The call's state machine: the one writer of `call.status`.

    searching ─▶ offered ─▶ accepted ─▶ en_route ─▶ on_site ─▶ resolved
        │           │  ▲        └──────────────────────▶┘
        │           ▼  │ (next round, or a dispatcher assigns a team)
        └──────▶ escalated (community ─▶ street) ◀── resolved, disputed (once)
    any state before resolved ─▶ cancelled

`resolved ─▶ escalated` is no move of `transition`: only the caller's
dispute makes it (`reopen_disputed`, `REOPENINGS`), once a call, within
`DISPUTE_WINDOW_HOURS` of the resolution; the call is open again, at the
community's dispatchers, with nobody on it.

A call is born `searching` (`insert`) and changes status only through
`transition`, which checks `TRANSITIONS` against the status of the row it
holds locked, and writes the status with whatever else the move changes in
one UPDATE, in the statement that reads the snapshot the move leaves for
its `call.updated`. `tests/calls/test_call_state.py` fails when any other module writes
the column.

Every path that changes a call first takes its row lock (`lock_call`, or
`lock_visible` for a request that also asks whether its person may see
the call; the accept takes it with its offer): the call row is the one
lock every path takes first, so accept, decline, cancel and the sweeper
never deadlock and never both win. A path that holds one call's lock and
then needs another call's takes it only if it is free (`try_lock_call`),
never waiting for it.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import visibility
from app.core import locks, sql
from app.core.errors import Conflict
from app.events import log as events
from app.identity.auth import PersonPrincipal
from app.models.call import CallCategory, CallPublic, CallStatus, EscalationLevel, EventType
from app.notifications import alerts

S = CallStatus
# Which status may follow which; anything else is 409 `invalid_transition`.
TRANSITIONS: dict[CallStatus, frozenset[CallStatus]] = {
    S.searching: frozenset({S.offered, S.escalated, S.cancelled}),
    S.offered: frozenset({S.offered, S.accepted, S.escalated, S.cancelled}),
    S.escalated: frozenset({S.offered, S.escalated, S.cancelled}),
    S.accepted: frozenset({S.en_route, S.on_site, S.cancelled}),
    S.en_route: frozenset({S.on_site, S.cancelled}),
    S.on_site: frozenset({S.resolved, S.cancelled}),
    S.resolved: frozenset(),
    S.cancelled: frozenset(),
}
INITIAL = S.searching
CLOSED = frozenset({S.resolved, S.cancelled})
# The moves out of a closed state, each of them made by one path only (not
# by `transition`): a resident's dispute sends a resolved call back to the
# community's dispatchers (POST /calls/{id}/dispute, `reopen_disputed`).
REOPENINGS: dict[CallStatus, CallStatus] = {S.resolved: S.escalated}
DISPUTE_LEVEL = EscalationLevel.community

# What a transition may change besides the status: (column, SQL expression).
# Expressions are fixed here; values are bound parameters.
_CHANGES: dict[str, str] = {
    "team_id": "team_id = CAST(:team_id AS uuid)",
    "responder_id": "responder_id = CAST(:responder_id AS uuid)",
    "escalation_level": "escalation_level = CAST(:escalation_level AS varchar)",
    "rounds": "rounds = CAST(:rounds AS integer)",
    "cancel_reason": "cancel_reason = CAST(:cancel_reason AS varchar)",
}


class InvalidTransition(Conflict):
    code = "invalid_transition"
    title = "Invalid transition"


def check_transition(current: str, target: CallStatus) -> None:
    if target not in TRANSITIONS[CallStatus(current)]:
        raise InvalidTransition(f"A call that is {current} cannot become {target.value}.")


@dataclass(frozen=True)
class Born:
    """A call this transaction made (`insert`), known whole: the row its
    snapshot is made of (`visibility.snapshot_from_row`) and what the alerts
    of its next `call.updated` need. Its first move is published from them
    with no snapshot read back (`transition`)."""

    row: dict[str, Any]
    before: alerts.CallBefore


@dataclass(frozen=True)
class LockedCall:
    """A call's row as its lock holder read it."""

    id: uuid.UUID
    status: CallStatus
    category: CallCategory
    rounds: int
    escalation_level: EscalationLevel
    lat: float
    lng: float
    # The transaction's time, `now()`: what an offer made now expires after.
    tx_now: datetime
    # Set on a call made by this transaction and not yet moved.
    born: Born | None = None

    @classmethod
    def from_row(cls, row: Any) -> LockedCall:
        return cls(
            id=row.id,
            status=CallStatus(row.status),
            category=CallCategory(row.category),
            rounds=row.rounds,
            escalation_level=EscalationLevel(row.escalation_level),
            lat=row.lat,
            lng=row.lng,
            tx_now=row.tx_now,
        )


# What `LockedCall.from_row` reads, of the call `c` (a statement that locks
# the call with other work selects these, `FOR UPDATE OF c`).
LOCKED_COLUMNS = """
    c.id, c.status, c.category, c.rounds, c.escalation_level,
    ST_Y(c.location::geometry) AS lat, ST_X(c.location::geometry) AS lng, now() AS tx_now
"""
_LOCK_CALL = text(f"SELECT {LOCKED_COLUMNS} FROM call c WHERE c.id = :id FOR UPDATE")  # noqa: S608
_LOCK_CALL_IF_FREE = text(_LOCK_CALL.text.rstrip() + " SKIP LOCKED")
# The call locked with the facts that say who may see it, in one round trip
# (`lock_visible`). The facts are read as the lock finds the row; the
# offers' part as the statement began (the call's lock orders every change
# of its offers, and the asking path holds it from here on).
_LOCK_VISIBLE = text(
    f"""
    SELECT {LOCKED_COLUMNS}, {visibility.FACTS_COLUMNS}
    FROM call c
    {visibility.offer_teams("c")}
    WHERE c.id = :id
    FOR UPDATE OF c
    """  # noqa: S608 - constant fragments, values are bound
)


async def lock_call(session: AsyncSession, call_id: uuid.UUID) -> LockedCall | None:
    """Lock the call's row (the first lock of every path that changes it);
    None when there is no such call."""
    row = await sql.fetchrow(session, _LOCK_CALL, {"id": call_id})
    return LockedCall.from_row(row) if row is not None else None


@dataclass(frozen=True)
class LockedVisibleCall(visibility.VisibleCall):
    """A call the person may see (`VisibleCall`), locked (`call`): for a
    path that changes the call it asks about."""

    call: LockedCall


async def lock_visible(
    session: AsyncSession, person: PersonPrincipal, call_id: uuid.UUID
) -> LockedVisibleCall:
    """Lock the call (as `lock_call`) and decide in the same statement
    whether the person may see it: 404 as `visibility.require_visible`
    when not (the lock goes with the rollback)."""
    row = await sql.fetchrow(session, _LOCK_VISIBLE, {"id": call_id})
    facts = visibility.facts_from_row(row) if row is not None else None
    seen = visibility.seen_by(person, call_id, facts)  # 404 for no row too
    return LockedVisibleCall(seen.id, seen.person, seen.roles, LockedCall.from_row(row))


async def try_lock_call(session: AsyncSession, call_id: uuid.UUID) -> LockedCall | None:
    """Lock the call's row if nobody holds it; None if somebody does. For a
    path that already holds another call's lock: waiting there could close a
    cycle (two accepts, each holding its own call and wanting the other's)."""
    row = await sql.fetchrow(session, _LOCK_CALL_IF_FREE, {"id": call_id})
    return LockedCall.from_row(row) if row is not None else None


# The call, pointing at its first event, which `events.born` writes in the
# same statement (`reserved`: the event's id).
_INSERT = events.born(
    """
    INSERT INTO call (id, resident_id, screen_id, api_key_id, status, category, note, location,
                      accuracy_m, grid_id, community_id, street_id, escalation_level, rounds,
                      last_event_id)
    SELECT :id, :resident, :screen, :api_key, :status, :category, :note,
           ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography, :accuracy,
           :grid, :community, :street, :level, 0, reserved.id
    FROM reserved
    """
)


async def insert(
    session: AsyncSession,
    call_id: uuid.UUID,
    *,
    category: CallCategory,
    lat: float,
    lng: float,
    note: str | None,
    accuracy: float | None,
    grid: uuid.UUID,
    grid_name: str,
    at: datetime,
    screen: uuid.UUID | None = None,
    api_key: uuid.UUID | None = None,
    **values: Any,
) -> LockedCall:
    """A new call, `searching`, at grid level, in round 0, with its first
    `call.updated` event, in one statement; as its lock holder would read
    it. (Inserted by this transaction, no other can see the row, let alone
    lock it: it is not read back, nor is its snapshot: every column of a
    born call is known here. `at`: the transaction's time, `now()`, which
    its `created_at` and `updated_at` become.)"""
    born = {
        "id": call_id,
        "status": INITIAL.value,
        "category": category.value,
        "note": note,
        "escalation_level": EscalationLevel.grid.value,
        "created_at": at,
        "updated_at": at,
        "last_event_id": None,  # the event's: written by the statement
        "accuracy_m": accuracy,
        "disputed": False,
        "lat": lat,
        "lng": lng,
        "grid_id": grid,
        "grid_name": grid_name,
        "team_id": None,
        "team_name": None,
        "responder_id": None,
    }
    snapshot = visibility.snapshot_from_row(SimpleNamespace(**born))
    await events.append_with(
        session,
        _INSERT,
        {
            "id": call_id,
            "status": INITIAL.value,
            "level": EscalationLevel.grid.value,
            "category": category.value,
            "note": note,
            "accuracy": accuracy,
            "grid": grid,
            "lat": lat,
            "lng": lng,
            "screen": screen,
            "api_key": api_key,
            **values,
        },
        EventType.call_updated,
        call_id,
        snapshot.model_dump(mode="json"),
    )
    return LockedCall(
        id=call_id,
        status=INITIAL,
        category=category,
        rounds=0,
        escalation_level=EscalationLevel.grid,
        lat=lat,
        lng=lng,
        tx_now=at,
        born=Born(
            born,
            alerts.CallBefore(
                resident_id=values.get("resident"),
                screen_id=screen,
                community_id=values["community"],
                street_id=values["street"],
                previous_status=INITIAL.value,
                previous_level=EscalationLevel.grid.value,
            ),
        ),
    )


def _update(
    target: CallStatus, columns: tuple[str, ...], *, also: tuple[str, ...] = (), using: str = ""
) -> str:
    """The UPDATE of a move to `target` that also changes `columns` (of
    `_CHANGES`); `also`: more assignments, over `using` (a FROM list)."""
    assignments = ["status = :target", *(_CHANGES[column] for column in columns), *also]
    if target in CLOSED:
        assignments.append("closed_at = now()")
    if target is S.escalated:
        assignments.append("escalated_at = now()")
    source = f" FROM {using}" if using else ""
    return (
        f"UPDATE call SET {', '.join(assignments)}{source} "  # noqa: S608 - fixed fragments only
        "WHERE call.id = :id AND call.status = :current"
    )


# The move, the snapshot as it leaves it (read from the UPDATE's own row:
# the rest of the statement sees the call as it was), the id of the event
# about to carry it, the transaction's time and the previous `call.updated`
# (for its alerts, `alerts.CallBefore`): one round trip.
@functools.cache
def move_statement(target: CallStatus, columns: tuple[str, ...]) -> TextClause:
    return text(
        f"""
        WITH moved AS ({_update(target, columns)} RETURNING call.*),
        reserved AS MATERIALIZED ({locks.NEXT_EVENT_ID.text})
        SELECT s.*, reserved.id AS reserved_event_id, now() AS tx_now,
               previous.previous_status, previous.previous_level
        FROM ({visibility.snapshot_sql("moved")}) AS s CROSS JOIN reserved
        {alerts.previous_update("s")}
        """  # noqa: S608 - constants of our modules, values are bound
    )


def _checked(call: LockedCall, target: CallStatus, changes: dict[str, Any]) -> dict[str, Any]:
    """The values of a move's statement, once the state machine allows it."""
    check_transition(call.status, target)
    unknown = set(changes) - set(_CHANGES)
    if unknown:
        raise ValueError(f"a transition cannot change {sorted(unknown)}")
    return {"id": call.id, "target": target.value, "current": call.status.value, **changes}


async def transition(
    session: AsyncSession,
    call: LockedCall,
    target: CallStatus,
    *,
    team_name: str | None = None,
    note: str | None = None,
    **changes: Any,
) -> CallPublic:
    """Move a locked call to `target` (409 `invalid_transition` when the state
    machine forbids it), with the other columns the move changes (closing
    stamps `closed_at`, escalating `escalated_at`), and publish its
    `call.updated`: the move and the snapshot it leaves are one statement.
    The call as it now is (the full view, for `visibility.redacted`).
    `note`: what was said of the move, kept on its event. `team_name`: the
    name of the team `team_id` names, when the caller knows it; with it, a
    call made by this transaction (`LockedCall.born`) moves and publishes in
    one round trip."""
    values = _checked(call, target, changes)
    if call.born is not None and note is None and _known_whole(changes, team_name):
        return await _born_moved(session, call, call.born, target, changes, team_name, values)
    row = await sql.fetchrow(session, move_statement(target, tuple(changes)), values)
    if row is None:
        # The row lock makes this unreachable; say so loudly if it is not.
        raise InvalidTransition(f"The call is no longer {call.status.value}.")
    return await _publish(session, call.id, row, note)


# What a born call's first move may change and still be known whole: the
# snapshot shows the team (with its name) and the level; `rounds` it does
# not show.
_KNOWN_WHOLE = frozenset({"team_id", "escalation_level", "rounds"})


def _known_whole(changes: dict[str, Any], team_name: str | None) -> bool:
    return set(changes) <= _KNOWN_WHOLE and (changes.get("team_id") is None or bool(team_name))


# A born call's move and its `call.updated` (with its alerts), one statement
# per kind of move.
@functools.cache
def born_move_statement(target: CallStatus, columns: tuple[str, ...]) -> TextClause:
    update = _update(
        target,
        columns,
        also=("last_event_id = reserved.id", "updated_at = now()"),
        using="reserved",
    )
    return events.with_move(f"{update} RETURNING call.id, reserved.id AS event_id")


async def _born_moved(
    session: AsyncSession,
    call: LockedCall,
    born: Born,
    target: CallStatus,
    changes: dict[str, Any],
    team_name: str | None,
    values: dict[str, Any],
) -> CallPublic:
    """The snapshot of a born call as its move leaves it, from what the
    press knows (the row `insert` built, and the move's changes), published
    by the move's own statement."""
    row = {**born.row, "status": target.value, "updated_at": call.tx_now}
    if "team_id" in changes:
        row["team_id"] = changes["team_id"]
        row["team_name"] = team_name if changes["team_id"] is not None else None
    if "escalation_level" in changes:
        row["escalation_level"] = changes["escalation_level"]
    full = visibility.snapshot_from_row(SimpleNamespace(**row))
    written = await events.append_with(
        session,
        born_move_statement(target, tuple(changes)),
        values,
        EventType.call_updated,
        call.id,
        full.model_dump(mode="json"),
        call=born.before,
    )
    if written is None:
        # The row lock makes this unreachable; say so loudly if it is not.
        raise InvalidTransition(f"The call is no longer {call.status.value}.")
    return full.model_copy(update={"last_event_id": written.id})


class AlreadyDisputed(Conflict):
    code = "already_disputed"
    title = "Already disputed"


class DisputeWindowClosed(Conflict):
    code = "dispute_window_closed"
    title = "Dispute window closed"


# The dispute's move, in one statement: the call is open again (no longer
# closed, nor released or anonymised: the constraint `forgotten_once_closed`
# holds), escalated to the community with nobody on it, and remembers when
# and why it was disputed. The conditions repeat the checks of
# `reopen_disputed` so the row decides even if the lock were not held.
_REOPEN_DISPUTED = text(
    f"""
    UPDATE call SET status = :target, escalation_level = '{DISPUTE_LEVEL.value}',
           escalated_at = now(), team_id = NULL, responder_id = NULL,
           closed_at = NULL, responder_released_at = NULL,
           disputed_at = now(), dispute_reason = :reason
    WHERE id = :id AND status = :current AND disputed_at IS NULL
      AND anonymised_at IS NULL AND closed_at > now() - CAST(:window AS interval)
    RETURNING id
    """  # noqa: S608 - constants of this module, values are bound
)
_DISPUTE_FACTS = text(
    """
    SELECT disputed_at IS NOT NULL AS disputed,
           anonymised_at IS NULL AND closed_at > now() - CAST(:window AS interval) AS in_window
    FROM call WHERE id = :id
    """
)


async def reopen_disputed(
    session: AsyncSession, call: LockedCall, reason: str, window: timedelta
) -> LockedCall:
    """The caller disputes a locked call's resolution: it becomes `escalated`
    at the community level again (the one way out of `resolved`). 409
    `already_disputed` the second time, `invalid_transition` unless it is
    resolved, `dispute_window_closed` once `window` has passed since it was
    resolved."""
    facts = (await session.execute(_DISPUTE_FACTS, {"id": call.id, "window": window})).one()
    if facts.disputed:
        raise AlreadyDisputed("This call has been disputed already; a call is disputed once.")
    target = REOPENINGS.get(call.status)
    if target is None:
        raise InvalidTransition(
            f"A call that is {call.status.value} cannot be disputed; only a resolved one can."
        )
    if not facts.in_window:
        hours = int(window.total_seconds() // 3600)
        raise DisputeWindowClosed(f"A call can be disputed within {hours} hours of its resolution.")
    moved = (
        await session.execute(
            _REOPEN_DISPUTED,
            {
                "id": call.id,
                "target": target.value,
                "current": call.status.value,
                "reason": reason,
                "window": window,
            },
        )
    ).first()
    if moved is None:
        # The row lock makes this unreachable; say so loudly if it is not.
        raise InvalidTransition(f"The call is no longer {call.status.value}.")
    return LockedCall(**{**call.__dict__, "status": target, "escalation_level": DISPUTE_LEVEL})


# The snapshot as it stands, the id of the event about to carry it, the
# transaction's time (what `updated_at` becomes) and the previous
# `call.updated` (for its alerts), in one round trip.
_SNAPSHOT_FOR_EVENT = text(
    f"""
    WITH reserved AS MATERIALIZED ({locks.NEXT_EVENT_ID.text})
    SELECT s.*, reserved.id AS reserved_event_id, now() AS tx_now,
           previous.previous_status, previous.previous_level
    FROM ({visibility.SNAPSHOT_SQL} WHERE c.id = :id) AS s CROSS JOIN reserved
    {alerts.previous_update("s")}
    """  # noqa: S608 - constants of our modules, values are bound
)


async def publish_call(
    session: AsyncSession, call_id: uuid.UUID, *, note: str | None = None
) -> CallPublic:
    """Append a `call.updated` event carrying the call as it now is (and what
    was said of the step, `note`); the full view, for `visibility.redacted`."""
    row = await sql.one(session, _SNAPSHOT_FOR_EVENT, {"id": call_id})
    return await _publish(session, call_id, row, note)


async def _publish(
    session: AsyncSession, call_id: uuid.UUID, row: Any, note: str | None
) -> CallPublic:
    """Append the `call.updated` of a snapshot row that reserved its event's id."""
    # The event's own id and time, which `events.append` writes to the row
    # in the same statement as the event: not read back.
    full = visibility.snapshot_from_row(row).model_copy(
        update={"last_event_id": row.reserved_event_id, "updated_at": row.tx_now}
    )
    await events.append(
        session,
        EventType.call_updated,
        call_id,
        full.model_dump(mode="json"),
        event_id=row.reserved_event_id,
        note=note,
        touch_call=True,
        call=alerts.CallBefore.from_row(row),
    )
    return full
