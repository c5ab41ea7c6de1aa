"""Areas on PostGIS: the GeoJSON map and locating a point."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas.tree import Chain
from app.core.errors import OutsideServiceArea
from app.models.area import AreaLocation, AreaRef
from app.models.enums import AreaLevel

# The whole FeatureCollection is built by PostgreSQL: one round trip, no
# geometry decoded in Python. Coordinates keep 7 decimals (about 1 cm).
_FEATURE_COLLECTION = text(
    """
    SELECT json_build_object(
        'type', 'FeatureCollection',
        'features', coalesce(json_agg(json_build_object(
            'type', 'Feature',
            'id', a.id,
            'geometry', ST_AsGeoJSON(a.boundary, 7)::json,
            'properties', json_build_object(
                'id', a.id, 'name', a.name, 'code', a.code,
                'level', a.level, 'parent_id', a.parent_id)
        ) ORDER BY a.code), '[]'::json)
    )::text
    FROM area a
    WHERE (CAST(:level AS varchar) IS NULL OR a.level = :level)
      AND (CAST(:parent_id AS uuid) IS NULL OR a.parent_id = :parent_id)
    """
)

# A point on a shared edge is covered by both grids: the lowest code wins, so
# the answer is always exactly one grid.
LOCATE_SQL = """
    SELECT g.id AS grid_id, g.name AS grid_name,
           b.id AS branch_id, b.name AS branch_name,
           c.id AS community_id, c.name AS community_name,
           s.id AS street_id, s.name AS street_name
    FROM area g
    JOIN area b ON b.id = g.parent_id
    JOIN area c ON c.id = b.parent_id
    JOIN area s ON s.id = c.parent_id
    WHERE g.level = 'grid'
      AND ST_Covers(g.boundary, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326))
    ORDER BY g.code
    LIMIT 1
"""
_LOCATE = text(LOCATE_SQL)


def not_covered() -> OutsideServiceArea:
    """What a point that `LOCATE_SQL` finds in no grid answers."""
    return OutsideServiceArea("The point lies outside every area this service covers.")


@dataclass(frozen=True)
class AreaIds:
    grid: uuid.UUID
    grid_name: str
    grid_branch: uuid.UUID
    community: uuid.UUID
    street: uuid.UUID

    @property
    def chain(self) -> Chain:
        """The grid's chain, up to the street (`app.areas.tree`)."""
        return Chain((self.grid, self.grid_branch, self.community, self.street))


async def locate_ids(session: AsyncSession, lat: float, lng: float) -> AreaIds:
    found = await locate(session, lat, lng)
    return AreaIds(
        grid=found.grid.id,
        grid_name=found.grid.name,
        grid_branch=found.grid_branch.id,
        community=found.community.id,
        street=found.street.id,
    )


async def feature_collection(
    session: AsyncSession, level: AreaLevel | None, parent_id: uuid.UUID | None
) -> str:
    result = await session.execute(
        _FEATURE_COLLECTION,
        {"level": level.value if level else None, "parent_id": parent_id},
    )
    document: str = result.scalar_one()
    return document


async def locate(session: AsyncSession, lat: float, lng: float) -> AreaLocation:
    row = (await session.execute(_LOCATE, {"lat": lat, "lng": lng})).mappings().first()
    if row is None:
        raise not_covered()
    return AreaLocation(
        street=AreaRef(id=row["street_id"], name=row["street_name"]),
        community=AreaRef(id=row["community_id"], name=row["community_name"]),
        grid_branch=AreaRef(id=row["branch_id"], name=row["branch_name"]),
        grid=AreaRef(id=row["grid_id"], name=row["grid_name"]),
    )
