"""Teams on PostGIS: the nearest teams to a point."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.area import AreaRef
from app.models.team import NearbyTeam

# KNN on the GiST index of team.base (`<->`), bounded by ST_DWithin, which
# uses the same index; the k nearest are taken first and only then joined
# (ordering the join by distance and id made PostgreSQL drop the KNN scan:
# 385 ms against 10 ms at 30,000 teams, docs/benchmarks.md). Both measure
# on the sphere (use_spheroid false) so the reported distance is the one the
# order follows; on the scale of a street it differs from the spheroid by
# under 0.5 %. The on-duty count is computed only for the rows returned.
NEARBY_SQL = text(
    """
    WITH here AS (SELECT ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography AS pt),
    nearest AS (
        SELECT t.id, t.name, t.service_content, t.grid_id,
               ST_Distance(t.base, here.pt, false) AS distance_m
        FROM team t, here
        WHERE ST_DWithin(t.base, here.pt, :radius_m, false)
        ORDER BY t.base <-> here.pt
        LIMIT :limit
    )
    SELECT n.id, n.name, n.service_content, n.distance_m,
           g.id AS grid_id, g.name AS grid_name,
           (SELECT count(*) FROM team_member m
              JOIN duty d ON d.person_id = m.person_id
             WHERE m.team_id = n.id AND d.on_duty = true) AS on_duty_count
    FROM nearest n
    JOIN area g ON g.id = n.grid_id
    ORDER BY n.distance_m, n.id
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
