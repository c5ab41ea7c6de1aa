"""GET /api/v1/areas and /api/v1/areas/locate on the demo district."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.main import openapi_document
from app.models.area import AreaFeatureCollection
from tests.problems import assert_problem

# Random points inside the street, reproducible.
_POINTS_INSIDE = text(
    """
    SELECT ST_X(p.geom) AS lng, ST_Y(p.geom) AS lat
    FROM area s, ST_Dump(ST_GeneratePoints(s.boundary, :n, 7)) AS p
    WHERE s.level = 'street'
    """
)


async def test_locate_finds_exactly_the_grid_that_covers_the_point(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    points = (await connection.execute(_POINTS_INSIDE, {"n": 40})).all()
    assert len(points) == 40
    for lng, lat in points:
        covering = (
            await connection.execute(
                text(
                    """
                    SELECT g.id, b.id, c.id, s.id FROM area g
                    JOIN area b ON b.id = g.parent_id JOIN area c ON c.id = b.parent_id
                    JOIN area s ON s.id = c.parent_id
                    WHERE g.level = 'grid'
                      AND ST_Covers(g.boundary, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326))
                    """
                ),
                {"lng": lng, "lat": lat},
            )
        ).all()
        assert len(covering) == 1, "a point inside the street lies in exactly one grid"
        grid_id, branch_id, community_id, street_id = covering[0]

        response = await client.get("/api/v1/areas/locate", params={"lat": lat, "lng": lng})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["grid"]["id"] == str(grid_id)
        assert body["grid_branch"]["id"] == str(branch_id)
        assert body["community"]["id"] == str(community_id)
        assert body["street"]["id"] == str(street_id)
        assert all(body[level]["name"] for level in ("street", "community", "grid_branch", "grid"))


async def test_locate_outside_every_area_is_404(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    # Just outside the street's bounding box to the east, and far away.
    xmax = (
        await connection.execute(text("SELECT ST_XMax(boundary) FROM area WHERE level = 'street'"))
    ).scalar_one()
    for lat, lng in ((22.77, xmax + 0.001), (39.9, 116.4), (0.0, 0.0)):
        response = await client.get("/api/v1/areas/locate", params={"lat": lat, "lng": lng})
        assert_problem(response, 404, "outside_service_area")


async def test_locate_rejects_bad_coordinates(client: httpx.AsyncClient) -> None:
    cases: list[dict[str, str | float]] = [
        {"lat": 91, "lng": 113.93},
        {"lat": -90.5, "lng": 113.93},
        {"lat": 22.77, "lng": 180.01},
        {"lat": "north", "lng": 113.93},
        {"lat": "nan", "lng": 113.93},
        {"lat": 22.77},
        {},
    ]
    for params in cases:
        response = await client.get("/api/v1/areas/locate", params=params)
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"], params
        assert all("input" not in error for error in body["errors"])


async def test_areas_by_level_is_a_geojson_feature_collection(client: httpx.AsyncClient) -> None:
    expected = {"street": 1, "community": 6, "grid_branch": 48, "grid": 150}
    ids_by_level: dict[str, set[str]] = {}
    for level, count in expected.items():
        response = await client.get("/api/v1/areas", params={"level": level})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/geo+json")
        collection = response.json()
        assert collection["type"] == "FeatureCollection"
        assert len(collection["features"]) == count
        for feature in collection["features"]:
            assert feature["type"] == "Feature"
            assert feature["geometry"]["type"] == "MultiPolygon"
            lng, lat = feature["geometry"]["coordinates"][0][0][0]
            assert 113.8 < lng < 114.1, "lng-lat order"
            assert 22.6 < lat < 22.9, "lng-lat order"
            props = feature["properties"]
            assert set(props) >= {"id", "name", "level", "parent_id"}
            assert props["level"] == level
            assert props["id"] == feature["id"]
        ids_by_level[level] = {f["id"] for f in collection["features"]}

    # Every parent_id names an area of the level above.
    response = await client.get("/api/v1/areas", params={"level": "grid"})
    parents = {f["properties"]["parent_id"] for f in response.json()["features"]}
    assert parents <= ids_by_level["grid_branch"]

    everything = (await client.get("/api/v1/areas")).json()
    assert len(everything["features"]) == sum(expected.values())


async def test_areas_filtered_by_parent(client: httpx.AsyncClient) -> None:
    communities = (await client.get("/api/v1/areas", params={"level": "community"})).json()
    parent = communities["features"][0]["id"]
    children = (await client.get("/api/v1/areas", params={"parent_id": parent})).json()
    assert len(children["features"]) == 8
    assert {f["properties"]["parent_id"] for f in children["features"]} == {parent}
    nobody = (await client.get("/api/v1/areas", params={"parent_id": str(uuid.uuid4())})).json()
    assert nobody["features"] == []


async def test_areas_rejects_bad_filters(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/areas?level=province"), 422, "validation_error")
    assert_problem(await client.get("/api/v1/areas?parent_id=not-a-uuid"), 422, "validation_error")


async def test_every_area_is_the_typed_geojson_the_spec_names(client: httpx.AsyncClient) -> None:
    """The whole collection parses as AreaFeatureCollection (a MultiPolygon of
    closed rings of [lng, lat] per feature), as the OpenAPI document says."""
    response = await client.get("/api/v1/areas")
    assert response.headers["content-type"] == "application/geo+json"
    collection = AreaFeatureCollection.model_validate_json(response.content)
    assert len(collection.features) > 100
    for feature in collection.features:
        assert feature.geometry.type == "MultiPolygon"
        for polygon in feature.geometry.coordinates:
            for ring in polygon:
                assert ring[0] == ring[-1]
                assert all(113 < lng < 115 and 22 < lat < 23 for lng, lat in ring)
    spec = openapi_document()
    content = spec["paths"]["/api/v1/areas"]["get"]["responses"]["200"]["content"]
    assert content["application/geo+json"]["schema"]["$ref"].endswith("/AreaFeatureCollection")
    geometry = spec["components"]["schemas"]["AreaFeature"]["properties"]["geometry"]
    assert geometry["$ref"].endswith("/MultiPolygon")
