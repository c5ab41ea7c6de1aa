"""HTTP details (issue 12, item 10): a 405's `Allow` lists every method of
the path; HEAD on the health checks; CORS for the configured origins only;
one title per problem code."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

import app as app_package
from app.core.errors import AppError
from app.http.problems import framework_problem
from app.main import create_app
from tests.conftest import make_settings
from tests.dbutil import PROJECT_ROOT
from tests.problems import assert_problem

WEB = "https://app.hulian.example"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/api/v1/calls", "GET, POST"),
        ("GET", "/api/v1/me/devices/abc", "DELETE, PUT"),
        ("POST", "/healthz", "GET, HEAD"),
    ],
)
async def test_405_allows_every_method_of_the_path(
    anon_client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await anon_client.request(method, path)
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allowed


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_head_on_the_health_checks(anon_client: httpx.AsyncClient, path: str) -> None:
    response = await anon_client.head(path)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["x-request-id"]


@pytest.fixture
async def cors_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app with one web origin allowed; these requests touch no database."""
    application = create_app(make_settings(database_url, cors_allowed_origins=[WEB]))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_cors_preflight_from_a_configured_origin(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.options(
        "/api/v1/calls",
        headers={
            "Origin": WEB,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == WEB
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "idempotency-key", "x-api-key"):
        assert header in allowed
    assert "access-control-allow-credentials" not in response.headers
    simple = await cors_client.get("/healthz", headers={"Origin": WEB})
    assert simple.headers["access-control-allow-origin"] == WEB
    exposed = simple.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed
    assert "retry-after" in exposed


async def test_cors_refuses_other_origins(cors_client: httpx.AsyncClient) -> None:
    preflight = await cors_client.options(
        "/api/v1/calls",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    simple = await cors_client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_no_cors_unless_configured(anon_client: httpx.AsyncClient) -> None:
    response = await anon_client.get("/healthz", headers={"Origin": WEB})
    assert "access-control-allow-origin" not in response.headers


def _error_classes() -> dict[str, type[AppError]]:
    for module in pkgutil.walk_packages(app_package.__path__, "app."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: dict[str, type[AppError]] = {"AppError": AppError}
    pending = [AppError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found[sub.__name__] = sub
            pending.append(sub)
    return found


def _titles_by_code() -> dict[str, set[str]]:
    """Every problem code the service can answer, with the titles it goes
    out with: the error classes', the codes raised with `code=` (under their
    class's title) and the framework's."""
    classes = _error_classes()
    titles: dict[str, set[str]] = defaultdict(set)
    for cls in classes.values():
        titles[cls.code].add(cls.title)
    for source in (PROJECT_ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            keywords = {k.arg: k.value for k in node.keywords}
            code = keywords.get("code")
            if name in classes and isinstance(code, ast.Constant) and name is not None:
                titles[str(code.value)].add(classes[name].title)
            elif name == "problem_response" and isinstance(node.args[2], ast.Constant):
                # A title that is not written out comes from framework_problem.
                title = keywords.get("title")
                if isinstance(title, ast.Constant):
                    titles[str(node.args[2].value)].add(str(title.value))
    for status in HTTPStatus:
        if status >= 400:
            framework_code, framework_title = framework_problem(status)
            titles[framework_code].add(framework_title)
    return titles


def test_one_title_per_problem_code() -> None:
    titles = _titles_by_code()
    assert {"not_found", "invalid_token", "outside_service_area", "payload_too_large"} <= set(
        titles
    )
    several = {code: found for code, found in titles.items() if len(found) > 1}
    assert not several, several


async def test_framework_problems_carry_the_same_titles(anon_client: httpx.AsyncClient) -> None:
    titles = _titles_by_code()
    for response, code in (
        (await anon_client.get("/nowhere"), "not_found"),
        (await anon_client.delete("/healthz"), "method_not_allowed"),
        (
            await anon_client.get("/api/v1/me", headers={"Authorization": "Basic x"}),
            "invalid_token",
        ),
        (await anon_client.post("/api/v1/calls", content=b"x" * 2_000_000), "payload_too_large"),
    ):
        assert response.json()["code"] == code
        assert titles[code] == {response.json()["title"]}


def _dependencies(routes: list[Any]) -> Iterator[tuple[str, Any]]:
    """Every dependency of every route, included routers and mounted
    sub-applications too: (the route's path, the callable)."""
    for route in routes:
        if isinstance(route, APIRoute):
            pending = list(route.dependant.dependencies)
            while pending:
                dependant = pending.pop()
                pending.extend(dependant.dependencies)
                if dependant.call is not None:
                    yield route.path, dependant.call
        elif isinstance(route, Mount):
            yield from _dependencies(list(getattr(route.app, "routes", [])))
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _dependencies(list(included.routes))


def _runs_on_the_loop(call: Any) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    # An instance with an async `__call__`: a security scheme.
    return inspect.iscoroutinefunction(type(call).__call__)


def test_no_dependency_runs_in_the_threadpool(database_url: str) -> None:
    # FastAPI runs a plain `def` dependency in a worker thread, a hand-off
    # each request (3.8 % of a press's CPU when SettingsDep was one).
    app = create_app(make_settings(database_url))
    found = list(_dependencies(app.routes))
    names = {getattr(call, "__name__", type(call).__name__) for _, call in found}
    assert {"get_settings_dep", "get_session", "get_origin", "HTTPBearer"} <= names
    assert [(path, call) for path, call in found if not _runs_on_the_loop(call)] == []
