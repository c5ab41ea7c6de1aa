from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import StreamingResponse

from app.http.deps import OriginDep, SettingsDep
from app.http.prefix import API_PREFIX
from app.models.screen_feed import ScreenFeed
from app.screen_feed.cache import ScreenFeeds
from app.screen_feed.limits import AddressLimiter
from app.screen_feed.stream import feed_events

# Public: no route here names a principal (app/http/deps.py), so no token
# or key is asked for, and one sent is not looked at.
router = APIRouter(prefix=f"{API_PREFIX}/public/screens", tags=["screens"])

EVENT_STREAM = "text/event-stream"

AreaId = Annotated[
    uuid.UUID,
    Path(description="the area shown: a street, community, grid branch or grid"),
]


async def get_feeds(request: Request) -> ScreenFeeds:
    feeds: ScreenFeeds = request.app.state.screen_feeds
    return feeds


FeedsDep = Annotated[ScreenFeeds, Depends(get_feeds)]


async def limit_screen_requests(request: Request, origin: OriginDep) -> None:
    """SCREEN_REQUESTS_PER_MINUTE per client address, per process (429
    `rate_limited`; app/screen_feed/limits.py)."""
    if origin.ip:
        limiter: AddressLimiter = request.app.state.screen_limiter
        limiter.hit(origin.ip)


RateLimited = Depends(limit_screen_requests)


@router.get("/{area_id}", dependencies=[RateLimited])
async def get_screen_feed(area_id: AreaId, feeds: FeedsDep) -> ScreenFeed:
    """What a public screen (党群亮服务可视屏) of the area shows, without a
    token: today's calls counted (from midnight in the district's time zone), the members
    on duty, the teams with their service content and on-duty counts, the
    latest calls by category and grid only (older than
    the screen delay, 300 s by default; times rounded down to the quarter hour), and the
    month's stars by display name and team. Nothing names or locates a
    resident. Computed at most once every few seconds per area in each
    process. 404 for an unknown area; 429 `rate_limited` past
    the requests allowed per client address (60 a minute by default)."""
    return await feeds.get(area_id)


@router.get(
    "/{area_id}/stream",
    dependencies=[RateLimited],
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `retry:`, then an event `feed` (data: the "
            "ScreenFeed as JSON) at once and again whenever it changed, else a keep-alive "
            "comment, every few seconds (10 by default)",
            "content": {
                EVENT_STREAM: {
                    "schema": {"type": "string"},
                    "example": 'retry: 10000\n\nevent: feed\ndata: {"area": {...}}\n\n',
                }
            },
        }
    },
)
async def stream_screen_feed(
    area_id: AreaId, feeds: FeedsDep, settings: SettingsDep
) -> StreamingResponse:
    """The same feed as a Server-Sent Events stream for a screen that stays
    open all day (an `EventSource`): the feed at once, then again whenever
    it changes. Streams of an area share one computation every few
    seconds; a stream makes no query of its own. 404 for an
    unknown area (before the stream starts); 429 `rate_limited` as for the
    feed, counted when a stream is opened."""
    first = await feeds.get(area_id)
    return StreamingResponse(
        feed_events(
            feeds,
            area_id,
            first,
            settings.screen_stream_seconds,
            settings.screen_stream_max_seconds,
        ),
        media_type=EVENT_STREAM,
        # Not kept by any cache, and not held back by a buffering proxy.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
