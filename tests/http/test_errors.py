"""Every error is problem+json with a stable code; a 500 shows nothing internal."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.logging import JsonFormatter
from app.main import create_app
from tests.principals import make_cast
from tests.problems import assert_problem


class Echo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str
    count: int


@pytest.fixture
async def probe_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app plus two routes that exist only here: one that fails and
    one with a JSON body."""
    app: FastAPI = create_app(settings)

    @app.get("/boom", tags=["probe"])
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    @app.post("/echo", tags=["probe"])
    async def echo(body: Echo) -> Echo:
        return body

    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_problem(await client.get("/"), 404, "not_found")


async def test_wrong_method_is_a_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.delete("/api/v1/areas/locate"), 405, "method_not_allowed")
    assert body["title"] == "Method Not Allowed"


async def test_unexpected_exception_is_a_bare_500(
    probe_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="hulian.errors"):
        response = await probe_client.get("/boom")
    body = assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    # The details go to the log, tied to the request id, not to the client.
    logged = [r for r in caplog.records if r.name == "hulian.errors"]
    assert logged
    assert getattr(logged[0], "request_id", None) == body["request_id"]


async def test_malformed_json_and_unknown_fields_are_422(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/echo", content=b'{"phone": "13800000000", ', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422, "validation_error")
    assert "JSON" in body["detail"]

    response = await probe_client.post("/echo", json={"phone": "13912345678", "count": "many"})
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "count"]
    # The submitted values (here a phone number) are never echoed back.
    assert "13912345678" not in response.text

    response = await probe_client.post("/echo", json={"phone": "1", "count": 1, "extra": True})
    assert_problem(response, 422, "validation_error")


async def test_request_id_is_kept_when_safe_and_replaced_when_not(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    response = await client.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 32


async def test_access_log_is_json_with_the_route_and_no_secrets(
    client: httpx.AsyncClient, resident_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="hulian.access"):
        await client.get(
            "/api/v1/areas/locate",
            params={"lat": 22.77, "lng": 113.93, "token": "sekrit-token-value"},
        )
        await client.get("/api/v1/no/such/+8613800001111")
    records = [r for r in caplog.records if r.name == "hulian.access"]
    assert len(records) == 2
    lines = [JsonFormatter().format(r) for r in records]
    entries = [json.loads(line) for line in lines]
    assert entries[0]["route"] == "/api/v1/areas/locate"
    assert entries[0]["method"] == "GET"
    assert entries[0]["status"] == 200
    assert entries[0]["duration_ms"] >= 0
    assert len(entries[0]["request_id"]) == 32
    assert entries[1]["route"] == "unmatched"
    assert entries[1]["status"] == 404
    everything = "\n".join(lines)
    for secret in ("sekrit", "8613800001111", "token=", resident_token):
        assert secret not in everything


async def test_outside_the_service_area_is_one_problem_type(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    """A point no area covers: one code and one title wherever it is met; 404
    for a lookup (API.md), 422 for a point to act on (a call, a team's base)."""
    cast = await make_cast(session, settings)
    beijing = {"lat": 39.9, "lng": 116.4}
    admin = cast.headers["admin"]
    answers = [
        (404, await anon_client.get("/api/v1/areas/locate", params=beijing, headers=admin)),
        (422, await anon_client.post("/api/v1/calls", json={"location": beijing}, headers=admin)),
        (
            422,
            await anon_client.post(
                "/api/v1/admin/teams", json={"name": "x", "base": beijing}, headers=admin
            ),
        ),
    ]
    titles = {
        assert_problem(response, status, "outside_service_area")["title"]
        for status, response in answers
    }
    assert titles == {"Outside the service area"}
