"""Readiness: the database and PostGIS answer."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import ServiceUnavailable

READINESS_TIMEOUT_S = 3.0


class NotReady(ServiceUnavailable):
    code = "not_ready"
    title = "Not ready"


async def check_ready(engine: AsyncEngine) -> str:
    """PostGIS's version, or NotReady when the database does not answer in time."""

    async def probe() -> str:
        async with engine.connect() as conn:
            version: str = (await conn.execute(text("SELECT postgis_lib_version()"))).scalar_one()
            return version

    try:
        return await asyncio.wait_for(probe(), READINESS_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise NotReady("The database does not answer.") from exc
    except Exception as exc:
        # Any driver or SQL error (PostGIS missing, auth refused) means not ready.
        raise NotReady("The database or PostGIS is not available.") from exc
