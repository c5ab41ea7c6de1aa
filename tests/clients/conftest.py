"""What the client tests commit is undone after each: the people and teams
(the ledger), and the rate-limit hits their logins counted (from 127.0.0.1,
which later tests of the per-address limit must find clean)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.live import Ledger


@pytest.fixture
async def ledger(engine: AsyncEngine) -> AsyncIterator[Ledger]:
    async with engine.connect() as conn:
        before = (
            await conn.execute(text("SELECT coalesce(max(id), 0) FROM rate_limit_hit"))
        ).scalar_one()
    ledger = Ledger()
    try:
        yield ledger
    finally:
        await ledger.cleanup(engine)
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM rate_limit_hit WHERE id > :n"), {"n": before})
