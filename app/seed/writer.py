"""Writing rows with COPY over a plain asyncpg connection.

Spatial values go in as EWKB through PostGIS's own binary input functions
(geometry_recv / geography_recv), so there is no staging table and no text
parsing: the `geometry` and `geography` types get a binary codec that passes
bytes through. Rows are streamed: asyncpg encodes them as the iterator yields
them, so a COPY of millions of rows holds only its buffer in memory.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

Connection = Any  # asyncpg.Connection, untyped (asyncpg ships no stubs)

PROGRESS_EVERY = 100_000  # rows between progress lines (on stderr)


def _passthrough(value: bytes) -> bytes:
    return value


async def connect(dsn: str) -> Connection:
    """A connection whose geometry/geography values are EWKB bytes both ways."""
    conn = await asyncpg.connect(dsn, server_settings={"application_name": "hulian-seed"})
    try:
        rows = await conn.fetch(
            "SELECT t.typname, n.nspname FROM pg_type t"
            " JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE t.typname IN ('geometry', 'geography')"
        )
        for row in rows:
            await conn.set_type_codec(
                row["typname"],
                schema=row["nspname"],
                encoder=_passthrough,
                decoder=_passthrough,
                format="binary",
            )
    except BaseException:
        await conn.close()
        raise
    return conn


class CopyWriter:
    """COPYs rows into tables, counting them and reporting progress on stderr."""

    def __init__(self, conn: Connection, *, total_teams: int, quiet: bool = False) -> None:
        self._conn = conn
        self._total_teams = total_teams
        self._quiet = quiet
        self._started = time.perf_counter()
        self._since_report = 0
        self.rows: dict[str, int] = {}

    async def copy(
        self, table: str, columns: Sequence[str], rows: Iterable[tuple[object, ...]]
    ) -> int:
        status: str = await self._conn.copy_records_to_table(
            table, records=rows, columns=list(columns)
        )
        count = int(status.rsplit(" ", 1)[-1])
        self.rows[table] = self.rows.get(table, 0) + count
        self._since_report += count
        return count

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def progress(self, teams_done: int) -> None:
        """One line on stderr when PROGRESS_EVERY rows were written since the last."""
        if self._quiet or self._since_report < PROGRESS_EVERY:
            return
        self._since_report = 0
        elapsed = time.perf_counter() - self._started
        print(
            f"seed: {teams_done:,}/{self._total_teams:,} teams, {self.total_rows:,} rows,"
            f" {elapsed:.1f} s",
            file=sys.stderr,
            flush=True,
        )
