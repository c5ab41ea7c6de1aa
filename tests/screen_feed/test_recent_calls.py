"""A street's screen lists its newest calls without reading every call of
the street: each community's newest along its (community_id, created_at)
index, then the newest of those. The same answer as reading them all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.screen_feed import service

CALLS = 3000
LIMIT = 7

# The old statement, as the control: every call of the area, then a sort.
_ALL_THEN_SORT = f"""
    {service._SCOPE}
    SELECT c.id FROM call c
    WHERE c.community_id IN (SELECT id FROM communities) AND c.grid_id IN (SELECT id FROM grids)
      AND c.created_at <= CAST(:until AS timestamptz)
    ORDER BY c.created_at DESC, c.id DESC
    LIMIT :limit
"""


async def test_a_street_s_newest_calls_are_read_per_community(connection: AsyncConnection) -> None:
    street = (
        await connection.execute(text("SELECT id FROM area WHERE level = 'street' LIMIT 1"))
    ).scalar_one()
    # Calls spread over the street's grids; some in the future of `until`,
    # and ties on created_at (the id breaks them).
    await connection.execute(
        text(
            """
            WITH grids AS (
                SELECT g.id, b.parent_id AS community, c.parent_id AS street,
                       row_number() OVER (ORDER BY g.id) AS n, count(*) OVER () AS many
                FROM area g JOIN area b ON b.id = g.parent_id JOIN area c ON c.id = b.parent_id
                WHERE g.level = 'grid' AND c.parent_id = :street
            )
            INSERT INTO call (id, resident_id, status, category, location, grid_id,
                              community_id, street_id, escalation_level, rounds, created_at)
            SELECT gen_random_uuid(), (SELECT id FROM person LIMIT 1), 'resolved', 'visit',
                   ST_SetSRID(ST_MakePoint(113.93, 22.77), 4326)::geography,
                   g.id, g.community, g.street, 'grid', 1,
                   now() - make_interval(mins => i / 2)
            FROM generate_series(1, :n) AS i
            JOIN grids g ON g.n = 1 + (i * 7919) % g.many
            """
        ),
        {"street": street, "n": CALLS},
    )
    await connection.execute(text("ANALYZE call"))
    values = {
        "area": street,
        "until": datetime.now(UTC) - timedelta(minutes=3),
        "grain": timedelta(minutes=15),
        "limit": LIMIT,
    }

    control = await _plan(connection, _ALL_THEN_SORT, values)
    assert "Seq Scan on call" in control, control
    plan = await _plan(connection, service._RECENT.text, values)
    assert "ix_call_community_id_created_at" in plan, plan
    assert "Seq Scan on call" not in plan, plan

    expected = (await connection.execute(text(_ALL_THEN_SORT), values)).scalars().all()
    assert len(expected) == LIMIT
    shown = (await connection.execute(service._RECENT, values)).all()
    at = (
        await connection.execute(
            text(
                "SELECT date_bin(CAST(:grain AS interval), created_at, "
                "TIMESTAMPTZ '2000-01-01 00:00Z') AS at, grid_id FROM call "
                "WHERE id = ANY(:ids) ORDER BY created_at DESC, id DESC"
            ),
            {"grain": values["grain"], "ids": list(expected)},
        )
    ).all()
    assert [(row.at, row.grid_id) for row in shown] == [(row.at, row.grid_id) for row in at]


async def _plan(connection: AsyncConnection, sql: str, values: dict[str, object]) -> str:
    rows = await connection.execute(text("EXPLAIN " + sql), values)
    return "\n".join(rows.scalars())
