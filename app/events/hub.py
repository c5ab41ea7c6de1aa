"""Live delivery inside one server process: one LISTEN connection, many sockets.

Every process keeps one dedicated asyncpg connection (not from the pool:
releasing a pooled connection runs `UNLISTEN *`) that listens on the
channel `events.CHANNEL`. A notification carries ids only; the hub then
reads the new rows of the event table in id order and hands each event to
the sockets whose person may see it (`call_view`), redacted for them.

**Order.** Event ids are taken when an event is written, but transactions
commit in their own order, so id 11 may become visible before id 10. The
hub delivers strictly in id order: when it sees a hole it waits for it.
The transaction that took an id holds a shared advisory lock on it until it
ends, so the hub can tell a hole whose writer is still running (wait: the
row appears on commit) from one whose writer rolled back (the lock is free
and the row absent: step over it), whatever else runs on the cluster.
`GAP_TIMEOUT_S` is only a last resort. What was read past a hole waits
for it in memory (`_Ahead`) and the hole's rechecks read only the ids
missing and newer ones, so each event row is read once. An event waiting
there is judged by its call as it stood when read (as it would have been
had there been no hole), not as it stands when the hole closes: a few
milliseconds, and it still reaches each socket before any later event of
its call.

**Failures.** If the listening connection drops, the hub reconnects (with
backoff) and reads everything after the last id it delivered, so a
connected socket loses nothing. Each socket has a bounded buffer; a socket
that cannot keep up is dropped (close code 4008), never allowed to grow
memory.

**Idle sockets cost little.** A socket is a `Subscriber` (`__slots__`, no
task, queue or event of its own); its heartbeats and token expiry are the
process's one `Ticker`; its session is checked with every other socket's
in one query per process (`_check_sessions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import asyncpg

from app.calls import visibility as call_view
from app.calls.visibility import CallFacts, EventFacts
from app.core import locks
from app.core.db import asyncpg_dsn
from app.events import duty as duty_feed
from app.events import log as events
from app.events.ticker import Ticker
from app.identity.auth import Access, PersonPrincipal
from app.identity.principals import Change

log = logging.getLogger("hulian.live")

LISTENER_NAME = "hulian-listener"
GAP_TIMEOUT_S = 10.0
GAP_RECHECK_S = 0.02
BATCH = 500
QUEUE_SIZE = 256

_READ = f"""
    SELECT e.id, e.type, e.call_id, e.at, e.data::text AS data, e.note,
           e.offer_id, o.team_id AS offer_team,
           c.resident_id, c.responder_id, c.community_id, c.street_id, c.responder_released_at,
           offer_teams.offered_team_ids, offer_teams.open_offer_team_ids
    FROM event e
    JOIN call c ON c.id = e.call_id
    LEFT JOIN offer o ON o.id = e.offer_id
    {call_view.offer_teams("c")}
"""  # noqa: S608 - constant fragments, values are bound
# What follows the last delivered id ($1) that was not read yet: the ids
# read past that were not visible then ($2), and up to a batch newer than
# the last read ($3), in id order (at most $4 rows). The rows in between,
# read before, are passed over on the primary key without their joins.
_FOLLOWING = (
    _READ  # constant fragments, values are bound
    + " WHERE e.id > $1 AND (e.id = ANY($2::bigint[]) OR e.id > $3) ORDER BY e.id LIMIT $4"
)
# $1, $2: the id range; $3: the batch; from $4 on, the person's values for
# the calls they may see (call_view.CALL_RULES). Which of those events each
# gets is then decided by `LiveEvent.message_for`, as for the live stream.
_REPLAY_PERSON = call_view.Positional(first=4)
_REPLAY = (
    _READ  # constant fragments, values are bound
    + f"""
    WHERE e.id > $1 AND e.id <= $2
      AND {call_view.visible_sql(_REPLAY_PERSON)}
    ORDER BY e.id LIMIT $3
    """
)


@dataclass(frozen=True)
class LiveEvent:
    id: int
    type: str
    call_id: uuid.UUID
    at: str
    data: dict[str, Any]
    note: str | None
    event: EventFacts
    facts: CallFacts

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> LiveEvent:
        return cls(
            id=row["id"],
            type=row["type"],
            call_id=row["call_id"],
            at=row["at"].isoformat(),
            data=json.loads(row["data"]),
            note=row["note"],
            event=EventFacts(
                type=row["type"], offer_id=row["offer_id"], offer_team=row["offer_team"]
            ),
            facts=CallFacts(
                id=row["call_id"],
                resident_id=row["resident_id"],
                responder_id=row["responder_id"],
                community_id=row["community_id"],
                street_id=row["street_id"],
                offered_team_ids=frozenset(row["offered_team_ids"]),
                open_offer_team_ids=frozenset(row["open_offer_team_ids"]),
                responder_released_at=row["responder_released_at"],
            ),
        )

    def message_for(self, person: PersonPrincipal) -> dict[str, Any] | None:
        """The message this person gets, or None when it is not theirs to see."""
        viewer = call_view.viewer_of(person, self.facts)
        if viewer is None or not call_view.event_filter(viewer).admits(person, self.event):
            return None
        return call_view.event_view(
            viewer,
            event_id=self.id,
            event_type=self.type,
            call_id=self.call_id,
            at=self.at,
            data=self.data,
            note=self.note,
        )


class Ending(StrEnum):
    """Why the hub ends a socket's subscription."""

    session = "session"  # logged out, revoked, disabled
    access = "access"  # roles, area or teams changed


class Subscriber:
    """One socket's view of the stream: the events handed to it and not yet
    sent, and whether it must end. No asyncio objects and no task of its
    own (`__slots__`, the buffer made on the first event and dropped when
    drained): a process holds one per socket, idle or not. A socket
    subclasses it and acts on `wake`."""

    __slots__ = ("ending", "overflowed", "pending", "person")

    def __init__(self, person: PersonPrincipal) -> None:
        self.person = person
        self.pending: deque[dict[str, Any]] | None = None
        # Set when more than QUEUE_SIZE events waited: they were dropped.
        self.overflowed = False
        # Set when the person's session was logged out, revoked or disabled,
        # or what they may see changed (which one).
        self.ending: Ending | None = None

    def end(self, why: Ending) -> None:
        if self.ending is None:
            self.ending = why
            self.wake()

    def offer(self, event: LiveEvent) -> None:
        if self.overflowed:
            return
        message = event.message_for(self.person)
        if message is None:
            return
        self.offer_message(message)

    def offer_message(self, message: dict[str, Any]) -> None:
        """Queue a message already made for this socket (an event of the
        log, or a `duty.updated`, which has no id: app/events/duty.py)."""
        if self.overflowed:
            return
        pending = self.pending
        if pending is None:
            pending = self.pending = deque()
        if len(pending) >= QUEUE_SIZE:
            self.overflowed = True
            self.pending = None
        else:
            pending.append(message)
        self.wake()

    def take(self) -> dict[str, Any] | None:
        """The oldest event waiting, or None."""
        pending = self.pending
        if not pending:
            self.pending = None
            return None
        return pending.popleft()

    def wake(self) -> None:
        """An event arrived, the buffer overflowed or the subscription ended.
        Here the events only wait in `pending`."""


# The sessions still alive, with what their person may now see by
# (`PersonPrincipal.access`).
_LIVE_SESSIONS = """
    SELECT s.id, p.is_admin, d.area_id,
           ARRAY(SELECT m.team_id FROM team_member m WHERE m.person_id = p.id
                 ORDER BY m.team_id) AS team_ids
    FROM auth_session s JOIN person p ON p.id = s.person_id
    LEFT JOIN dispatcher d ON d.person_id = p.id
    WHERE s.id = ANY($1::uuid[]) AND s.revoked_at IS NULL AND p.disabled_at IS NULL
"""


# Which ids of a hole are still held by their writers (each holds a shared
# advisory lock on its ids until it ends): the first such id, or NULL.
_HOLE_WRITERS = locks.HELD_EVENT_IDS
_ANY_EVENT = "SELECT EXISTS (SELECT 1 FROM event WHERE id BETWEEN $1 AND $2)"
HOLE_BATCH = 1000
# Events read past a hole that may wait for it before newer ones are not read.
AHEAD_MAX = 2000
_NO_ID = 2**63 - 1  # no event's id is above it: read no newer ones


# Connections of a process for `resume`: a reconnect storm waits its turn
# on these rather than opening a connection per socket.
REPLAY_CONNECTIONS = 2


class EventHub:
    def __init__(
        self,
        database_url: str,
        session_check_seconds: float = 15.0,
        heartbeat_seconds: float = 25.0,
        duty_throttle_seconds: float = 15.0,
        duty_max_age: timedelta = timedelta(seconds=600),
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._session_check_seconds = session_check_seconds
        self._checker: asyncio.Task[None] | None = None
        # People whose principal changed (a NOTIFY, app/identity/principals.py):
        # their sockets are checked at once, not at the next round.
        self._changed: set[uuid.UUID] = set()
        self._changed_everyone = False
        self._recheck = asyncio.Event()
        # Every socket's heartbeat and token expiry: one timer for the process.
        self.ticker = Ticker(heartbeat_seconds)
        self._replay_pool: asyncpg.Pool | None = None
        self._subscribers: set[Subscriber] = set()
        # The same sockets filed by who their person is (`person_keys`): an
        # event is offered only to those some rule may hold for
        # (`call_keys`), so its cost follows its readers, not the sockets.
        self._by_key: dict[call_view.Key, set[Subscriber]] = {}
        # Sockets of dispatchers and admins: the only readers of `duty.updated`.
        self._staff_sockets = 0
        self.duty = duty_feed.DutyFeed(
            duty_throttle_seconds,
            readers=self.readers_by_keys,
            watched=lambda: self._staff_sockets > 0,
            max_age=duty_max_age,
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self.delivered_upto = 0
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.rows_read = 0  # event rows the hub read (tests count them)
        # Hooks for tests and metrics.
        self.on_deliver: Callable[[LiveEvent], None] | None = None

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._replay_pool = await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=REPLAY_CONNECTIONS,
            timeout=5,
            server_settings={"application_name": "hulian-replay", "jit": "off"},
        )
        self.duty.start(self._replay_pool)
        self._task = asyncio.create_task(self._run(), name="hulian-event-hub")
        self._checker = asyncio.create_task(self._check_sessions(), name="hulian-sessions")
        self.ticker.start()

    async def stop(self) -> None:
        await self.ticker.stop()
        await self.duty.stop()
        for task in (self._task, self._checker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._close_conn()
        if self._replay_pool is not None:
            await self._replay_pool.close()
            self._replay_pool = None

    async def replay(self, person: PersonPrincipal, after: int, upto: int) -> list[dict[str, Any]]:
        """The events after `after` (and up to `upto`) this person may see, in
        order: what a reconnecting socket missed."""
        if after >= upto:
            return []
        if self._replay_pool is None:
            raise RuntimeError("the hub is not started")
        async with self._replay_pool.acquire() as conn:
            return await replay_on(conn, person, after, upto)

    def principals_changed(self, change: Change) -> None:
        """What a person is changed (logout, disable, roles, teams): check
        their sockets now."""
        if change.everyone:
            self._changed_everyone = True
        else:
            self._changed |= change.persons
        self._recheck.set()

    async def _check_sessions(self) -> None:
        """Every socket's session, checked in one query per process: a
        logout, a revocation or a disabled person ends its sockets, and so
        does a change of what the person may see (admin, a dispatcher's
        area, teams): the client reconnects, with `resume`, under the new
        access, and loses nothing. Each round checks every socket; a change
        heard in between (`principals_changed`) has the sockets of the
        people it names checked at once. The first round comes at a random
        phase of the interval, so that processes do not check together.
        Only the sockets listed before a query are judged by its answer: one
        that connects while it runs was checked as it connected."""
        loop = asyncio.get_running_loop()
        phase = random.uniform(0, self._session_check_seconds)  # noqa: S311 - a phase
        next_round = loop.time() + phase
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._recheck.wait(), next_round - loop.time())
            self._recheck.clear()
            changed, self._changed = self._changed, set()
            if loop.time() >= next_round or self._changed_everyone:
                next_round = loop.time() + self._session_check_seconds
                self._changed_everyone = False
                checked = list(self._subscribers)
            else:
                checked = [s for s in self._subscribers if s.person.person_id in changed]
            if checked:
                await self._check(checked)

    async def _check(self, checked: list[Subscriber]) -> None:
        """End the sockets among `checked` whose session ended or whose
        person's access changed."""
        watched = list({s.person.session_id for s in checked})
        try:
            conn: asyncpg.Connection = await asyncpg.connect(
                self._dsn, timeout=5, server_settings={"jit": "off"}
            )
            try:
                rows = await conn.fetch(_LIVE_SESSIONS, watched)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("session check failed", extra={"error": type(exc).__name__})
            return
        alive = {
            row["id"]: Access(
                is_admin=row["is_admin"],
                dispatcher_area_id=row["area_id"],
                team_ids=tuple(row["team_ids"]),
            )
            for row in rows
        }
        for subscriber in checked:
            access = alive.get(subscriber.person.session_id)
            if access is None:
                subscriber.end(Ending.session)
            elif access != subscriber.person.access:
                subscriber.end(Ending.access)

    async def _close_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
            self._conn = None

    @staticmethod
    def _is_staff(subscriber: Subscriber) -> bool:
        return subscriber.person.is_admin or subscriber.person.dispatcher_area is not None

    def subscribe(self, subscriber: Subscriber) -> None:
        if subscriber not in self._subscribers and self._is_staff(subscriber):
            self._staff_sockets += 1
        self._subscribers.add(subscriber)
        for key in call_view.person_keys(subscriber.person):
            self._by_key.setdefault(key, set()).add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers and self._is_staff(subscriber):
            self._staff_sockets -= 1
        self._subscribers.discard(subscriber)
        for key in call_view.person_keys(subscriber.person):
            filed = self._by_key.get(key)
            if filed is not None:
                filed.discard(subscriber)
                if not filed:
                    del self._by_key[key]

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    # ---- the loop ---------------------------------------------------------------------

    async def _connect(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._dsn,
            timeout=5,
            server_settings={
                "application_name": LISTENER_NAME,
                "jit": "off",
                # This connection runs only the pump's statements, which read
                # the newest few events by primary key. For the values of
                # `_FOLLOWING` (ids near the newest) a plan costs far less
                # than PostgreSQL's generic estimate for any id, so it kept
                # planning every read anew (0.7 ms of its CPU each, about
                # three reads a call in each process), to choose the same
                # index walk
                # (docs/benchmarks.md, "A plan per press").
                "plan_cache_mode": "force_generic_plan",
            },
        )
        await conn.add_listener(events.CHANNEL, self._notified)
        await conn.add_listener(duty_feed.CHANNEL, self._duty_notified)
        conn.add_termination_listener(self._terminated)
        return conn

    def _notified(self, *_: object) -> None:
        self._wake.set()

    def _duty_notified(self, _conn: object, _pid: object, _channel: object, payload: str) -> None:
        self.duty.notified(payload)

    def _terminated(self, *_: object) -> None:
        self.connected.clear()
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while True:
            try:
                self._conn = await self._connect()
                if first:
                    # Start from now: older events are for `resume`.
                    self.delivered_upto = await self._conn.fetchval(
                        "SELECT coalesce(max(id), 0) FROM event"
                    )
                    first = False
                else:
                    self.reconnects += 1
                    log.info("listener reconnected", extra={"upto": self.delivered_upto})
                self.connected.set()
                backoff = 0.1
                self._wake.set()  # fill whatever was missed while away
                await self._pump(self._conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listener connection lost", extra={"error": type(exc).__name__})
            self.connected.clear()
            await self._close_conn()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _pump(self, conn: asyncpg.Connection) -> None:
        # Events read past a hole wait in `ahead` for it: a recheck reads the
        # ids missing and newer ones, never again what was read. After a
        # reconnect all after `delivered_upto` is read afresh.
        ahead = _Ahead(self.delivered_upto)
        gap_seen_at: float | None = None
        while True:
            if gap_seen_at is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), GAP_RECHECK_S)
            self._wake.clear()
            if conn.is_closed():
                raise ConnectionError("listener connection closed")
            missing = ahead.missing(self.delivered_upto)
            newer = ahead.room()
            rows = await conn.fetch(
                _FOLLOWING,
                self.delivered_upto,
                missing,
                ahead.read_upto if newer else _NO_ID,
                len(missing) + newer,
            )
            self.rows_read += len(rows)
            # Newer events may wait: the batch was full, or none were read.
            more = ahead.add([LiveEvent.from_record(row) for row in rows]) == newer
            for event in ahead.ready(self.delivered_upto):
                self._deliver(event)
            first_held = ahead.first()
            if first_held is None:
                gap_seen_at = None
                if more:
                    self._wake.set()
                continue
            # A hole: ids delivered_upto+1 .. first_held-1 are not visible.
            first_missing = self.delivered_upto + 1
            last_missing = min(first_held - 1, first_missing + HOLE_BATCH - 1)
            if gap_seen_at is None:
                gap_seen_at = time.monotonic()
            held = await conn.fetchval(_HOLE_WRITERS, first_missing, last_missing)
            dead_upto = last_missing if held is None else held - 1
            if dead_upto >= first_missing:
                # Their transactions are over. Unless one committed since the
                # fetch, those ids were rolled back: step over them.
                committed = await conn.fetchval(_ANY_EVENT, first_missing, dead_upto)
                if not committed:
                    self.delivered_upto = dead_upto
                gap_seen_at = None
                self._wake.set()
            elif time.monotonic() - gap_seen_at > GAP_TIMEOUT_S:
                log.warning("event id hole held too long; stepping over", extra={"id": held})
                self.delivered_upto = first_missing
                gap_seen_at = None
                self._wake.set()

    def readers_of(self, event: LiveEvent) -> set[Subscriber]:
        """The sockets that may see the event: a superset of those
        `message_for` admits, found by key."""
        keys = call_view.call_keys(event.facts)
        if keys is None:
            return set(self._subscribers)
        return self.readers_by_keys(keys)

    def readers_by_keys(
        self, keys: set[call_view.Key] | frozenset[call_view.Key]
    ) -> set[Subscriber]:
        """The sockets filed under any of `keys`."""
        found: set[Subscriber] = set()
        for key in keys:
            filed = self._by_key.get(key)
            if filed:
                found |= filed
        return found

    def _deliver(self, event: LiveEvent) -> None:
        self.delivered_upto = event.id
        for subscriber in self.readers_of(event):
            subscriber.offer(event)
        if self.on_deliver is not None:
            self.on_deliver(event)


class _Ahead:
    """Events read past a hole in the ids, waiting for it: the hub delivers
    in id order. Every id from the hub's `delivered_upto` + 1 to `read_upto`
    is either here or was not visible when read (`missing`)."""

    def __init__(self, delivered_upto: int) -> None:
        self.read_upto = delivered_upto
        self._events: dict[int, LiveEvent] = {}

    def missing(self, delivered_upto: int) -> list[int]:
        """The ids read past that were not visible then."""
        return [i for i in range(delivered_upto + 1, self.read_upto + 1) if i not in self._events]

    def room(self) -> int:
        """How many newer events to read: none once `AHEAD_MAX` wait, so a
        long hole keeps memory bounded (its rechecks then read the ids
        missing only)."""
        return BATCH if len(self._events) < AHEAD_MAX else 0

    def add(self, read: list[LiveEvent]) -> int:
        """Keep what was read (in id order); the number of newer events."""
        newer = 0
        for event in read:
            self._events[event.id] = event
            if event.id > self.read_upto:
                newer += 1
                self.read_upto = event.id
        return newer

    def ready(self, delivered_upto: int) -> list[LiveEvent]:
        """The events that follow `delivered_upto` without a hole, taken out."""
        out: list[LiveEvent] = []
        i = delivered_upto + 1
        while i in self._events:
            out.append(self._events.pop(i))
            i += 1
        return out

    def first(self) -> int | None:
        """The first id held back, or None when nothing is."""
        return min(self._events) if self._events else None


async def replay_on(
    conn: asyncpg.Connection, person: PersonPrincipal, after: int, upto: int
) -> list[dict[str, Any]]:
    """`replay` on a connection the caller holds."""
    out: list[dict[str, Any]] = []
    cursor = after
    while cursor < upto:
        rows = await conn.fetch(_REPLAY, cursor, upto, BATCH, *_REPLAY_PERSON.values(person))
        if not rows:
            break
        for row in rows:
            message = LiveEvent.from_record(row).message_for(person)
            if message is not None:
                out.append(message)
        cursor = rows[-1]["id"]
    return out
