"""`python -m app seed`: one transaction that builds the demo district, or
does nothing, or refuses; never half of it."""

from __future__ import annotations

import json
import time
from typing import Any

import asyncpg
import shapely

from app.core import locks
from app.core.config import AppEnv, Settings
from app.core.db import asyncpg_dsn
from app.core.locks import Lock
from app.core.phones import DEMO_PHONE_PREFIX
from app.seed.geometry import District, build_district
from app.seed.ids import IdSpace
from app.seed.options import SeedOptions, SeedRefused, SeedReport, describe
from app.seed.population import (
    ACTIVITY_COLUMNS,
    DUTY_COLUMNS,
    HOUSEHOLD_COLUMNS,
    MEMBER_COLUMNS,
    PAIRING_COLUMNS,
    PERSON_COLUMNS,
    RESIDENT_COLUMNS,
    TEAM_COLUMNS,
    Population,
)
from app.seed.writer import Connection, CopyWriter, connect

# Serialises seeders on one database.
_LOCK_KEY = "demo"

# What --replace wipes (CASCADE: and whatever references them).
SEED_TABLES = (
    "area",
    "team",
    "team_member",
    "duty",
    "person",
    "household",
    "household_pairing",
    "household_resident",
    "activity",
    "seed_state",
)
AREA_COLUMNS = ("id", "level", "parent_id", "code", "name", "boundary")


async def run_seed(settings: Settings, options: SeedOptions) -> SeedReport:
    """Seed the demo district, or say it is already there, or refuse
    (SeedRefused, a SystemExit with the reason)."""
    options.check()
    started = time.perf_counter()
    conn = await connect(asyncpg_dsn(settings.database_url_str))
    try:
        report = await _seed(conn, settings, options, started)
    except asyncpg.UndefinedTableError as exc:
        raise SeedRefused(f"{exc}: run `python -m app migrate` first") from exc
    finally:
        await conn.close()
    print(report.summary, flush=True)
    return report


async def _seed(
    conn: Connection, settings: Settings, options: SeedOptions, started: float
) -> SeedReport:
    params = options.params()
    production = settings.app_env is AppEnv.production
    async with conn.transaction():
        await conn.execute("SET LOCAL statement_timeout = 0")
        await locks.xact_lock_asyncpg(conn, Lock.seed, _LOCK_KEY)
        stored = await conn.fetchval("SELECT params FROM seed_state WHERE name = $1", options.scale)
        if stored is not None:
            previous: dict[str, Any] = json.loads(stored)
            if previous == params:
                if not production:
                    # The demo district comes back to life: its on-duty
                    # volunteers' positions are fresh again, or dispatch
                    # (DUTY_POSITION_MAX_AGE_SECONDS) would ignore them all.
                    await conn.execute("UPDATE duty SET located_at = now() WHERE on_duty = true")
                return SeedReport(False, params, time.perf_counter() - started)
            if not options.replace:
                raise SeedRefused(
                    f"the database holds the demo district seeded with {describe(previous)}, "
                    f"not {describe(params)}; run with --replace to wipe it and seed again"
                )
            if production:
                raise SeedRefused("--replace is refused in production (APP_ENV=production)")
            await _wipe(conn)
        else:
            foreign = await _foreign_rows(conn, strict=production)
            if foreign and production:
                raise SeedRefused(
                    f"refusing to seed in production: the database holds rows the seeder did "
                    f"not make ({', '.join(foreign)})"
                )
            if foreign:
                if not options.replace:
                    raise SeedRefused(
                        f"the database holds rows the seeder did not make ({', '.join(foreign)}); "
                        "run with --replace to wipe them and seed (dev and test only)"
                    )
                await _wipe(conn)

        counts = await _write(conn, options, settings)
        await conn.execute(
            "INSERT INTO seed_state (name, params) VALUES ($1, $2::jsonb)",
            options.scale,
            json.dumps(params),
        )
        for table in SEED_TABLES:
            await conn.execute(f"ANALYZE {table}")
    return SeedReport(True, params, time.perf_counter() - started, counts)


_FOREIGN_ROWS = """
SELECT EXISTS (SELECT 1 FROM area) AS area,
       EXISTS (SELECT 1 FROM team) AS team,
       EXISTS (SELECT 1 FROM team_member) AS team_member,
       EXISTS (SELECT 1 FROM duty) AS duty,
       EXISTS (SELECT 1 FROM household) AS household,
       EXISTS (SELECT 1 FROM household_pairing) AS household_pairing,
       EXISTS (SELECT 1 FROM household_resident) AS household_resident,
       EXISTS (SELECT 1 FROM person WHERE $1 OR starts_with(phone, $2)) AS person
"""


async def _foreign_rows(conn: Connection, *, strict: bool) -> list[str]:
    """Tables holding rows that would clash with the demo district. People
    with real phones (an admin made by create-admin) do not clash, except in
    production (`strict`), where nothing may be there before a seed."""
    row = await conn.fetchrow(_FOREIGN_ROWS, strict, DEMO_PHONE_PREFIX)
    return [table for table, present in row.items() if present]


async def _wipe(conn: Connection) -> None:
    await conn.execute(f"TRUNCATE {', '.join(SEED_TABLES)} CASCADE")


async def _write(conn: Connection, options: SeedOptions, settings: Settings) -> dict[str, int]:
    district = build_district(options.seed)
    now = await conn.fetchval("SELECT now()")  # the transaction's time, as created_at
    writer = CopyWriter(conn, total_teams=options.team_count)

    area_ids = IdSpace(options.seed, "area")
    await writer.copy("area", AREA_COLUMNS, _area_rows(district, area_ids))
    grid_ids = [area_ids[i] for i in district.grid_areas]

    population = Population(
        district,
        grid_ids,
        seed=options.seed,
        teams=options.team_count,
        on_duty=options.on_duty,
        now=now,
        zone=settings.zone,
    )
    party_members = 0
    teams_done = 0
    for batch in population.batches():
        await writer.copy("team", TEAM_COLUMNS, batch.team_rows())
        await writer.copy("person", PERSON_COLUMNS, batch.person_rows())
        await writer.copy("team_member", MEMBER_COLUMNS, batch.member_rows())
        if batch.counts.on_duty:
            await writer.copy("duty", DUTY_COLUMNS, batch.duty_rows())
        await writer.copy("household", HOUSEHOLD_COLUMNS, batch.household_rows())
        await writer.copy("household_pairing", PAIRING_COLUMNS, batch.pairing_rows())
        await writer.copy("person", PERSON_COLUMNS, batch.resident_person_rows())
        await writer.copy("household_resident", RESIDENT_COLUMNS, batch.resident_rows())
        await writer.copy("activity", ACTIVITY_COLUMNS, batch.activity_rows())
        party_members += batch.counts.party_members
        teams_done += batch.counts.teams
        writer.progress(teams_done)
    return {**writer.rows, "party_members": party_members}


def _area_rows(district: District, ids: IdSpace) -> list[tuple[object, ...]]:
    return [
        (
            ids[i],
            area.level.value,
            None if area.parent is None else ids[area.parent],
            area.code,
            area.name,
            shapely.to_wkb(area.boundary, include_srid=True),
        )
        for i, area in enumerate(district.areas)
    ]
