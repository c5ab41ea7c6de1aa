"""The migrations are the schema: upgrade, compare with the models, downgrade."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.core import migrations
from app.models import metadata
from tests.dbutil import drop_database, migrated_database


@pytest.fixture(scope="module")
def scratch_url() -> Iterator[str]:
    url = migrated_database("migrations")
    yield url
    drop_database(url)


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_object": migrations.include_object,
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    return list(compare_metadata(context, metadata))


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


async def _diff_of(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_diff)
    finally:
        await engine.dispose()


async def test_upgrade_head_matches_the_models(scratch_url: str) -> None:
    assert await _diff_of(scratch_url) == []
    tables = await _tables(scratch_url)
    expected = {t.name for t in metadata.sorted_tables}
    assert expected <= tables


def test_downgrade_to_base_and_back(scratch_url: str) -> None:
    import asyncio

    migrations.downgrade(scratch_url, "base", configure_logging=False)
    left = asyncio.run(_tables(scratch_url))
    assert left <= {"alembic_version", "spatial_ref_sys"}, left
    migrations.upgrade(scratch_url, "head", configure_logging=False)
    assert asyncio.run(_diff_of(scratch_url)) == []
