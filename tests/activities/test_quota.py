"""GET /dispatch/quota against a month counted by hand."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.activities import quota
from app.core.config import Settings
from app.core.months import Month
from tests.principals import Cast, make_cast, make_person
from tests.problems import assert_problem

MONTH = "2026-06"
# The month's edges in Shanghai, and just outside them.
FIRST = datetime.fromisoformat("2026-06-01T00:00:00+08:00")  # 2026-05-31T16:00Z: June here
LAST = datetime.fromisoformat("2026-06-30T23:59:59+08:00")
BEFORE = FIRST - timedelta(seconds=1)  # May here, though 31 May 15:59 UTC is May too
AFTER = datetime.fromisoformat("2026-07-01T00:00:00+08:00")  # 30 June 16:00 UTC: July here
MIDDLE = datetime.fromisoformat("2026-06-15T12:00:00+08:00")


async def _team_near(session: AsyncSession, seeded: uuid.UUID, name: str) -> uuid.UUID:
    team_id = uuid.uuid4()
    await session.execute(
        text(
            "INSERT INTO team (id, name, grid_id, base) "
            "SELECT :id, :name, grid_id, base FROM team WHERE id = :seeded"
        ),
        {"id": team_id, "name": name, "seeded": seeded},
    )
    return team_id


async def _member(session: AsyncSession, name: str, *teams: tuple[uuid.UUID, str]) -> uuid.UUID:
    person = await make_person(session, name)
    for team, kind in teams:
        await session.execute(
            text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, :k)"),
            {"t": team, "p": person, "k": kind},
        )
    return person


async def _activities(
    session: AsyncSession,
    person: uuid.UUID,
    team: uuid.UUID,
    *ats: datetime,
    disputed: bool = False,
) -> None:
    for at in ats:
        await session.execute(
            text(
                "INSERT INTO activity (id, person_id, team_id, kind, at, disputed) "
                "VALUES (:id, :p, :t, 'safety', :at, :d)"
            ),
            {"id": uuid.uuid4(), "p": person, "t": team, "at": at, "d": disputed},
        )


@pytest.fixture
async def cast(session: AsyncSession, settings: Settings) -> Cast:
    return await make_cast(session, settings)


async def test_the_quota_list_against_a_hand_count(
    anon_client: httpx.AsyncClient, session: AsyncSession, cast: Cast
) -> None:
    one = await _team_near(session, cast.team_x, "Quota A team")  # community 1
    two = await _team_near(session, cast.team_y, "Quota B team")  # community 2
    ft = "full_time"
    zero = await _member(session, "零次", (one, ft))
    two_done = await _member(session, "两次", (one, ft))
    three = await _member(session, "三次", (one, ft))
    four = await _member(session, "四次", (one, ft))
    part_time = await _member(session, "兼职", (one, "part_time"))
    elsewhere = await _member(session, "别处", (two, ft))
    both = await _member(session, "两队", (two, ft), (one, ft))
    disabled = await _member(session, "停用", (one, ft))
    await session.execute(
        text("UPDATE person SET disabled_at = now() WHERE id = :p"), {"p": disabled}
    )

    # Outside June in Shanghai (one of them inside June in UTC): none count.
    await _activities(session, zero, one, BEFORE, AFTER)
    # Two that count, and a disputed one that does not.
    await _activities(session, two_done, one, FIRST, MIDDLE)
    await _activities(session, two_done, one, MIDDLE, disputed=True)
    # June's very first and last seconds count.
    await _activities(session, three, one, FIRST, MIDDLE, LAST)
    await _activities(session, four, one, FIRST, MIDDLE, MIDDLE, LAST)
    await _activities(session, elsewhere, two, MIDDLE)
    # One with each team: two, for the one person.
    await _activities(session, both, one, MIDDLE)
    await _activities(session, both, two, LAST)

    async def report(who: str, **params: Any) -> dict[str, Any]:
        answer = await anon_client.get(
            "/api/v1/dispatch/quota", params={"month": MONTH, **params}, headers=cast.headers[who]
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        assert body["month"] == MONTH
        assert body["required"] == 3
        counts = [row["activities"] for row in body["data"]]
        assert counts == sorted(counts), "fewest first"
        for row in body["data"]:
            assert row["activities"] < 3
            assert row["short_by"] == 3 - row["activities"]
        return body

    mine = {zero, two_done, three, four, part_time, elsewhere, both, disabled}

    def ours(body: dict[str, Any]) -> dict[uuid.UUID, tuple[int, int, str]]:
        found = [row for row in body["data"] if uuid.UUID(row["person_id"]) in mine]
        ids = [row["person_id"] for row in found]
        assert len(ids) == len(set(ids)), "each person once"
        return {
            uuid.UUID(row["person_id"]): (row["activities"], row["short_by"], row["team"]["name"])
            for row in found
        }

    assert ours(await report("dispatcher_c1")) == {
        zero: (0, 3, "Quota A team"),
        two_done: (2, 1, "Quota A team"),
        both: (2, 1, "Quota A team"),
    }
    assert ours(await report("dispatcher_c2")) == {
        elsewhere: (1, 2, "Quota B team"),
        both: (2, 1, "Quota B team"),
    }
    # Everywhere: the person of two teams once, under the first by name.
    assert ours(await report("admin")) == {
        zero: (0, 3, "Quota A team"),
        two_done: (2, 1, "Quota A team"),
        both: (2, 1, "Quota A team"),
        elsewhere: (1, 2, "Quota B team"),
    }
    named = {row["display_name"] for row in (await report("dispatcher_c1"))["data"]}
    assert {"零次", "两次", "两队"} <= named
    assert not {"三次", "四次", "兼职", "停用", "别处"} & named

    # Every full-time member of community 1 is listed but for the two who
    # made the quota: the seeded ones have no activity in June 2026.
    full_time_c1 = (
        await session.execute(
            text(
                """
                SELECT count(DISTINCT m.person_id) FROM team_member m
                JOIN team t ON t.id = m.team_id JOIN area g ON g.id = t.grid_id
                JOIN area b ON b.id = g.parent_id JOIN person p ON p.id = m.person_id
                WHERE m.kind = 'full_time' AND b.parent_id = :c AND p.disabled_at IS NULL
                """
            ),
            {"c": cast.community_1},
        )
    ).scalar_one()
    assert len((await report("dispatcher_c1"))["data"]) == full_time_c1 - 2


async def test_who_may_ask_and_what_month(
    anon_client: httpx.AsyncClient, session: AsyncSession, cast: Cast
) -> None:
    for who in ("resident_a", "volunteer_x"):
        refused = await anon_client.get("/api/v1/dispatch/quota", headers=cast.headers[who])
        assert_problem(refused, 403, "not_staff")
    for month, code in (("2026-13", "validation_error"), ("1999-12", "invalid_month")):
        refused = await anon_client.get(
            "/api/v1/dispatch/quota", params={"month": month}, headers=cast.headers["admin"]
        )
        assert_problem(refused, 422, code)
    current = await anon_client.get("/api/v1/dispatch/quota", headers=cast.headers["admin"])
    assert current.status_code == 200
    now = (
        await session.execute(text("SELECT to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')"))
    ).scalar_one()
    assert current.json()["month"] == now


async def test_an_area_of_any_level_lists_the_members_of_its_grids(
    session: AsyncSession, settings: Settings
) -> None:
    """A report's area may be a grid or a grid branch: its quota sheet lists
    the full-time members of the teams on its grids, as a community's does."""
    quiet = Month(2001, 1)  # no activity: every full-time member is short
    grid, branch, community, street = (
        await session.execute(
            text(
                "SELECT g.id, b.id, c.id, c.parent_id FROM team t"
                " JOIN team_member m ON m.team_id = t.id AND m.kind = 'full_time'"
                " JOIN area g ON g.id = t.grid_id JOIN area b ON b.id = g.parent_id"
                " JOIN area c ON c.id = b.parent_id ORDER BY g.code LIMIT 1"
            )
        )
    ).one()
    of_grid = set(
        (
            await session.execute(
                text(
                    "SELECT m.person_id FROM team_member m JOIN team t ON t.id = m.team_id"
                    " JOIN person p ON p.id = m.person_id"
                    " WHERE t.grid_id = :grid AND m.kind = 'full_time'"
                    " AND p.disabled_at IS NULL"
                ),
                {"grid": grid},
            )
        ).scalars()
    )
    assert of_grid

    async def listed(area: uuid.UUID | None) -> set[uuid.UUID]:
        return {s.person_id for s in await quota.shortfalls(session, settings, quiet, area)}

    assert await listed(grid) == of_grid
    assert of_grid < await listed(branch) <= await listed(community) < await listed(street)
    assert await listed(street) == await listed(None)
