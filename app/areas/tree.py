"""The area tree, and the one place that knows its shape.

Street → community → grid branch → grid: every area's parent is an area of
the level above (`app.models.enums.PARENT_LEVEL`), so the tree is four
levels deep and is walked by a join per level, never by recursion.

Two questions are answered here and nowhere else:

- "the areas inside X" (X itself included), in SQL: `inside(":area")` is a
  query of `id, level` for text() statements (a CTE, or `IN (SELECT id
  FROM (...) inside)`), `inside_select(area_id)` the same for Core;
- "is A within B": `Chain.within` on an area's chain of ids up to the
  street, which `lineage` (by id), `AreaIds.chain` (a located point) and
  `chain_sql` (an area of a row, in SQL) give.

"The grids inside X" (where teams, and so members and activities, hang) is
`grids_within(":area")`: the grids of `inside`, found the other way (see
there for when each is cheaper).

A few queries still join `area` level by level themselves, because their
plans on the demo district (EXPLAIN ANALYZE, BUFFERS; figures in the commit
that wrote this) were worse through this module:

- app/notifications/alerts.py `_TEAM_DISPATCHERS` (the dispatchers of a
  team's community or street): three primary-key steps up from one team;
  `x.area_id = ANY(chain_sql(...))` read 39 buffers against 33.
- app/events/duty.py `_READ` (the areas a member's teams lie in, for
  `keys_of`): `unnest(chain_sql(...))` per team read 24 buffers against 22
  for one member, 923 against 823 for fifty; a prepared statement, so its
  quicker planning does not pay.
- app/areas/service.py `LOCATE_SQL`: it answers every level's name, which
  a chain of ids does not carry; the joins go up from the one grid found.
- app/kpis/service.py, the calls of `_ROWS`: a call carries its community
  and street, so "in :area" is one join (the branch) per call of the
  range; with 20,000 calls added to the demo district, the street's read
  501 buffers so, 823 by `grids_within`, 647 by `inside` (a grid's 501,
  534, 506).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import String, TextClause, Uuid, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import Subquery

from app.models.enums import PARENT_LEVEL, AreaLevel


def _from_the_root() -> tuple[AreaLevel, ...]:
    levels = [next(level for level, parent in PARENT_LEVEL.items() if parent is None)]
    while child := [level for level, parent in PARENT_LEVEL.items() if parent is levels[-1]]:
        (only,) = child  # one level below each: a chain, not a tree of levels
        levels.append(only)
    return tuple(levels)


# The levels from the root down, and how many there are.
LEVELS = _from_the_root()
DEPTH = len(LEVELS)


def _descendants_at(depth: int, area: str) -> str:
    """The areas `depth` levels below `area`: from its children (an index
    scan on `area.parent_id`) down one join per level."""
    joins = "".join(f" JOIN area d{i} ON d{i}.parent_id = d{i - 1}.id" for i in range(2, depth + 1))
    # `area` is SQL of the caller's (a parameter, a column), never a value.
    return f"SELECT d{depth}.id, d{depth}.level FROM area d1{joins} WHERE d1.parent_id = {area}"  # noqa: S608


def inside(area: str, *, everything_when_null: bool = False) -> str:
    """SQL: the `id, level` of the areas inside the area whose id is the SQL
    expression `area` (a bound parameter such as `:area`), itself included.
    None when the id is null, or every area with `everything_when_null`."""
    cast = f"CAST({area} AS uuid)"
    itself = f"({cast} IS NULL OR d0.id = {cast})" if everything_when_null else f"d0.id = {cast}"
    parts = [f"SELECT d0.id, d0.level FROM area d0 WHERE {itself}"]  # noqa: S608 - as above
    parts += [_descendants_at(depth, cast) for depth in range(1, DEPTH)]
    return "\n        UNION ALL ".join(parts)


def grids_within(area: str, *, everything_when_null: bool = False) -> str:
    """SQL: the `id, name, code` of the grids inside the area whose id is the
    SQL expression `area` (the grid itself, when it is one); every grid when
    it is null and `everything_when_null`, else none.

    Each grid is joined up to its community, a join per level, and kept when
    `area` is on its chain: a scan of `area` per level, whatever `area` is.
    `inside` walks down by `area.parent_id` instead, a probe per area below
    it: cheaper for a grid, dearer for a community or the street. On the
    demo district (205 areas), the grids of the street read 33 buffers this
    way and 157 through `inside`, those of a grid 33 and 16; a street's teams
    439 and 618, a grid's 35 and 15. Dispatchers ask for their community or
    street, so the stars, KPIs, the report and the quota lists use this."""
    cast = f"CAST({area} AS uuid)"
    joins = "".join(f" JOIN area u{i} ON u{i}.id = u{i - 1}.parent_id" for i in range(1, DEPTH - 1))
    chain = ", ".join([*(f"u{i}.id" for i in range(DEPTH - 1)), f"u{DEPTH - 2}.parent_id"])
    on_chain = f"{cast} IN ({chain})"
    if everything_when_null:
        on_chain = f"({cast} IS NULL OR {on_chain})"
    return (
        f"SELECT u0.id, u0.name, u0.code FROM area u0{joins}"  # noqa: S608 - SQL of the caller's
        f" WHERE u0.level = '{LEVELS[-1].value}' AND {on_chain}"
    )


def inside_select(area_id: uuid.UUID | None, name: str = "inside") -> Subquery:
    """Core: `inside` as a subquery with columns `id` and `level`, bound to
    `area_id` (a null id: no area)."""
    clause: TextClause = text(inside(":inside_area")).bindparams(inside_area=area_id)
    return clause.columns(id=Uuid, level=String).subquery(name)


def chain_sql(area: str) -> str:
    """SQL: a scalar `uuid[]`, the chain of the area whose id is the SQL
    expression `area` (itself, then each area containing it, up to the
    street); null when there is no such area."""
    joins = "".join(
        f" LEFT JOIN area u{i} ON u{i}.id = u{i - 1}.parent_id" for i in range(1, DEPTH)
    )
    ids = ", ".join(f"u{i}.id" for i in range(DEPTH))
    return f"(SELECT array_remove(ARRAY[{ids}], NULL) FROM area u0{joins} WHERE u0.id = {area})"  # noqa: S608 - SQL of the caller's


@dataclass(frozen=True)
class Chain:
    """An area's id, then those of the areas that contain it, up to the street."""

    ids: tuple[uuid.UUID, ...]

    def within(self, area_id: uuid.UUID) -> bool:
        """Whether the first area is `area_id` or lies inside it."""
        return area_id in self.ids

    def of(self, area_id: uuid.UUID) -> Chain | None:
        """The chain of `area_id`, when it is on this one (it contains the
        first area), else None."""
        if area_id not in self.ids:
            return None
        return Chain(self.ids[self.ids.index(area_id) :])


_LINEAGE = text(
    f"SELECT a.id, a.name, a.level, {chain_sql('a.id')} AS chain FROM area a WHERE a.id = :id"  # noqa: S608 - constants
)


@dataclass(frozen=True)
class Lineage:
    """An area and the areas that contain it (itself included)."""

    id: uuid.UUID
    name: str
    level: AreaLevel
    chain: Chain

    def within(self, area_id: uuid.UUID) -> bool:
        """Whether this area is `area_id` or lies inside it."""
        return self.chain.within(area_id)


async def lineage(session: AsyncSession, area_id: uuid.UUID) -> Lineage | None:
    """The area's lineage; None when there is no such area."""
    row = (await session.execute(_LINEAGE, {"id": area_id})).first()
    if row is None:
        return None
    return Lineage(row.id, row.name, AreaLevel(row.level), Chain(tuple(row.chain)))
