"""What one recheck of a held hole costs the live hub, by how many events
were read past it: the statement of 154366d (re-reads all of them) against
today's `_FOLLOWING` (reads the missing id and newer ones only).

    git show 154366d:app/events/hub.py > /tmp/hub_old.py
    python -m bench run ... --keep-db            # any run: a filled database
    python bench/results/hub-ahead/recheck_cost.py <database> /tmp/hub_old.py
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from types import ModuleType

import asyncpg

from app.events import hub as new


def _load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("hub_old", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hub_old"] = module
    spec.loader.exec_module(module)
    return module


async def main(db: str, old_path: str) -> None:
    old = _load(old_path)
    conn = await asyncpg.connect(
        f"postgresql://postgres@127.0.0.1:5432/{db}", server_settings={"jit": "off"}
    )
    top = await conn.fetchval("SELECT max(id) FROM event")
    for held in (10, 50, 200):
        d = top - held - 1  # the hole is id d+1; d+2 .. top were read
        cases = (
            ("154366d re-read", old._NEW, (d, new.BATCH)),
            ("_FOLLOWING", new._FOLLOWING, (d, [d + 1], top, 1 + new.BATCH)),
        )
        for name, query, args in cases:
            statement = await conn.prepare(query)
            for _ in range(20):
                await statement.fetch(*args)
            n = 300
            start = time.perf_counter()
            for _ in range(n):
                rows = await statement.fetch(*args)
            ms = (time.perf_counter() - start) / n * 1000
            print(f"held {held:4d} {name}: {ms:.3f} ms a recheck, {len(rows)} rows")
    await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
