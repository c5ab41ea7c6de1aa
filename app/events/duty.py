"""`duty.updated`: a member of a dispatcher's area went on or off duty or
moved, on the sockets of the dispatchers of that area (and of admins).
docs/live.md, "Duty on the map".

**Not the event log.** A position is personal data, and a track of them is
exactly what must not be kept (app/duty/service.py keeps the latest
position only), so no event row is written: the change NOTIFYs on its own
channel, `CHANNEL`, with ids only (`{"p": person id, "on": on duty}`),
sent on commit like every NOTIFY. Every process's hub listens on it (on
the listening connection it already holds) and reads the member's current
duty row itself. A `duty.updated` has no event id and `resume` does not
replay it: a reconnecting map re-reads GET /dispatch/map.

**Throttle.** Per member and per process, at most one move every
DUTY_EVENT_THROTTLE_SECONDS: the first move is sent at once, later ones in
the window are held and the member's position *at the window's end* is
sent then, so a map never keeps a stale point. Going on or off duty is sent
at once, always (and cancels a held move). What is sent is read when it is
sent, in batches by one task per process, so messages of one member keep
their order and the latest state wins.

**Cost.** Nothing is read when the process holds no staff socket. Readers
are found through the hub's index of sockets (`("area", id)`, `("admin",
True)`), so an update costs its readers, not the sockets; residents and
volunteers are never filed under those keys and never get one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import visibility as call_view
from app.duty import availability
from app.events.messages import DutyUpdated
from app.models.geo import Point
from app.models.live_map import DutyMember

log = logging.getLogger("hulian.live")

CHANNEL = "hulian_duty"

_ANNOUNCE = text("SELECT pg_notify(:channel, :payload)")


async def announce(session: AsyncSession, person_id: uuid.UUID, on_duty: bool) -> None:
    """Tell every process, on commit, that this person's duty changed."""
    payload = json.dumps({"p": str(person_id), "on": on_duty})
    await session.execute(_ANNOUNCE, {"channel": CHANNEL, "payload": payload})


# The members' duty now, with the areas their teams lie in (who may see it).
# $1: the person ids; from $2 on, what `availability.available_member` binds.
_READ = f"""
    SELECT p.id, p.display_name, coalesce(d.on_duty, false) AS on_duty,
           ST_Y(d.location::geometry) AS lat, ST_X(d.location::geometry) AS lng,
           d.accuracy_m, d.located_at,
           coalesce({availability.available_member("d")}, false) AS available,
           ARRAY(SELECT m.team_id FROM team_member m WHERE m.person_id = p.id
                 ORDER BY m.team_id) AS team_ids,
           ARRAY(SELECT DISTINCT x.id
                 FROM team_member m JOIN team t ON t.id = m.team_id
                 JOIN area g ON g.id = t.grid_id JOIN area b ON b.id = g.parent_id
                 JOIN area c ON c.id = b.parent_id
                 CROSS JOIN LATERAL (VALUES (g.id), (b.id), (c.id), (c.parent_id)) x(id)
                 WHERE m.person_id = p.id) AS areas
    FROM person p LEFT JOIN duty d ON d.person_id = p.id
    WHERE p.id = ANY($1::uuid[])
"""  # noqa: S608 - constant fragments, values are bound
_READ_SQL = _READ.replace(":max_age", "$2")


class Reader(Protocol):
    """A socket the feed hands messages to (the hub's `Subscriber`)."""

    def offer_message(self, message: dict[str, Any]) -> None: ...


def message_of(row: Any) -> dict[str, Any]:
    location = (
        Point(lat=row["lat"], lng=row["lng"], accuracy_m=row["accuracy_m"])
        if row["on_duty"] and row["lat"] is not None
        else None
    )
    data = DutyMember(
        member_id=row["id"],
        display_name=row["display_name"],
        team_ids=list(row["team_ids"]),
        on_duty=row["on_duty"],
        location=location,
        located_at=row["located_at"] if location is not None else None,
        available=row["available"],
    )
    return DutyUpdated(at=datetime.now(UTC), data=data).model_dump(mode="json")


def keys_of(area_ids: Iterable[uuid.UUID]) -> set[call_view.Key]:
    """Who may see a member's duty: the dispatchers of an area one of their
    teams lies in, and admins (the same keys the hub files sockets by)."""
    keys: set[call_view.Key] = {(call_view.ADMIN.name, True)}
    keys.update((call_view.AREA.name, area) for area in area_ids)
    return keys


class DutyFeed:
    """One per process, driven by the hub: throttles and delivers."""

    def __init__(
        self,
        throttle_s: float,
        readers: Callable[[set[call_view.Key]], set[Any]],
        watched: Callable[[], bool],
        max_age: Any,
    ) -> None:
        self.throttle_s = throttle_s
        self._readers = readers
        self._watched = watched
        self._max_age = max_age
        # When each member's last move was let through (monotonic).
        self._sent_at: dict[uuid.UUID, float] = {}
        # Members whose move waits for its window's end, and that timer.
        self._held: dict[uuid.UUID, asyncio.TimerHandle] = {}
        self._due: set[uuid.UUID] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pool: asyncpg.Pool | None = None
        # Hooks for tests and metrics.
        self.on_deliver: Callable[[dict[str, Any]], None] | None = None

    def start(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._task = asyncio.create_task(self._run(), name="hulian-duty-feed")

    async def stop(self) -> None:
        for handle in self._held.values():
            handle.cancel()
        self._held.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ---- what the listener hears ------------------------------------------------------

    def notified(self, payload: str) -> None:
        try:
            parsed = json.loads(payload)
            person = uuid.UUID(parsed["p"])
            on_duty = bool(parsed["on"])
        except (ValueError, KeyError, TypeError):
            log.warning("bad duty notification")
            return
        if not self._watched():
            # No staff socket here: nobody to tell, nothing to hold.
            self._forget(person)
            return
        now = time.monotonic()
        sent_at = self._sent_at.get(person)
        if not on_duty or sent_at is None or now - sent_at >= self.throttle_s:
            # Going off duty, on duty or the first move in a while: now.
            self._forget(person)
            if on_duty:
                self._sent_at[person] = now
            self._due.add(person)
            self._wake.set()
        elif person not in self._held:
            loop = asyncio.get_running_loop()
            self._held[person] = loop.call_later(
                sent_at + self.throttle_s - now, self._release, person
            )

    def _forget(self, person: uuid.UUID) -> None:
        handle = self._held.pop(person, None)
        if handle is not None:
            handle.cancel()
        self._sent_at.pop(person, None)

    def _release(self, person: uuid.UUID) -> None:
        """A held move's window ended: send where the member is now."""
        self._held.pop(person, None)
        self._sent_at[person] = time.monotonic()
        self._due.add(person)
        self._wake.set()

    # ---- the task that reads and delivers ---------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            due, self._due = self._due, set()
            self._prune()
            if not due:
                continue
            try:
                await self._deliver(sorted(due))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A lost update: the member's next move (or the map's next
                # read) brings the map up to date.
                log.warning("duty update not delivered", extra={"error": type(exc).__name__})

    def _prune(self) -> None:
        """Forget members whose window is over and nothing is held."""
        if len(self._sent_at) < 1024:
            return
        horizon = time.monotonic() - self.throttle_s
        for person in [p for p, at in self._sent_at.items() if at < horizon]:
            if person not in self._held:
                del self._sent_at[person]

    async def _deliver(self, persons: list[uuid.UUID]) -> None:
        if self._pool is None:
            return
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_READ_SQL, persons, self._max_age)
        for row in rows:
            message = message_of(row)
            for reader in self._readers(keys_of(row["areas"])):
                reader.offer_message(message)
            if self.on_deliver is not None:
                self.on_deliver(message)
