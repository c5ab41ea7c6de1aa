"""One timer per process for every socket's heartbeat and the end of its token.

A task or a timer per socket costs memory on every idle socket and, after a
mass reconnect, fires for all of them at once, in waves, every period. Here
one task ticks about once a second (`RESOLUTION_S`) and walks one slice of
the sockets: each socket is filed in one of the heartbeat period's slots at
random when it connects, so 5,000 sockets that reconnect in the same second
get their heartbeats spread over the whole period, never together. A
socket's token expiry is filed by the tick it falls in; each tick ends the
sockets whose token ran out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from datetime import UTC, datetime
from typing import Protocol

from app.core.background import BackgroundTask

RESOLUTION_S = 1.0

log = logging.getLogger("hulian.live")


class Ticking(Protocol):
    """What the ticker needs of a socket: where it filed it, and two calls."""

    beat_slot: int
    expiry_tick: int

    def beat(self, text: str) -> None:
        """Send this heartbeat (it must not wait: the ticker walks on)."""

    def expire(self) -> None:
        """The socket's token ran out."""


def heartbeat_text() -> str:
    return json.dumps({"type": "heartbeat", "at": datetime.now(UTC).isoformat()})


class Ticker(BackgroundTask):
    name = "hulian-socket-ticker"

    def __init__(self, heartbeat_seconds: float, resolution_s: float = RESOLUTION_S) -> None:
        super().__init__()
        slots = max(1, round(heartbeat_seconds / resolution_s))
        # One tick per slot: a socket's heartbeats are `heartbeat_seconds` apart.
        self.period = heartbeat_seconds / slots
        self._slots: list[set[Ticking]] = [set() for _ in range(slots)]
        self._expiring: dict[int, set[Ticking]] = {}
        self._random = random.Random()  # noqa: S311 - phases, not secrets

    def __len__(self) -> int:
        return sum(len(slot) for slot in self._slots)

    def add(self, socket: Ticking, expires_in_s: float) -> None:
        """File a new socket: a heartbeat slot at random (the phase), and the
        tick its token ends in."""
        socket.beat_slot = self._random.randrange(len(self._slots))
        self._slots[socket.beat_slot].add(socket)
        now = asyncio.get_running_loop().time()
        socket.expiry_tick = math.ceil((now + max(0.0, expires_in_s)) / self.period)
        self._expiring.setdefault(socket.expiry_tick, set()).add(socket)

    def discard(self, socket: Ticking) -> None:
        self._slots[socket.beat_slot].discard(socket)
        filed = self._expiring.get(socket.expiry_tick)
        if filed is not None:
            filed.discard(socket)
            if not filed:
                del self._expiring[socket.expiry_tick]

    def tick(self, done: int, now: int) -> None:
        """Everything due after tick `done` up to tick `now`."""
        if self._expiring:
            if now - done <= len(self._expiring):
                due = [t for t in range(done + 1, now + 1) if t in self._expiring]
            else:  # a long stall: fewer filed ticks than ticks passed
                due = sorted(t for t in self._expiring if t <= now)
            for t in due:
                for socket in self._expiring.pop(t):
                    socket.expire()
        slots = len(self._slots)
        text = heartbeat_text()
        # Each slot at most once, however long the loop stalled.
        for t in range(max(done + 1, now - slots + 1), now + 1):
            for socket in list(self._slots[t % slots]):
                socket.beat(text)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        done = math.floor(loop.time() / self.period)
        while True:
            await asyncio.sleep(max(0.0, (done + 1) * self.period - loop.time()))
            now = math.floor(loop.time() / self.period)
            if now > done:
                try:
                    self.tick(done, now)
                except Exception:
                    log.exception("socket tick failed")
                done = now
