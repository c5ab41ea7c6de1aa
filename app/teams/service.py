"""Teams on PostGIS: the nearest teams to a point."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import sql
from app.models.area import AreaRef
from app.models.team import NearbyTeam

# The `:limit` teams nearest to the point by KNN on the GiST index of
# team.base (`ORDER BY t.base <-> here.pt LIMIT :limit`, nothing else in
# that subquery), and only then the radius, the area and the on-duty count,
# for those few rows. The radius is not a condition of the scan: the
# nearest `:limit` teams cut to the radius are exactly the nearest teams
# within the radius, and with `ST_DWithin` in the scan the plan hung on
# PostGIS's estimate of how many teams it keeps (a row or two; 100 of a
# million where 3 km hold about 180,000): the generic plan of the prepared
# statement took 22 ms, not 0.7, at a million teams, and the nearby query
# once measured 2 s there (docs/benchmarks.md, "Nearest team at scale"). Both
# `<->` on geography and the distance reported measure on the sphere
# (use_spheroid false), so the order is the one reported; on the scale of a
# street it differs from the spheroid by under 0.5 %. Ties in distance go by
# id; the grid's name is one primary-key probe per row.
NEARBY_SQL = text(
    """
    WITH here AS (SELECT ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography AS pt),
    nearest AS (
        SELECT t.id, t.name, t.service_content, t.grid_id,
               ST_Distance(t.base, here.pt, false) AS distance_m
        FROM team t, here
        ORDER BY t.base <-> here.pt
        LIMIT :limit
    )
    SELECT n.id, n.name, n.service_content, n.distance_m, n.grid_id,
           (SELECT g.name FROM area g WHERE g.id = n.grid_id) AS grid_name,
           (SELECT count(*) FROM team_member m
              JOIN duty d ON d.person_id = m.person_id
             WHERE m.team_id = n.id AND d.on_duty = true) AS on_duty_count
    FROM nearest n
    WHERE n.distance_m <= :radius_m
    ORDER BY n.distance_m, n.id
    """
)


async def nearby(
    session: AsyncSession, lat: float, lng: float, radius_m: float, limit: int
) -> list[NearbyTeam]:
    # Below the ORM (`app.core.sql`): target 6 times this request at 1M teams.
    rows = await sql.fetch(
        session, NEARBY_SQL, {"lat": lat, "lng": lng, "radius_m": radius_m, "limit": limit}
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
