"""A test that runs ANALYZE in its rolled-back transaction leaves nothing
behind for the tests after it: the `connection` fixture analyses again,
committed, every table whose size the planner believes changed."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.dbutil import restore_statistics, table_sizes

ROWS = 2000


async def test_a_rolled_back_analyze_is_analysed_again(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        before = await table_sizes(conn)
        await conn.execute(
            text(
                "INSERT INTO rate_limit_hit (bucket) "
                "SELECT 'statistics-test' FROM generate_series(1, :n)"
            ),
            {"n": ROWS},
        )
        await conn.execute(text("ANALYZE rate_limit_hit"))
        await transaction.rollback()

        # The control: the rows are gone, the planner's belief in them is not.
        left = await table_sizes(conn)
        await conn.rollback()
        assert left["rate_limit_hit"] >= ROWS

        analysed = await restore_statistics(conn, before)
        assert "rate_limit_hit" in analysed
        after = await table_sizes(conn)
        there = (await conn.execute(text("SELECT count(*) FROM rate_limit_hit"))).scalar_one()
        await conn.rollback()
        assert after["rate_limit_hit"] == there
