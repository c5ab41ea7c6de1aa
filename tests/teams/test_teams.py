"""GET /api/v1/teams/nearby: KNN on PostGIS, checked against brute force."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.teams import service as teams
from tests.problems import assert_problem

_BRUTE_FORCE = text(
    """
    WITH here AS (SELECT ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography AS pt)
    SELECT t.id, ST_Distance(t.base, here.pt, false) AS d,
           (SELECT count(*) FROM team_member m JOIN duty u ON u.person_id = m.person_id
             WHERE m.team_id = t.id AND u.on_duty) AS on_duty
    FROM team t, here
    WHERE ST_Distance(t.base, here.pt, false) <= :r
    ORDER BY d, t.id
    """
)

_RANDOM_POINTS = text(
    """
    SELECT ST_X(p.geom), ST_Y(p.geom)
    FROM area s, ST_Dump(ST_GeneratePoints(s.boundary, :n, 11)) AS p
    WHERE s.level = 'street'
    """
)


@pytest.mark.parametrize(("radius_m", "limit"), [(800, 100), (3000, 25), (20000, 100)])
async def test_nearby_order_equals_brute_force_distance_order(
    client: httpx.AsyncClient, connection: AsyncConnection, radius_m: int, limit: int
) -> None:
    points = (await connection.execute(_RANDOM_POINTS, {"n": 8})).all()
    compared = 0
    for lng, lat in points:
        expected = (
            await connection.execute(_BRUTE_FORCE, {"lng": lng, "lat": lat, "r": radius_m})
        ).all()[:limit]
        response = await client.get(
            "/api/v1/teams/nearby",
            params={"lat": lat, "lng": lng, "radius_m": radius_m, "limit": limit},
        )
        assert response.status_code == 200, response.text
        got = response.json()["data"]
        assert [t["id"] for t in got] == [str(row.id) for row in expected]
        for team, row in zip(got, expected, strict=True):
            assert team["distance_m"] == pytest.approx(row.d, abs=0.06)
            assert team["on_duty_count"] == row.on_duty
            assert team["grid"]["id"]
            assert team["grid"]["name"]
            assert team["distance_m"] <= radius_m
        compared += len(got)
    assert compared > 0, "the layout must put teams within reach of some points"


async def test_nearby_default_radius_and_limit(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/teams/nearby", params={"lat": 22.77, "lng": 113.93})
    assert response.status_code == 200
    data = response.json()["data"]
    assert 0 < len(data) <= 20
    assert all(team["distance_m"] <= 3000 for team in data)
    distances = [team["distance_m"] for team in data]
    assert distances == sorted(distances)
    assert set(data[0]) == {"id", "name", "grid", "distance_m", "on_duty_count", "service_content"}


async def test_nearby_uses_the_spatial_index_not_a_sort_of_every_row(
    connection: AsyncConnection,
) -> None:
    # Enough teams that a sequential scan would be a real choice, then ask the
    # planner what it does with the service's own query.
    await connection.execute(
        text(
            """
            INSERT INTO team (id, name, grid_id, base)
            SELECT gen_random_uuid(), 'bench ' || i, g.id,
                   ST_SetSRID(ST_MakePoint(113.88 + random() * 0.1, 22.73 + random() * 0.08), 4326)
            FROM generate_series(1, 30000) AS i,
                 LATERAL (SELECT id FROM area WHERE level = 'grid' LIMIT 1) AS g
            """
        )
    )
    await connection.execute(text("ANALYZE team"))
    plan = (
        (
            await connection.execute(
                text("EXPLAIN " + str(teams.NEARBY_SQL)),
                {"lat": 22.77, "lng": 113.93, "radius_m": 3000, "limit": 20},
            )
        )
        .scalars()
        .all()
    )
    plan_text = "\n".join(plan)
    assert "Index Scan using ix_team_base on team" in plan_text, plan_text
    # KNN: the index returns the teams in distance order, the plan stops
    # after `limit` of them; no bitmap scan of every team within the radius.
    assert "Order By: (base <->" in plan_text, plan_text
    assert "Seq Scan on team" not in plan_text, plan_text
    assert "Bitmap" not in plan_text, plan_text


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"lat": 22.77, "lng": 113.93, "radius_m": 20001}, "radius_too_large"),
        ({"lat": 22.77, "lng": 113.93, "radius_m": 0}, "validation_error"),
        ({"lat": 22.77, "lng": 113.93, "radius_m": -5}, "validation_error"),
        ({"lat": 22.77, "lng": 113.93, "limit": 0}, "validation_error"),
        ({"lat": 22.77, "lng": 113.93, "limit": 101}, "limit_too_large"),
        ({"lat": 22.77, "lng": 113.93, "limit": "ten"}, "validation_error"),
        ({"lat": 95, "lng": 113.93}, "validation_error"),
        ({"lat": 22.77, "lng": -181}, "validation_error"),
        ({"lng": 113.93}, "validation_error"),
    ],
)
async def test_nearby_rejects_bad_input(
    client: httpx.AsyncClient, params: dict[str, object], code: str
) -> None:
    response = await client.get("/api/v1/teams/nearby", params=params)  # type: ignore[arg-type]
    assert_problem(response, 422, code)


async def test_nearby_far_away_is_an_empty_list(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/teams/nearby", params={"lat": 39.9, "lng": 116.4})
    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None}
