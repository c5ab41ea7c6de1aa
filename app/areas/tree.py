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
