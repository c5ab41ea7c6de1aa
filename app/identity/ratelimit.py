"""Sliding-window rate limits kept in PostgreSQL: they hold across server
processes and restarts. Each bucket is serialised by a transaction-scoped
advisory lock, so two requests at once cannot both take the last place."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import locks
from app.core.errors import TooManyRequests
from app.core.locks import Lock

_FORGET = text(
    "DELETE FROM rate_limit_hit WHERE bucket = :bucket AND at <= now() - CAST(:window AS interval)"
)
_WINDOW = text(
    """
    SELECT count(*) AS hits,
           extract(epoch FROM (min(at) + CAST(:window AS interval) - now())) AS retry_after
    FROM rate_limit_hit WHERE bucket = :bucket AND at > now() - CAST(:window AS interval)
    """
)
_HIT = text("INSERT INTO rate_limit_hit (bucket, at) VALUES (:bucket, now())")


async def hit(
    session: AsyncSession, bucket: str, limit: int, window: timedelta, *, what: str
) -> None:
    """Count one request against `bucket`, or raise TooManyRequests (with the
    seconds until a place frees up) when `limit` are already in the window."""
    params = {"bucket": bucket, "window": window}
    await locks.xact_lock(session, Lock.rate_limit, bucket)
    await session.execute(_FORGET, params)
    row = (await session.execute(_WINDOW, params)).one()
    if row.hits >= limit:
        raise TooManyRequests(
            f"Too many {what}; try again later.", retry_after=math.ceil(row.retry_after or 1)
        )
    await session.execute(_HIT, params)
