"""/app/ serves the built web app (app/webapp/serve.py): the page and the
service worker revalidated on every load, hashed assets cached for good, a
strict CSP, nothing outside the build reachable, and a clear problem when
the app was not built."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from tests.conftest import make_settings


def _client(database_url: str, dist: Path, **overrides: object) -> httpx.AsyncClient:
    app = create_app(make_settings(database_url, web_dist_dir=dist, **overrides))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>党群户联网</title>")
    (root / "assets" / "index-abc123.js").write_text("console.log(1)")
    (root / "sw.js").write_text("self.addEventListener('push', () => {})")
    (root / "manifest.webmanifest").write_text('{"start_url": "/app/"}')
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


@pytest.fixture
async def web(database_url: str, dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(database_url, dist) as http:
        yield http


async def test_the_page_is_revalidated_and_locked_down(web: httpx.AsyncClient) -> None:
    page = await web.get("/app/")
    assert page.status_code == 200
    assert "党群户联网" in page.text
    assert page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert page.headers["x-content-type-options"] == "nosniff"
    moved = await web.get("/app")
    assert moved.status_code == 307
    assert moved.headers["location"] == "/app/"


async def test_hashed_assets_are_cached_for_good_the_worker_is_not(
    web: httpx.AsyncClient,
) -> None:
    asset = await web.get("/app/assets/index-abc123.js")
    assert asset.status_code == 200
    assert asset.headers["content-type"].startswith("text/javascript")
    assert "immutable" in asset.headers["cache-control"]
    worker = await web.get("/app/sw.js")
    assert worker.status_code == 200
    assert worker.headers["cache-control"] == "no-cache"
    manifest = await web.get("/app/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")


@pytest.mark.parametrize(
    "path",
    [
        "/app/../secret.txt",
        "/app/%2e%2e/secret.txt",
        "/app/assets/../../secret.txt",
        "/app/nope.js",
    ],
)
async def test_nothing_outside_the_build_is_reachable(web: httpx.AsyncClient, path: str) -> None:
    answer = await web.get(path)
    assert answer.status_code == 404
    assert "outside the build" not in answer.text


async def test_only_reads_are_served(web: httpx.AsyncClient) -> None:
    answer = await web.post("/app/", content=b"x")
    assert answer.status_code == 405


async def test_config_names_the_tile_style_when_one_is_set(database_url: str, dist: Path) -> None:
    async with _client(database_url, dist) as http:
        plain = await http.get("/app/config.js")
        assert plain.text.strip() == "window.HULIAN_TILE_STYLE = null;"
    style = "https://tiles.example/style.json"
    async with _client(database_url, dist, web_tile_style_url=style) as http:
        configured = await http.get("/app/config.js")
        assert f'"{style}"' in configured.text
        assert "https:" in configured.headers["content-security-policy"]


async def test_an_unbuilt_app_is_a_clear_problem(database_url: str, tmp_path: Path) -> None:
    async with _client(database_url, tmp_path / "never-built") as http:
        answer = await http.get("/app/")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "web_app_not_built"
    assert "make web" in answer.json()["detail"]
