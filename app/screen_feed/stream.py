"""The Server-Sent Events stream of a screen that stays open all day.

It sends `retry:` (how long the browser's EventSource waits before it
reconnects), then the feed at once as an event `feed`; then, every
SCREEN_STREAM_SECONDS, it looks at the area's feed in the process's cache
(`app.screen_feed.cache`: no query of its own, one computation per area
and period however many streams there are) and sends it again when it
changed, else a keep-alive comment, which also keeps proxies from closing
an idle connection. It ends when the client goes (Starlette cancels the
body on the disconnect), when the process stops, or after
SCREEN_STREAM_MAX_SECONDS: the EventSource then reconnects by itself, so
that screens spread over the processes again and a stopping server is
not held by them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from app.core.errors import NotFound
from app.models.screen_feed import ScreenFeed
from app.screen_feed.cache import ScreenFeeds

log = logging.getLogger(__name__)

EVENT = "feed"
KEEP_ALIVE = ": keep-alive\n\n"


def event(feed: ScreenFeed) -> str:
    """One SSE event: the whole feed as JSON on one `data:` line."""
    return f"event: {EVENT}\ndata: {feed.model_dump_json()}\n\n"


async def feed_events(
    feeds: ScreenFeeds, area_id: uuid.UUID, first: ScreenFeed, every_s: float, max_s: float
) -> AsyncIterator[str]:
    clock = asyncio.get_running_loop().time
    ends = clock() + max_s
    yield f"retry: {max(1000, round(every_s * 1000))}\n\n"
    yield event(first)
    last = first
    while (left := ends - clock()) > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(feeds.closing.wait(), timeout=min(every_s, left))
            return
        try:
            feed = await feeds.get(area_id)
        except NotFound:
            return  # the area is gone
        except Exception:  # the database away a moment: the screen keeps what it shows
            log.warning("screen feed not refreshed", exc_info=True)
            yield KEEP_ALIVE
            continue
        if feed != last:
            last = feed
            yield event(feed)
        else:
            yield KEEP_ALIVE
