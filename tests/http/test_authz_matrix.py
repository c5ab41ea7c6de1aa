"""Every route × every kind of caller, against the running app."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Route

from app.api.router import ROUTERS
from app.core.config import Settings
from tests.authz_matrix import PRINCIPALS, ROWS, documented, render
from tests.conftest import make_settings
from tests.principals import make_cast


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The matrix is about who may call what; resident A's calls pile up.
    # A screen's stream ends after its first event here, so that it can be read whole.
    return make_settings(
        database_url, max_open_calls_per_resident=1000, screen_stream_max_seconds=0.01
    )


def route_table(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves."""
    table = {
        (method, route.path)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        # An APIRoute serves HEAD only when declared (the health checks).
        for method in route.methods or set()
    }
    # The framework's own pages (OpenAPI, docs) sit on the app itself.
    table |= {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and route.methods
        for method in route.methods - {"HEAD"}
    }
    # Nothing reaches the spec that the table above does not know.
    for path, item in app.openapi()["paths"].items():
        for method in item:
            assert (method.upper(), path) in table, (method, path)
    return table


def test_every_route_has_a_row(app: FastAPI) -> None:
    rows = [(row.method, row.template) for row in ROWS]
    assert len(rows) == len(set(rows)), "one row per route"
    missing = route_table(app) - set(rows)
    assert not missing, f"routes without a row in tests/authz_matrix.py: {sorted(missing)}"
    assert not set(rows) - route_table(app), "rows for routes that do not exist"


async def test_each_cell_answers_as_the_matrix_says(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    cast = await make_cast(session, settings)
    wrong: list[str] = []
    for principal in PRINCIPALS:
        for row in ROWS:
            call = await row.build(session, cast)
            response = await anon_client.request(
                row.method,
                call.path,
                json=call.json,
                params=call.params,
                headers=cast.headers[principal],
            )
            if response.status_code != row.expected[principal]:
                wrong.append(
                    f"{row.method} {row.template} as {principal}: "
                    f"{response.status_code}, expected {row.expected[principal]}: "
                    f"{response.text[:200]}"
                )
            if response.status_code >= 400:
                assert response.headers["content-type"].startswith("application/problem+json")
    assert not wrong, "\n".join(wrong)


def test_docs_security_shows_the_matrix() -> None:
    assert documented() == render(), (
        "docs/security.md is out of date: run `python -m tests.authz_matrix --write`"
    )
