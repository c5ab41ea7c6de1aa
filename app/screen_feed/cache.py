"""Each process's feeds of the public screens, one per area, kept
SCREEN_CACHE_SECONDS: however many screens and streams of an area ask, the
area costs one computation per period (per process).

Single flight: the first request to find an area's feed missing or stale
starts its computation as a task of its own; every request that comes
while it runs awaits that same task, so concurrent misses make one query,
not one each. A requester that goes away (a closed stream, a cancelled
request) stops waiting without cancelling the computation the others
await (`asyncio.shield`). A failure is not kept: the next request tries
again. An unknown area is kept too, as "none", so that asking for it again
and again costs no more than asking for a real one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import session_scope
from app.core.errors import NotFound
from app.models.screen_feed import ScreenFeed
from app.screen_feed import service

# Above this many areas kept, the stale ones are forgotten.
MAX_KEPT = 1024


class ScreenFeeds:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._clock = clock
        self._kept: dict[uuid.UUID, tuple[float, ScreenFeed | None]] = {}
        self._running: dict[uuid.UUID, asyncio.Task[ScreenFeed | None]] = {}
        # How many times a feed was computed: what the cache saves is tested on it.
        self.computations = 0
        # Set when the process stops: open streams end.
        self.closing = asyncio.Event()

    async def get(self, area_id: uuid.UUID) -> ScreenFeed:
        """The area's feed, at most SCREEN_CACHE_SECONDS old; 404 for no area."""
        kept = self._kept.get(area_id)
        if kept is not None and self._clock() - kept[0] < self._settings.screen_cache_seconds:
            feed = kept[1]
        else:
            task = self._running.get(area_id)
            if task is None:
                task = asyncio.create_task(self._refresh(area_id), name=f"screen-feed-{area_id}")
                self._running[area_id] = task
                task.add_done_callback(lambda done: self._finished(area_id, done))
            feed = await asyncio.shield(task)
        if feed is None:
            raise NotFound("No such area.")
        return feed

    async def _refresh(self, area_id: uuid.UUID) -> ScreenFeed | None:
        self.computations += 1
        async with session_scope(self._sessionmaker) as session:
            feed = await service.compute(session, self._settings, area_id, datetime.now(UTC))
        if len(self._kept) >= MAX_KEPT:
            self._forget_stale()
        self._kept[area_id] = (self._clock(), feed)
        return feed

    def _finished(self, area_id: uuid.UUID, task: asyncio.Task[ScreenFeed | None]) -> None:
        if self._running.get(area_id) is task:
            del self._running[area_id]
        # Retrieved here, so that a failure nobody awaited any more is not
        # reported as "never retrieved"; those who await it still get it.
        if not task.cancelled():
            task.exception()

    def _forget_stale(self) -> None:
        now = self._clock()
        ttl = self._settings.screen_cache_seconds
        for area_id in [a for a, (at, _) in self._kept.items() if now - at >= ttl]:
            del self._kept[area_id]

    def close(self) -> None:
        self.closing.set()
