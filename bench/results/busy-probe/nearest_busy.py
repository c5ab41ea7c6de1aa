"""The nearest-teams statement with the busy check as a scalar subquery
(today's `availability.busy`) against `NOT EXISTS` (before), on a kept
`bench run` database filled with 20,000 members on duty, 3,000 of them on
calls in progress (`--seed` adds them once; the database is thrown away
after).

    python -m bench run ... --keep-db
    python bench/results/busy-probe/nearest_busy.py <database> --seed
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import asyncpg

from app.dispatch import policy
from app.duty import availability

_SEED_DUTY = """
WITH p AS (
    INSERT INTO person (id, phone, display_name)
    SELECT gen_random_uuid(), '+86100' || CAST(80000000 + i AS text), 'busy-probe'
    FROM generate_series(1, 20000) AS i
    RETURNING id)
INSERT INTO duty (person_id, on_duty, since, location, accuracy_m, located_at)
SELECT id, true, now(),
       ST_SetSRID(ST_MakePoint(113.88 + random() * 0.1, 22.73 + random() * 0.08),
                  4326)::geography, 10, now()
FROM p
"""
_SEED_CALLS = """
INSERT INTO call (id, resident_id, status, category, location, grid_id, community_id,
                  street_id, escalation_level, rounds, responder_id)
SELECT gen_random_uuid(), d.person_id, 'on_site', 'urgent', d.location,
       c0.grid_id, c0.community_id, c0.street_id, 'grid', 1, d.person_id
FROM duty d JOIN person p ON p.id = d.person_id AND p.display_name = 'busy-probe',
     (SELECT grid_id, community_id, street_id FROM call LIMIT 1) c0
LIMIT 3000
"""
_LITERALS = {
    ":lng": "113.93",
    ":lat": "22.77",
    "CAST(:max_age AS interval)": "interval '600 seconds'",
    ":radius_m": "3000",
    ":k": "16",
    "CAST(:skip AS uuid[])": "ARRAY[]::uuid[]",
    ":want": "1",
    "CAST(:team_min_members AS integer)": "1",
    "CAST(:team_min_full_time AS integer)": "0",
}


def _statements() -> dict[str, str]:
    now = policy._NEAREST_TEAMS.text
    for name, value in sorted(_LITERALS.items(), key=lambda kv: -len(kv[0])):
        now = now.replace(name, value)
    scalar = availability.busy("d.person_id")
    assert scalar in now
    before = now.replace(
        scalar,
        "EXISTS (SELECT 1 FROM call busy WHERE busy.responder_id = d.person_id"
        " AND busy.status IN ('accepted', 'en_route', 'on_site'))",
    )
    return {"NOT EXISTS (before)": before, "scalar probe (now)": now}


async def main(db: str, seed: bool) -> None:
    conn = await asyncpg.connect(
        f"postgresql://postgres@127.0.0.1:5432/{db}", server_settings={"jit": "off"}
    )
    if seed:
        await conn.execute(_SEED_DUTY)
        await conn.execute(_SEED_CALLS)
        await conn.execute("ANALYZE")
    statements = _statements()
    for name, sql in statements.items():
        plan = [r[0] for r in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)]
        text = "\n".join(plan)
        print(
            f"{name}: anti join {'Anti Join' in text}, "
            f"probe {'uq_call_responder_active' in text}, {plan[1].strip()}"
        )
    times: dict[str, list[float]] = {name: [] for name in statements}
    for _ in range(6):
        for name, sql in statements.items():
            for _ in range(50):
                start = time.perf_counter()
                await conn.fetch(sql)
                times[name].append((time.perf_counter() - start) * 1000)
    for name, ms in times.items():
        print(f"{name}: p50 {statistics.median(ms):.3f} ms, min {min(ms):.3f} ms")
    await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--seed", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.db, args.seed))
