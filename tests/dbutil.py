"""Test databases: created fresh, built by the migrations, never the demo one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEST_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/hulian_test"


def base_test_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_URL)
    name = make_url(url).database or ""
    if "test" not in name:
        raise RuntimeError(
            f"refusing to run tests on database {name!r}: its name must contain 'test' "
            "(tests drop and recreate it)"
        )
    return url


def database_url(suffix: str = "") -> str:
    """The test database URL, or a sibling database `<name>_<suffix>`."""
    url = make_url(base_test_url())
    if suffix:
        url = url.set(database=f"{url.database}_{suffix}")
    return url.render_as_string(hide_password=False)


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _recreate(url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(_dsn(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop(url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(_dsn(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def recreate_database(url: str) -> None:
    asyncio.run(_recreate(url))


def drop_database(url: str) -> None:
    asyncio.run(_drop(url))


def run_app_command(url: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `python -m app ARGS` against the database at `url`, as a user would."""
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test"}
    result = subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"python -m app {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def migrated_database(suffix: str = "") -> str:
    """A fresh database built by `python -m app migrate`."""
    url = database_url(suffix)
    recreate_database(url)
    run_app_command(url, "migrate")
    return url


# ---- statistics a rolled-back test leaves behind ------------------------------------

# ANALYZE inside a test's transaction writes the table's size (pg_class's
# reltuples and relpages) in place, and a rollback does not undo it: the
# test's own uncommitted rows stay counted, so later tests are planned for
# a table that is not there (docs/benchmarks.md, "Plans and round trips
# per event"). Its pg_statistic rows are rolled back with the rest.
_TABLE_SIZES = text(
    """
    SELECT c.relname, c.reltuples FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind = 'r'
    """
)


async def table_sizes(connection: AsyncConnection) -> dict[str, float]:
    """What the planner believes of each table's size."""
    rows = await connection.execute(_TABLE_SIZES)
    return {row.relname: row.reltuples for row in rows}


async def restore_statistics(connection: AsyncConnection, before: dict[str, float]) -> list[str]:
    """After a rollback: ANALYZE (committed) every table whose size the
    planner believes changed since `before`, so its statistics describe the
    rows that are there. The tables analysed, by name."""
    after = await table_sizes(connection)
    changed = sorted(name for name, size in after.items() if before.get(name) != size)
    for name in changed:
        await connection.execute(text(f'ANALYZE "{name}"'))
    await connection.commit()
    return changed
