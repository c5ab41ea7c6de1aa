"""Teams on PostGIS: the nearest teams to a point."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.area import AreaRef
from app.models.team import NearbyTeam

# KNN on the GiST index of team.base (`<->`), bounded by ST_DWithin, which
# uses the same index. Both measure on the sphere (use_spheroid false) so the
# reported distance is the one the order follows; on the scale of a street
# it differs from the spheroid by under 0.5 %. The on-duty count is computed
# only for the rows returned.
NEARBY_SQL = text(
    """
    WITH here AS (SELECT ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography AS pt)
    SELECT t.id, t.name, t.service_content,
           g.id AS grid_id, g.name AS grid_name,
           ST_Distance(t.base, here.pt, false) AS distance_m,
           (SELECT count(*) FROM team_member m
              JOIN duty d ON d.person_id = m.person_id
             WHERE m.team_id = t.id AND d.on_duty = true) AS on_duty_count
    FROM team t CROSS JOIN here
    JOIN area g ON g.id = t.grid_id
    WHERE ST_DWithin(t.base, here.pt, :radius_m, false)
    ORDER BY t.base <-> here.pt, t.id
    LIMIT :limit
    """
)


async def nearby(
    session: AsyncSession, lat: float, lng: float, radius_m: float, limit: int
) -> list[NearbyTeam]:
    rows = await session.execute(
        NEARBY_SQL, {"lat": lat, "lng": lng, "radius_m": radius_m, "limit": limit}
    )
    return [
        NearbyTeam(
            id=row.id,
            name=row.name,
            grid=AreaRef(id=row.grid_id, name=row.grid_name),
            distance_m=round(float(row.distance_m), 1),
            on_duty_count=int(row.on_duty_count),
            service_content=row.service_content,
        )
        for row in rows
    ]
