"""Liveness, readiness and metrics."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

from app.main import create_app
from tests.conftest import make_settings
from tests.problems import assert_problem


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_postgis(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["postgis"].startswith("3.")


async def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    # Nothing listens on port 1; the process itself stays alive.
    settings = make_settings("postgresql+asyncpg://postgres@127.0.0.1:1/hulian_test")
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert_problem(await http.get("/readyz"), 503, "not_ready")
            assert (await http.get("/healthz")).status_code == 200


async def test_metrics_count_requests_by_route_and_show_the_pool(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(3):
        await client.get("/api/v1/areas/locate", params={"lat": 22.77, "lng": 113.93})
    await client.get("/readyz")
    text = (await client.get("/metrics")).text
    assert (
        'hulian_http_requests_total{method="GET",route="/api/v1/areas/locate",status="200"} 3.0'
        in text
    )
    assert (
        'hulian_http_request_duration_seconds_count{method="GET",route="/api/v1/areas/locate"} 3.0'
        in text
    )
    assert "hulian_db_pool_size 10.0" in text
    assert "hulian_db_pool_checked_out" in text
