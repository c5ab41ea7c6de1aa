"""The public screens' rate limit: SCREEN_REQUESTS_PER_MINUTE per client
address, counted in each process's memory.

Not the PostgreSQL limiter of `app.identity.ratelimit`: that one takes a
connection and an advisory lock per request, so a feed served from the
cache would cost four statements, and screens behind one address (a
building's NAT) asking at once would queue on the lock holding the pool's
connections (twenty at once exhausted a test pool: 503). What this limit
guards is the process, whose answers come from its cache; the limit holds
per process, so a deployment of N processes lets an address make up to N
times as many requests in all. An OTP is different: one sent costs money,
so its limit must hold across processes.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from app.core.errors import TooManyRequests

WINDOW_S = 60.0
# Above this many addresses remembered, those with no request in the window go.
MAX_ADDRESSES = 10_000


class AddressLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, address: str) -> None:
        """Count one request of `address`, or raise TooManyRequests with the
        seconds until a place frees up."""
        now = self._clock()
        hits = self._hits.get(address)
        if hits is None:
            if len(self._hits) >= MAX_ADDRESSES:
                self._forget_idle(now)
            hits = self._hits[address] = deque()
        while hits and hits[0] <= now - WINDOW_S:
            hits.popleft()
        if len(hits) >= self._limit:
            raise TooManyRequests(
                "Too many screen requests from this address; try again later.",
                retry_after=max(1, math.ceil(hits[0] + WINDOW_S - now)),
            )
        hits.append(now)

    def _forget_idle(self, now: float) -> None:
        for address in [a for a, h in self._hits.items() if not h or h[-1] <= now - WINDOW_S]:
            del self._hits[address]
