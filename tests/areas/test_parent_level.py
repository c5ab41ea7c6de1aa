"""The database refuses an area whose parent is not of the level above
(the `area_parent_level` constraint trigger), whoever writes it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping

import pytest
from sqlalchemy import TextClause, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.models.enums import PARENT_LEVEL, AreaLevel

_FIRST = text("SELECT id FROM area WHERE level = :level ORDER BY code LIMIT 1")
_CHILDREN = text("SELECT id FROM area WHERE parent_id = :parent")
_INSERT = text(
    """
    INSERT INTO area (id, level, parent_id, code, name, boundary)
    SELECT :id, :level, :parent, :code, 'test area', boundary FROM area WHERE id = :parent
    """
)
_MOVE = text("UPDATE area SET parent_id = :parent WHERE id = :id")
_PAIRS = ", ".join(f"('{c.value}', '{p.value}')" for c, p in PARENT_LEVEL.items() if p)
_MISPLACED = text(
    "SELECT count(*) FROM area c JOIN area p ON p.id = c.parent_id"
    f" WHERE (c.level, p.level) NOT IN ({_PAIRS})"
)
_RELEVEL = text("UPDATE area SET level = :level, parent_id = :parent WHERE id = :id")


async def _first(session: AsyncSession, level: AreaLevel) -> uuid.UUID:
    found: uuid.UUID = (await session.execute(_FIRST, {"level": level.value})).scalar_one()
    return found


async def _refused(
    session: AsyncSession, statement: TextClause, params: Mapping[str, object]
) -> str:
    savepoint = await session.begin_nested()
    with pytest.raises(IntegrityError) as caught:
        await session.execute(statement, dict(params))
    await savepoint.rollback()
    assert caught.value.orig is not None
    cause = caught.value.orig.__cause__  # asyncpg's error, under the DBAPI adapter's
    assert getattr(cause, "sqlstate", None) == "23514"  # check_violation
    assert getattr(cause, "constraint_name", None) == "area_parent_level"
    return str(getattr(cause, "message", ""))


async def test_a_grid_inserted_under_a_community_is_refused(session: AsyncSession) -> None:
    community = await _first(session, AreaLevel.community)
    new = uuid.uuid4()
    message = await _refused(
        session,
        _INSERT,
        {"id": new, "level": "grid", "parent": community, "code": "T-GRID-IN-COMMUNITY"},
    )
    assert message == f"area {new}: a grid must lie in a grid_branch, not in a community"


async def test_an_area_of_each_level_is_taken_under_the_level_above_only(
    session: AsyncSession,
) -> None:
    parents = {level: await _first(session, level) for level in AreaLevel}
    for level, parent_level in PARENT_LEVEL.items():
        if parent_level is None:
            continue
        for wrong in AreaLevel:
            params = {
                "id": uuid.uuid4(),
                "level": level.value,
                "parent": parents[wrong],
                "code": f"T-{level.value}-{wrong.value}",
            }
            if wrong is parent_level:
                savepoint = await session.begin_nested()
                assert (await session.execute(_INSERT, params)).rowcount == 1  # type: ignore[attr-defined]
                await savepoint.rollback()
            else:
                message = await _refused(session, _INSERT, params)
                assert f"a {level.value} must lie in a {parent_level.value}" in message


async def test_a_grid_moved_under_a_community_is_refused(session: AsyncSession) -> None:
    grid = await _first(session, AreaLevel.grid)
    community = await _first(session, AreaLevel.community)
    message = await _refused(session, _MOVE, {"id": grid, "parent": community})
    assert message == f"area {grid}: a grid must lie in a grid_branch, not in a community"


async def test_an_area_whose_new_level_strands_its_children_is_refused(
    session: AsyncSession,
) -> None:
    """A grid branch made a grid (under another grid branch: its own parent
    is right) would leave its grids under a grid."""
    branch = await _first(session, AreaLevel.grid_branch)
    other = (
        await session.execute(
            text("SELECT id FROM area WHERE level = 'grid_branch' AND id <> :b ORDER BY code"),
            {"b": branch},
        )
    ).scalar()
    children = set((await session.execute(_CHILDREN, {"parent": branch})).scalars())
    assert children
    message = await _refused(session, _RELEVEL, {"id": branch, "level": "grid", "parent": other})
    assert message in {
        f"area {child}: a grid must lie in a grid_branch, not in a grid" for child in children
    }


@pytest.mark.parametrize("first", ["relevel", "insert"])
async def test_a_child_and_a_new_level_for_its_parent_at_once_are_not_both_taken(
    engine: AsyncEngine, first: str
) -> None:
    """Two transactions: one makes an empty grid branch a grid, the other
    puts a grid under it. Each alone is right; whichever comes second waits
    for the first (the parent's row is locked FOR SHARE), then is refused."""
    parent, lone = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as setup:  # committed: both transactions must see it
        community, branch = (
            await setup.execute(
                text(
                    "SELECT b.parent_id, b.id FROM area b WHERE b.level = 'grid_branch'"
                    " ORDER BY b.code LIMIT 1"
                )
            )
        ).one()
        await setup.execute(
            _INSERT,
            {"id": parent, "level": "grid_branch", "parent": community, "code": "T-RACE-B"},
        )
    relevel = _RELEVEL, {"id": parent, "level": "grid", "parent": branch}
    insert = _INSERT, {"id": lone, "level": "grid", "parent": parent, "code": "T-RACE-G"}
    one, two = (relevel, insert) if first == "relevel" else (insert, relevel)
    try:
        async with engine.connect() as a, engine.connect() as b:
            await a.begin()
            await b.begin()
            await a.execute(*one)
            second = asyncio.create_task(b.execute(*two))
            await asyncio.sleep(0.5)
            assert not second.done(), "the second waits for the first to end"
            await a.commit()
            with pytest.raises(IntegrityError) as caught:
                await second
            assert "must lie in a grid_branch, not in a grid" in str(caught.value)
            await b.rollback()
        async with engine.connect() as check:
            assert (await check.execute(_MISPLACED)).scalar_one() == 0
    finally:
        async with engine.begin() as cleanup:
            await cleanup.execute(
                text("DELETE FROM area WHERE id IN (:a, :b)"), {"a": lone, "b": parent}
            )
