"""The demo-district seeder, checked with SQL on PostGIS.

The first half reads the session's test database (seeded by conftest with
`--scale guangming --seed 42`); the second half seeds scratch databases of
its own through the command line, as a developer would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from pydantic import PostgresDsn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import AppEnv, Settings, get_settings
from app.core.db import asyncpg_dsn
from app.core.months import Month
from app.core.phones import DEMO_PHONE_PREFIX, demo_phone
from app.models.team import TeamStatus
from app.seed import SeedOptions, run_seed
from app.teams import rules
from tests.dbutil import PROJECT_ROOT, drop_database, migrated_database
from tests.principals import TEST_PHONE_BASE

# Tolerances on geography areas, in m².
AREA_TOLERANCE_M2 = 1.0
OVERLAP_TOLERANCE_M2 = 0.01


async def scalar(conn: AsyncConnection, sql: str, **params: Any) -> Any:
    return (await conn.execute(text(sql), params)).scalar_one()


# The demo district (seed 42).


async def test_the_district_has_the_organisation_s_counts(connection: AsyncConnection) -> None:
    levels: dict[str, int] = dict(
        (await connection.execute(text("SELECT level, count(*) FROM area GROUP BY level"))).all()
    )
    assert levels == {"street": 1, "community": 6, "grid_branch": 48, "grid": 150}
    assert await scalar(connection, "SELECT count(*) FROM team") == 270
    assert await scalar(connection, "SELECT count(*) FROM person WHERE is_party_member") == 1485
    # Each seeded person is on exactly one team, but the households'
    # residents. (Seeded: the demo phones below the tests' range; tests
    # that commit people of their own leave them behind.)
    row = (
        await connection.execute(
            text(
                "SELECT (SELECT count(*) FROM person p WHERE starts_with(p.phone, :demo)"
                "   AND p.phone < :tests AND p.id NOT IN"
                "   (SELECT person_id FROM household_resident)),"
                " count(*), count(DISTINCT m.person_id)"
                " FROM team_member m JOIN person p ON p.id = m.person_id"
                " WHERE starts_with(p.phone, :demo) AND p.phone < :tests"
            ),
            {"demo": DEMO_PHONE_PREFIX, "tests": demo_phone(TEST_PHONE_BASE)},
        )
    ).one()
    assert row[0] == row[1] == row[2] == 2171
    params = await scalar(
        connection, "SELECT params::text FROM seed_state WHERE name = 'guangming'"
    )
    assert json.loads(params) == {"scale": "guangming", "seed": 42, "teams": 270, "on_duty": 0.3}


async def test_areas_are_valid_multipolygons_with_codes(connection: AsyncConnection) -> None:
    rows = (
        await connection.execute(
            text(
                "SELECT code, name, ST_IsValid(boundary), GeometryType(boundary), ST_SRID(boundary)"
                " FROM area"
            )
        )
    ).all()
    assert len(rows) == 205
    assert all(
        valid and kind == "MULTIPOLYGON" and srid == 4326 for _, _, valid, kind, srid in rows
    )
    names = {code: name for code, name, *_ in rows}
    assert names["GM"] == "光明街道"
    assert {names[f"GM-C{i}"] for i in range(1, 7)} == {
        f"{n}社区" for n in ("光明", "东周", "翠湖", "碧眼", "白花", "迳口")
    }
    assert names["GM-C1-B3"] == "光明社区第3网格党支部"
    assert names["GM-C1-B3-G2"] == "光明社区第3-2网格"


async def test_the_street_is_about_30_km2_around_guangming(connection: AsyncConnection) -> None:
    area, covers_centre, vertices = (
        await connection.execute(
            text(
                "SELECT ST_Area(boundary::geography),"
                " ST_Covers(boundary, ST_SetSRID(ST_MakePoint(113.93, 22.77), 4326)),"
                " ST_NPoints(boundary)"
                " FROM area WHERE level = 'street'"
            )
        )
    ).one()
    assert 29e6 < area < 31e6
    assert covers_centre
    assert vertices > 50  # an irregular outline, not a box


async def test_parents_are_one_level_up(connection: AsyncConnection) -> None:
    pairs = (
        await connection.execute(
            text(
                "SELECT c.level, p.level, count(*) FROM area c"
                " LEFT JOIN area p ON p.id = c.parent_id GROUP BY 1, 2"
            )
        )
    ).all()
    assert sorted(pairs) == [
        ("community", "street", 6),
        ("grid", "grid_branch", 150),
        ("grid_branch", "community", 48),
        ("street", None, 1),
    ]
    per_community = await scalar(
        connection,
        "SELECT array_agg(DISTINCT n) FROM (SELECT count(*) n FROM area"
        " WHERE level = 'grid_branch' GROUP BY parent_id) x",
    )
    assert per_community == [8]
    per_branch = await scalar(
        connection,
        "SELECT array_agg(DISTINCT n ORDER BY n) FROM (SELECT count(*) n FROM area"
        " WHERE level = 'grid' GROUP BY parent_id) x",
    )
    assert set(per_branch) <= {3, 4}


async def test_grids_tile_the_street(connection: AsyncConnection) -> None:
    grid_sum, union_area, street_area, difference = (
        await connection.execute(
            text(
                "SELECT sum(ST_Area(g.boundary::geography)),"
                " ST_Area(ST_Union(g.boundary)::geography),"
                " ST_Area(s.boundary::geography),"
                " ST_Area(ST_SymDifference(ST_Union(g.boundary), s.boundary)::geography)"
                " FROM area g, area s WHERE g.level = 'grid' AND s.level = 'street'"
                " GROUP BY s.boundary"
            )
        )
    ).one()
    assert abs(grid_sum - union_area) < AREA_TOLERANCE_M2
    assert abs(union_area - street_area) < AREA_TOLERANCE_M2
    assert difference < AREA_TOLERANCE_M2


@pytest.mark.parametrize(
    ("parent_level", "child_level"),
    [
        ("street", "community"),
        ("community", "grid_branch"),
        ("grid_branch", "grid"),
    ],
)
async def test_children_tile_each_parent(
    connection: AsyncConnection, parent_level: str, child_level: str
) -> None:
    rows = (
        await connection.execute(
            text(
                "SELECT p.code, sum(ST_Area(c.boundary::geography)),"
                " ST_Area(ST_Union(c.boundary)::geography), ST_Area(p.boundary::geography),"
                " ST_Area(ST_SymDifference(ST_Union(c.boundary), p.boundary)::geography)"
                " FROM area p JOIN area c ON c.parent_id = p.id"
                " WHERE p.level = :parent AND c.level = :child"
                " GROUP BY p.code, p.boundary"
            ),
            {"parent": parent_level, "child": child_level},
        )
    ).all()
    assert rows
    for code, child_sum, union_area, parent_area, difference in rows:
        assert abs(child_sum - union_area) < AREA_TOLERANCE_M2, code
        assert abs(union_area - parent_area) < AREA_TOLERANCE_M2, code
        assert difference < AREA_TOLERANCE_M2, code


async def test_grids_do_not_overlap(connection: AsyncConnection) -> None:
    pairs, worst = (
        await connection.execute(
            text(
                "SELECT count(*), max(ST_Area(ST_Intersection(a.boundary, b.boundary)::geography))"
                " FROM area a JOIN area b ON a.boundary && b.boundary AND a.id < b.id"
                " WHERE a.level = 'grid' AND b.level = 'grid'"
            )
        )
    ).one()
    assert pairs > 150  # neighbours were compared
    assert worst < OVERLAP_TOLERANCE_M2


async def test_every_team_has_its_base_in_its_grid(connection: AsyncConnection) -> None:
    outside, not_a_grid, grids_without = (
        await connection.execute(
            text(
                "SELECT count(*) FILTER (WHERE NOT ST_Covers(g.boundary, t.base::geometry)),"
                " count(*) FILTER (WHERE g.level <> 'grid'),"
                " (SELECT count(*) FROM area a WHERE a.level = 'grid'"
                "   AND NOT EXISTS (SELECT 1 FROM team x WHERE x.grid_id = a.id))"
                " FROM team t JOIN area g ON g.id = t.grid_id"
            )
        )
    ).one()
    assert (outside, not_a_grid, grids_without) == (0, 0, 0)
    names = (await connection.execute(text("SELECT name, service_content FROM team"))).all()
    assert all(name.endswith("红小二党员服务队") and content for name, content in names)


async def test_every_team_has_three_members_and_a_full_time_one(
    connection: AsyncConnection,
) -> None:
    smallest, fewest_full_time = (
        await connection.execute(
            text(
                "SELECT min(n), min(f) FROM (SELECT count(m.person_id) n,"
                " count(m.person_id) FILTER (WHERE m.kind = 'full_time') f"
                " FROM team t LEFT JOIN team_member m ON m.team_id = t.id GROUP BY t.id) x"
            )
        )
    ).one()
    assert smallest >= 3
    assert fewest_full_time >= 1
    wrong = await scalar(
        connection,
        "SELECT count(*) FROM team_member m JOIN person p ON p.id = m.person_id"
        " WHERE (m.kind = 'full_time') <> (m.affiliation = 'grid_party_member')"
        " OR p.is_party_member <> (m.affiliation IN"
        "   ('grid_party_member', 'in_service_party_member'))"
        " OR cardinality(m.roles) NOT BETWEEN 1 AND 2",
    )
    assert wrong == 0


async def test_every_seeded_team_is_active_under_the_team_rule(
    connection: AsyncConnection, settings: Settings
) -> None:
    """The rule as the app asks it (`app.teams.rules`), with the default
    TEAM_MIN_MEMBERS and TEAM_MIN_FULL_TIME: the demo district is offered
    calls everywhere."""
    teams = list((await connection.execute(text("SELECT id FROM team"))).scalars())
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as session:
        statuses = await rules.statuses(session, settings, teams)
    assert len(statuses) == len(teams) == 270
    assert set(statuses.values()) == {TeamStatus.active}


async def test_party_members_look_after_3_to_5_households(connection: AsyncConnection) -> None:
    fewest, most, members = (
        await connection.execute(
            text(
                "SELECT min(n), max(n), count(*) FROM (SELECT p.id, count(h.household_id) n"
                " FROM person p LEFT JOIN household_pairing h ON h.person_id = p.id"
                " WHERE p.is_party_member GROUP BY p.id) x"
            )
        )
    ).one()
    assert (members, fewest >= 3, most <= 5) == (1485, True, True)
    unpaired_or_odd = await scalar(
        connection,
        "SELECT count(*) FROM household h"
        " JOIN area g ON g.id = h.grid_id"
        " WHERE g.level <> 'grid' OR NOT ST_Covers(g.boundary, h.location::geometry)"
        " OR cardinality(h.vulnerabilities) = 0"
        " OR (SELECT count(*) FROM household_pairing x WHERE x.household_id = h.id) <> 1",
    )
    assert unpaired_or_odd == 0
    non_party = await scalar(
        connection,
        "SELECT count(*) FROM household_pairing x JOIN person p ON p.id = x.person_id"
        " WHERE NOT p.is_party_member",
    )
    assert non_party == 0


async def test_some_residents_live_in_paired_households(connection: AsyncConnection) -> None:
    residents, households, on_teams, unpaired = (
        await connection.execute(
            text(
                "SELECT count(*), count(DISTINCT r.household_id),"
                " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM team_member m"
                "   WHERE m.person_id = r.person_id)),"
                " count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM household_pairing x"
                "   WHERE x.household_id = r.household_id))"
                " FROM household_resident r"
            )
        )
    ).one()
    total = await scalar(connection, "SELECT count(*) FROM household")
    # About half the households, one resident each, nobody on a team.
    assert 0.4 < residents / total < 0.6
    assert (households, on_teams, unpaired) == (residents, 0, 0)


async def test_members_have_logged_activities_and_some_are_short_of_the_quota(
    connection: AsyncConnection,
) -> None:
    """Last month: every full-time member 1 to 6 activities (so the quota
    list of a dispatcher has people on it), nothing after the start of today,
    and a household named only by a member paired with it."""
    zone = ZoneInfo(get_settings().timezone)
    now = datetime.now(zone)
    last = Month.of(now, zone).previous()
    rows = (
        await connection.execute(
            text(
                """
                SELECT m.person_id, count(a.id) AS n
                FROM team_member m
                LEFT JOIN activity a ON a.person_id = m.person_id AND a.source = 'logged'
                     AND a.at >= :start AND a.at < :end
                WHERE m.kind = 'full_time'
                  AND m.person_id IN (SELECT id FROM person WHERE starts_with(phone, :demo))
                GROUP BY m.person_id
                """
            ),
            {"start": last.start(zone), "end": last.end(zone), "demo": DEMO_PHONE_PREFIX},
        )
    ).all()
    counts = [n for _, n in rows]
    assert counts
    assert min(counts) >= 1
    assert max(counts) <= 6
    quota = get_settings().monthly_activity_quota
    assert 0 < sum(n < quota for n in counts) < len(counts)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert (
        await scalar(
            connection,
            "SELECT count(*) FROM activity a JOIN person p ON p.id = a.person_id"
            " WHERE starts_with(p.phone, :demo) AND a.source = 'logged' AND a.at >= :today",
            demo=DEMO_PHONE_PREFIX,
            today=today,
        )
        == 0
    )
    assert (
        await scalar(
            connection,
            "SELECT count(*) FROM activity a WHERE a.household_id IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM household_pairing x"
            "  WHERE x.person_id = a.person_id AND x.household_id = a.household_id)",
        )
        == 0
    )
    assert (
        await scalar(
            connection,
            "SELECT count(*) FROM activity WHERE household_id IS NOT NULL AND source = 'logged'",
        )
        > 0
    )


async def test_every_phone_is_in_the_demo_range(connection: AsyncConnection) -> None:
    outside = await scalar(
        connection, r"SELECT count(*) FROM person WHERE phone !~ '^\+86100[0-9]{8}$'"
    )
    assert outside == 0


async def test_about_30_percent_are_on_duty_near_their_base(connection: AsyncConnection) -> None:
    members, on_duty, far, inaccurate = (
        await connection.execute(
            text(
                "SELECT (SELECT count(*) FROM team_member),"
                " count(*) FILTER (WHERE d.on_duty),"
                " count(*) FILTER (WHERE NOT ST_DWithin(d.location, t.base, 301)),"
                " count(*) FILTER (WHERE d.accuracy_m NOT BETWEEN 5 AND 50"
                "   OR d.since IS NULL OR d.located_at IS NULL)"
                " FROM duty d JOIN team_member m ON m.person_id = d.person_id"
                " JOIN team t ON t.id = m.team_id"
            )
        )
    ).one()
    assert 0.25 < on_duty / members < 0.35
    assert (far, inaccurate) == (0, 0)


# Scratch databases, seeded through the command line.


def seed_cli(url: str, *args: str, app_env: str = "test") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": app_env}
    return subprocess.run(
        [sys.executable, "-m", "app", "seed", "--scale", "guangming", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def seed_ok(url: str, *args: str) -> str:
    result = seed_cli(url, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


# Every seeded column but the timestamps, in a stable order.
FINGERPRINTS = {
    "area": "id, level, parent_id, code, name, ST_AsEWKB(boundary)",
    "team": "id, name, grid_id, ST_AsEWKB(base::geometry), service_content",
    "person": "id, phone, display_name, is_party_member, is_admin",
    "team_member": "team_id, person_id, kind, roles, affiliation",
    "duty": "person_id, on_duty, ST_AsEWKB(location::geometry), accuracy_m",
    "household": "id, address, grid_id, ST_AsEWKB(location::geometry), vulnerabilities",
    "household_pairing": "person_id, household_id",
    "household_resident": "person_id, household_id",
    "activity": "id, person_id, team_id, kind, source, at, duration_min, household_id",
}


async def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """(row count, md5 of the ordered rows) of each seeded table."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        result: dict[str, tuple[int, str]] = {}
        for table, columns in FINGERPRINTS.items():
            row = await conn.fetchrow(
                f"SELECT count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), ''))"
                f" FROM (SELECT {columns} FROM {table}) r"
            )
            result[table] = (row[0], row[1])
        return result
    finally:
        await conn.close()


async def fetch(url: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def scratch(database_url: str) -> Iterator[str]:
    """A migrated database of this module's own, dropped at the end. (It
    depends on `database_url` so the base test database exists first.)"""
    url = migrated_database("seedtest")
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="module")
async def seven(scratch: str) -> dict[str, tuple[int, str]]:
    """The scratch database seeded with --seed 7 --teams 300, and its fingerprint."""
    seed_ok(scratch, "--seed", "7", "--teams", "300")
    return await fingerprint(scratch)


@pytest.fixture(scope="module")
def twin(database_url: str) -> Iterator[str]:
    """A second scratch database, seeded like `seven`, dropped at the end."""
    url = migrated_database("seedtwin")
    try:
        seed_ok(url, "--seed", "7", "--teams", "300")
        yield url
    finally:
        drop_database(url)


@pytest.mark.processes
async def test_the_same_seed_gives_the_same_rows(
    twin: str, seven: dict[str, tuple[int, str]]
) -> None:
    assert await fingerprint(twin) == seven
    assert seven["area"][0] == 205
    assert seven["team"][0] == 300


@pytest.mark.processes
async def test_seeding_again_does_not_duplicate(
    scratch: str, seven: dict[str, tuple[int, str]]
) -> None:
    out = seed_ok(scratch, "--seed", "7", "--teams", "300")
    assert "already seeded" in out
    assert await fingerprint(scratch) == seven


@pytest.mark.processes
async def test_seeding_again_brings_on_duty_positions_up_to_date(
    scratch: str, seven: dict[str, tuple[int, str]]
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(scratch))
    try:
        await conn.execute("UPDATE duty SET located_at = now() - interval '2 hours'")
        seed_ok(scratch, "--seed", "7", "--teams", "300")
        stale = await conn.fetchval(
            "SELECT count(*) FROM duty WHERE on_duty AND located_at < now() - interval '1 minute'"
        )
        fresh = await conn.fetchval("SELECT count(*) FROM duty WHERE on_duty")
    finally:
        await conn.close()
    assert fresh > 0
    assert stale == 0
    assert await fingerprint(scratch) == seven, "nothing else changed"


@pytest.mark.processes
async def test_other_params_are_refused_without_replace(
    scratch: str, seven: dict[str, tuple[int, str]]
) -> None:
    result = seed_cli(scratch, "--seed", "8")
    assert result.returncode != 0
    assert "--replace" in result.stderr
    assert await fingerprint(scratch) == seven


@pytest.mark.processes
async def test_production_refuses_replace_and_foreign_rows(
    scratch: str, seven: dict[str, tuple[int, str]]
) -> None:
    production = Settings.model_construct(
        app_env=AppEnv.production, database_url=PostgresDsn(scratch)
    )
    replace = SeedOptions(scale="guangming", seed=8, teams=None, on_duty=0.3, replace=True)
    with pytest.raises(SystemExit, match="production"):
        await run_seed(production, replace)
    # Without the seeder's record, the rows are not the seeder's: refused too.
    state = await fetch(scratch, "DELETE FROM seed_state RETURNING params")
    try:
        with pytest.raises(SystemExit, match="production"):
            await run_seed(production, replace)
        refused = seed_cli(scratch, "--seed", "7", "--teams", "300")
        assert refused.returncode != 0
        assert "did not make" in refused.stderr
    finally:
        await fetch(
            scratch,
            "INSERT INTO seed_state (name, params) VALUES ('guangming', "
            '\'{"scale": "guangming", "seed": 7, "teams": 300, "on_duty": 0.3}\')',
        )
    assert len(state) == 1
    assert await fingerprint(scratch) == seven


@pytest.mark.processes
async def test_replace_reseeds_at_scale_with_nobody_on_duty(
    scratch: str, seven: dict[str, tuple[int, str]]
) -> None:
    out = seed_ok(scratch, "--seed", "8", "--teams", "1000", "--on-duty", "0", "--replace")
    assert "seeded" in out
    [row] = await fetch(
        scratch,
        """
        SELECT (SELECT count(*) FROM team) AS teams,
               (SELECT count(*) FROM person WHERE is_party_member) AS party,
               (SELECT count(*) FROM duty WHERE on_duty) AS on_duty,
               (SELECT count(*) FROM area) AS areas,
               (SELECT min(n) FROM (SELECT count(m.person_id) n FROM team t
                  LEFT JOIN team_member m ON m.team_id = t.id GROUP BY t.id) x) AS smallest,
               (SELECT min(n) FROM (SELECT count(*) FILTER (WHERE m.kind = 'full_time') n
                  FROM team t LEFT JOIN team_member m ON m.team_id = t.id GROUP BY t.id) x)
                 AS fewest_full_time,
               (SELECT count(*) FROM area a WHERE a.level = 'grid' AND NOT EXISTS
                  (SELECT 1 FROM team t WHERE t.grid_id = a.id)) AS grids_without_team,
               (SELECT count(*) FROM team t JOIN area g ON g.id = t.grid_id
                  WHERE NOT ST_Covers(g.boundary, t.base::geometry)) AS bases_outside,
               (SELECT min(n) || '-' || max(n) FROM (SELECT count(*) n FROM household_pairing
                  GROUP BY person_id) x) AS households_each,
               (SELECT params FROM seed_state) AS params
        """,
    )
    facts = dict(row)
    assert json.loads(facts.pop("params")) == {
        "scale": "guangming",
        "seed": 8,
        "teams": 1000,
        "on_duty": 0.0,
    }
    assert facts.pop("smallest") >= 3
    assert facts.pop("fewest_full_time") >= 1
    assert facts == {
        "teams": 1000,
        "party": 5500,  # 1,485 × 1000 / 270
        "on_duty": 0,
        "areas": 205,
        "grids_without_team": 0,
        "bases_outside": 0,
        "households_each": "3-5",
    }
    assert await fingerprint(scratch) != seven
