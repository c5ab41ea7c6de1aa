"""app.areas.tree on the demo district, against the tree walked in Python
from its (id, parent_id) rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.areas import tree
from app.models.area import Area
from app.models.enums import PARENT_LEVEL, AreaLevel


@dataclass(frozen=True)
class Rows:
    parent: dict[uuid.UUID, uuid.UUID | None]
    level: dict[uuid.UUID, AreaLevel]

    def up(self, area_id: uuid.UUID) -> tuple[uuid.UUID, ...]:
        chain = [area_id]
        while (parent := self.parent[chain[-1]]) is not None:
            chain.append(parent)
        return tuple(chain)

    def below(self, area_id: uuid.UUID) -> set[uuid.UUID]:
        return {a for a in self.parent if area_id in self.up(a)}

    def first(
        self,
        level: AreaLevel,
        *,
        not_under: uuid.UUID | None = None,
        not_over: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """The first area of `level` (by id) that is not `not_under` nor
        inside it, and is not `not_over` nor contains it."""
        return min(
            a
            for a, lv in self.level.items()
            if lv is level
            and (not_under is None or not_under not in self.up(a))
            and (not_over is None or a not in self.up(not_over))
        )


async def _rows(session: AsyncSession) -> Rows:
    rows = (await session.execute(text("SELECT id, parent_id, level FROM area"))).all()
    return Rows({r.id: r.parent_id for r in rows}, {r.id: AreaLevel(r.level) for r in rows})


_INSIDE = text(f"SELECT id, level FROM ({tree.inside(':area')}) inside")
_EVERYTHING = text(f"SELECT id FROM ({tree.inside(':area', everything_when_null=True)}) inside")


async def test_the_levels_run_from_the_street_down_and_every_parent_is_one_level_up(
    session: AsyncSession,
) -> None:
    assert (
        AreaLevel.street,
        AreaLevel.community,
        AreaLevel.grid_branch,
        AreaLevel.grid,
    ) == tree.LEVELS
    rows = await _rows(session)
    assert {rows.level[a] for a in rows.parent} == set(tree.LEVELS)
    for area, parent in rows.parent.items():
        expected = PARENT_LEVEL[rows.level[area]]
        assert (rows.level[parent] if parent is not None else None) is expected
        assert len(rows.up(area)) == tree.LEVELS.index(rows.level[area]) + 1 <= tree.DEPTH


async def test_inside_is_the_area_and_everything_under_it_at_every_level(
    session: AsyncSession,
) -> None:
    rows = await _rows(session)
    sizes: dict[AreaLevel, int] = {}
    for area in rows.parent:
        found = (await session.execute(_INSIDE, {"area": area})).all()
        ids = [r.id for r in found]
        assert len(ids) == len(set(ids)), "each area once"
        assert set(ids) == rows.below(area), rows.level[area]
        assert all(AreaLevel(r.level) is rows.level[r.id] for r in found)
        sizes[rows.level[area]] = max(sizes.get(rows.level[area], 0), len(ids))
    # The district has every level, with more than itself under each but a grid.
    assert sizes[AreaLevel.grid] == 1
    assert sizes[AreaLevel.grid_branch] > 1
    assert sizes[AreaLevel.community] > sizes[AreaLevel.grid_branch]
    assert sizes[AreaLevel.street] == len(rows.parent)


async def test_inside_of_no_area_is_nothing_or_everything_when_asked(
    session: AsyncSession,
) -> None:
    rows = await _rows(session)
    assert (await session.execute(_INSIDE, {"area": None})).all() == []
    assert (await session.execute(_INSIDE, {"area": uuid.uuid4()})).all() == []
    everything = (await session.execute(_EVERYTHING, {"area": None})).scalars().all()
    assert sorted(everything) == sorted(rows.parent)
    grid = rows.first(AreaLevel.grid)
    assert (await session.execute(_EVERYTHING, {"area": grid})).scalars().all() == [grid]


_GRIDS = text(f"SELECT id, name, code FROM ({tree.grids_within(':area')}) grids")
_ALL_GRIDS = text(f"SELECT id FROM ({tree.grids_within(':area', everything_when_null=True)}) grids")


async def test_grids_within_are_the_grids_inside_at_every_level(session: AsyncSession) -> None:
    rows = await _rows(session)
    named = await session.execute(text("SELECT id, name || code AS nc FROM area"))
    names: dict[uuid.UUID, str] = {r.id: r.nc for r in named}
    for area in rows.parent:
        found = (await session.execute(_GRIDS, {"area": area})).all()
        ids = [r.id for r in found]
        assert len(ids) == len(set(ids)), "each grid once"
        assert set(ids) == {a for a in rows.below(area) if rows.level[a] is AreaLevel.grid}
        assert all(r.name + r.code == names[r.id] for r in found)
    assert (await session.execute(_GRIDS, {"area": None})).all() == []
    assert (await session.execute(_GRIDS, {"area": uuid.uuid4()})).all() == []
    everything = set((await session.execute(_ALL_GRIDS, {"area": None})).scalars())
    assert everything == {a for a, level in rows.level.items() if level is AreaLevel.grid}
    branch = rows.first(AreaLevel.grid_branch)
    assert set((await session.execute(_ALL_GRIDS, {"area": branch})).scalars()) == (
        rows.below(branch) - {branch}
    )


async def test_a_grid_is_not_inside_another_community(session: AsyncSession) -> None:
    rows = await _rows(session)
    grid = rows.first(AreaLevel.grid)
    community = rows.up(grid)[2]
    other = rows.first(AreaLevel.community, not_over=grid)
    inside_other = set((await session.execute(_INSIDE, {"area": other})).scalars())
    assert grid not in inside_other
    assert grid in set((await session.execute(_INSIDE, {"area": community})).scalars())
    found = await tree.lineage(session, grid)
    assert found is not None
    assert found.within(community)
    assert not found.within(other)


async def test_inside_select_is_the_same_set_for_core(session: AsyncSession) -> None:
    rows = await _rows(session)
    branch = rows.first(AreaLevel.grid_branch)
    inside = tree.inside_select(branch)
    grids = await session.execute(
        select(col(Area.id)).where(
            col(Area.id).in_(select(inside.c.id)), col(Area.level) == AreaLevel.grid.value
        )
    )
    assert set(grids.scalars()) == rows.below(branch) - {branch}
    nothing = await session.execute(select(tree.inside_select(None).c.id))
    assert nothing.all() == []


async def test_lineage_and_within_for_every_area(session: AsyncSession) -> None:
    rows = await _rows(session)
    by_sql = await session.execute(
        text(f"SELECT a.id, {tree.chain_sql('a.id')} AS chain FROM area a")
    )
    chains = {row.id: tuple(row.chain) for row in by_sql}
    for area in rows.parent:
        found = await tree.lineage(session, area)
        assert found is not None
        assert (found.id, found.level) == (area, rows.level[area])
        assert found.chain.ids == rows.up(area) == chains[area]
        for other in rows.parent:
            # A within B exactly when A is inside B: both ways of asking agree.
            assert found.within(other) == (area in rows.below(other))
    assert await tree.lineage(session, uuid.uuid4()) is None


async def test_a_chain_gives_the_chain_of_each_area_on_it(session: AsyncSession) -> None:
    rows = await _rows(session)
    grid = rows.first(AreaLevel.grid)
    found = await tree.lineage(session, grid)
    assert found is not None
    grid_, branch, community, street = found.chain.ids
    assert grid_ == grid
    of_branch = found.chain.of(branch)
    assert of_branch is not None
    assert of_branch.ids == (branch, community, street)
    assert of_branch.within(community)
    assert of_branch.within(branch)
    assert not of_branch.within(grid), "a grid branch does not lie inside its grid"
    assert found.chain.of(rows.first(AreaLevel.grid, not_under=branch)) is None


def test_no_other_module_walks_the_tree_by_recursion() -> None:
    app = Path(tree.__file__).parents[1]
    walking = [
        str(path.relative_to(app.parent))
        for path in sorted(app.rglob("*.py"))
        if "RECURSIVE" in path.read_text(encoding="utf-8").upper()
    ]
    assert walking == [], "ask app.areas.tree for the areas inside an area"
