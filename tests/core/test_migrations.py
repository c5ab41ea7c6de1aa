"""The migrations are the schema: upgrade, compare with the models, downgrade.

Alembic's `compare_metadata` sees neither the body of a CHECK constraint nor
the WHERE of a partial index, so the database the migrations build is also
compared, CHECK by CHECK and index by index, with one `metadata.create_all`
builds: both catalogues are read back from PostgreSQL (`pg_get_constraintdef`,
`pg_indexes.indexdef`), so both sides are normalised by the same server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.core import migrations
from app.models import metadata
from tests.dbutil import database_url, drop_database, migrated_database, recreate_database

pytestmark = pytest.mark.processes


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


# --- CHECK constraints and indexes, definition by definition ---------------

# (kind, table, name): kind is "check" or "index".
Key = tuple[str, str, str]
Catalogue = dict[Key, str]

_CATALOGUE = text(
    """
    SELECT 'check', rel.relname, con.conname, pg_get_constraintdef(con.oid)
    FROM pg_constraint con
    JOIN pg_class rel ON rel.oid = con.conrelid
    JOIN pg_namespace nsp ON nsp.oid = rel.relnamespace
    WHERE con.contype = 'c' AND nsp.nspname = 'public'
    UNION ALL
    SELECT 'index', tablename, indexname, indexdef
    FROM pg_indexes
    WHERE schemaname = 'public'
    """
)
_SCHEMA_PREFIX = re.compile(r"\bON (ONLY )?public\.")


class Difference(NamedTuple):
    kind: str
    table: str
    name: str
    migrated: str | None  # None: missing in the database the migrations built
    model: str | None  # None: not declared by the models

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.name} on {self.table}:\n"
            f"    migrated: {self.migrated or '(missing)'}\n"
            f"    model:    {self.model or '(missing)'}"
        )


def declared() -> set[Key]:
    """The CHECK constraints and indexes the metadata declares by name."""
    keys: set[Key] = set()
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, CheckConstraint):
                keys.add(("check", table.name, str(constraint.name)))
        keys.update(("index", table.name, str(index.name)) for index in table.indexes)
    return keys


async def catalogue(conn: AsyncConnection) -> Catalogue:
    """The CHECKs and indexes (primary-key and unique ones included) of the
    metadata's tables; objects on other tables (PostGIS's, Alembic's) are left
    out, and so are triggers and functions, which only migrations create."""
    tables = {table.name for table in metadata.tables.values()}
    rows = await conn.execute(_CATALOGUE)
    return {
        (kind, table, name): _SCHEMA_PREFIX.sub(lambda m: f"ON {m.group(1) or ''}", definition)
        for kind, table, name, definition in rows
        if table in tables
    }


def compare(migrated: Catalogue, model: Catalogue) -> list[Difference]:
    """Every CHECK or index whose definition differs, or that one side lacks."""
    return [
        Difference(*key, migrated.get(key), model.get(key))
        for key in sorted(migrated.keys() | model.keys())
        if migrated.get(key) != model.get(key)
    ]


def report(differences: list[Difference]) -> str:
    return "schema drift between the migrations and the models:\n" + "\n".join(
        str(d) for d in differences
    )


async def _catalogue_of(url: str) -> Catalogue:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await catalogue(conn)
    finally:
        await engine.dispose()


async def _create_all(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            # What the first migration creates before any table.
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def model_catalogue() -> Iterator[Catalogue]:
    """The catalogue of a scratch database built by `metadata.create_all`."""
    url = database_url("models")
    recreate_database(url)
    try:
        asyncio.run(_create_all(url))
        yield asyncio.run(_catalogue_of(url))
    finally:
        drop_database(url)


def test_create_all_builds_every_declared_check_and_index(
    model_catalogue: Catalogue,
) -> None:
    # Otherwise a name PostgreSQL truncated or a convention gone wrong would
    # leave a declared object out of the comparison.
    assert declared() - model_catalogue.keys() == set()


async def test_checks_and_indexes_match_the_models(
    scratch_url: str, model_catalogue: Catalogue
) -> None:
    differences = compare(await _catalogue_of(scratch_url), model_catalogue)
    assert differences == [], report(differences)


def _call_status_without_last() -> str:
    """ck_call_status's expression with its last status dropped."""
    (check,) = (
        c
        for c in metadata.tables["call"].constraints
        if isinstance(c, CheckConstraint) and c.name == "ck_call_status"
    )
    body = str(check.sqltext)
    fewer = re.sub(r",[^,{}']*\}'", "}'", body)
    assert fewer != body, body
    return fewer


DRIFTS: dict[str, tuple[list[str], set[Key]]] = {
    "check-body-and-partial-predicate": (
        [
            "ALTER TABLE call DROP CONSTRAINT ck_call_status, "
            "ADD CONSTRAINT ck_call_status CHECK ({call_status})",
            "DROP INDEX ix_duty_location_on_duty",
            "CREATE INDEX ix_duty_location_on_duty ON duty USING gist (location) WHERE NOT on_duty",
        ],
        {("check", "call", "ck_call_status"), ("index", "duty", "ix_duty_location_on_duty")},
    ),
    "index-columns": (
        [
            "DROP INDEX ix_call_resident_id_created_at",
            "CREATE INDEX ix_call_resident_id_created_at ON call (resident_id)",
        ],
        {("index", "call", "ix_call_resident_id_created_at")},
    ),
    "declared-but-missing": (
        [
            "ALTER TABLE offer DROP CONSTRAINT ck_offer_status",
            "DROP INDEX ix_offer_open_expires_at",
        ],
        {("check", "offer", "ck_offer_status"), ("index", "offer", "ix_offer_open_expires_at")},
    ),
    "only-in-the-migrations": (
        [
            "ALTER TABLE call ADD CONSTRAINT ck_call_note_short CHECK (length(note) < 100)",
            "CREATE INDEX ix_call_note ON call (note)",
        ],
        {("check", "call", "ck_call_note_short"), ("index", "call", "ix_call_note")},
    ),
}


@pytest.mark.parametrize("drift", sorted(DRIFTS))
async def test_drift_is_reported(scratch_url: str, model_catalogue: Catalogue, drift: str) -> None:
    statements, expected = DRIFTS[drift]
    engine = create_async_engine(scratch_url)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            try:
                clean = await catalogue(conn)
                for statement in statements:
                    await conn.execute(
                        text(statement.format(call_status=_call_status_without_last()))
                    )
                drifted = await catalogue(conn)
            finally:
                # DDL is transactional: the scratch database is left as built.
                await transaction.rollback()
    finally:
        await engine.dispose()

    # Only what the statements changed: any real drift is the other test's.
    already = set(compare(clean, model_catalogue))
    differences = [d for d in compare(drifted, model_catalogue) if d not in already]
    assert {(d.kind, d.table, d.name) for d in differences} == expected, report(differences)
    for d in differences:
        key = (d.kind, d.table, d.name)
        assert d.migrated == drifted.get(key) != clean.get(key)
        assert d.model == model_catalogue.get(key)
        assert str(d).startswith(f"{d.kind} {d.name} on {d.table}:")
    if drift == "check-body-and-partial-predicate":
        by_name = {d.name: d for d in differences}
        status = by_name["ck_call_status"].migrated
        assert status is not None
        assert "escalated" in clean[("check", "call", "ck_call_status")]
        assert "escalated" not in status
        on_duty = by_name["ix_duty_location_on_duty"].migrated
        assert on_duty is not None
        assert on_duty.endswith("WHERE (NOT on_duty)")


async def test_upgrade_head_matches_the_models(scratch_url: str) -> None:
    assert await _diff_of(scratch_url) == []
    tables = await _tables(scratch_url)
    expected = {t.name for t in metadata.sorted_tables}
    assert expected <= tables


def test_downgrade_to_base_and_back(scratch_url: str, model_catalogue: Catalogue) -> None:
    migrations.downgrade(scratch_url, "base", configure_logging=False)
    left = asyncio.run(_tables(scratch_url))
    assert left <= {"alembic_version", "spatial_ref_sys"}, left
    migrations.upgrade(scratch_url, "head", configure_logging=False)
    assert asyncio.run(_diff_of(scratch_url)) == []
    differences = compare(asyncio.run(_catalogue_of(scratch_url)), model_catalogue)
    assert differences == [], report(differences)
