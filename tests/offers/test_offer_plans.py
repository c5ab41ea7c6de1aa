"""A call's open offers are read through the call's index, also in a surge
whose open offers the table's statistics do not know of yet (ANALYZE comes
after a tenth of the table changed): never by reading the partial index of
every open offer of the district, once per statement."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.areas import service as areas
from app.core.config import Settings
from app.offers import lifecycle
from tests.scene import make_resident, make_team

LAT, LNG = 22.77, 113.93
SURGE = 3000

# One statement written the old way, as the control: it shows the plan the
# others must not have (if it stops showing it, this test says nothing).
_TOGETHER = "SELECT id FROM offer WHERE call_id = :c AND status = 'open' ORDER BY id"


async def _plan(connection: AsyncConnection, sql: str, call: uuid.UUID) -> str:
    rows = await connection.execute(text("EXPLAIN " + sql), {"c": call})
    return "\n".join(rows.scalars())


async def test_a_call_s_open_offers_are_read_through_the_call(
    connection: AsyncConnection, session: AsyncSession, settings: Settings
) -> None:
    team = await make_team(session, settings, LAT, LNG, members=1)
    resident = await make_resident(session, settings)
    area = await areas.locate_ids(session, LAT, LNG)
    await session.flush()
    # A district's history: many calls, each offered once, the offers closed.
    await connection.execute(
        text(
            """
            WITH c AS (
                INSERT INTO call (id, resident_id, status, category, location, grid_id,
                                  community_id, street_id, escalation_level, rounds)
                SELECT gen_random_uuid(), :r, 'offered', 'urgent',
                       ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                       :g, :cm, :st, 'grid', 1
                FROM generate_series(1, :n)
                RETURNING id)
            INSERT INTO offer (id, call_id, team_id, status, round, distance_m, expires_at)
            SELECT gen_random_uuid(), c.id, :t, 'withdrawn', 1, 10, now() + interval '1 hour'
            FROM c
            """
        ),
        {
            "r": resident.person_id,
            "lat": LAT,
            "lng": LNG,
            "g": area.grid,
            "cm": area.community,
            "st": area.street,
            "n": SURGE,
            "t": team.id,
        },
    )
    await connection.execute(text("ANALYZE offer"))
    # Then the surge: all of them open, the statistics not yet told.
    ours = {"t": team.id}
    await connection.execute(text("UPDATE offer SET status = 'open' WHERE team_id = :t"), ours)
    one = text("SELECT call_id FROM offer WHERE team_id = :t LIMIT 1")
    call = (await connection.execute(one, ours)).scalar_one()

    control = await _plan(connection, _TOGETHER, call)
    assert "ix_offer_open_expires_at" in control, control
    # The one statement of a call's open offers (withdrawing them on an
    # accept or a cancel; asking whether any is left when one lapses).
    plan = await _plan(connection, lifecycle._OPEN_OF_CALL.text, call)
    assert "ix_offer_call_id" in plan, plan
    assert "ix_offer_open_expires_at" not in plan, plan
