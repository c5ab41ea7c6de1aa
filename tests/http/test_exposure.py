"""What every answer says about itself (caching, sniffing, referrers), and
what the service exposes besides the API: the docs, the metrics, the
trailing-slash redirect, the WebSocket to browser pages of other origins."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx_ws import (
    AsyncWebSocketSession,
    WebSocketDisconnect,
    aconnect_ws,
)
from httpx_ws.transport import ASGIWebSocketTransport
from pydantic import ValidationError

from app.core.config import Settings
from app.events.ws import CLOSE_NOT_AUTHENTICATED, CLOSE_ORIGIN_REFUSED
from app.main import create_app
from tests.conftest import make_settings
from tests.principals import next_phone
from tests.problems import assert_problem

METRICS_TOKEN = "m" * 40


def production(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_env": "production",
        "database_url": database_url,
        "secret_key": "p" * 48,
        "sms_backend": "http",
        "sms_http_url": "https://sms.example/send",
        "push_backend": "log",
        "metrics_token": METRICS_TOKEN,
        "run_sweeper": False,
        "run_push_worker": False,
        "run_quota_reminders": False,
        **overrides,
    }
    return Settings(_env_file=None, **values)


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def boom_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)

    @app.get("/boom", tags=["probe"])
    async def boom() -> None:
        raise RuntimeError("fails")

    async with LifespanManager(app), _client(app) as http:
        yield http


def _assert_hardened(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff", response.url
    assert response.headers["referrer-policy"] == "no-referrer", response.url
    assert response.headers["cache-control"] == "no-store", response.url


# ---- headers ----------------------------------------------------------------------------


async def test_tokens_and_personal_data_are_never_stored_by_a_cache(
    anon_client: httpx.AsyncClient, client: httpx.AsyncClient, boom_client: httpx.AsyncClient
) -> None:
    phone = next_phone()
    sent = await anon_client.post("/api/v1/auth/otp", json={"phone": phone})
    login = await anon_client.post(
        "/api/v1/auth/token", json={"phone": phone, "code": sent.json()["debug_code"]}
    )
    assert login.status_code == 200
    refreshed = await anon_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )
    assert refreshed.status_code == 200
    me = await client.get("/api/v1/me")
    assert me.status_code == 200
    answers = [
        sent,
        login,
        refreshed,
        me,
        await client.get("/api/v1/calls"),
        await client.get("/api/v1/nothing-here"),  # 404 problem
        await client.post("/api/v1/calls", content=b"x" * 70_000),  # 413 from the middleware
        await boom_client.get("/boom"),  # 500, sent from outside the middleware
    ]
    for response in answers:
        _assert_hardened(response)


# ---- docs ---------------------------------------------------------------------------------

_URL_ATTRIBUTES = re.compile(r"""(?:src|href|spec-url)="([^"]*)"|url: '([^']*)'""")


async def test_the_docs_load_nothing_from_another_origin(
    anon_client: httpx.AsyncClient,
) -> None:
    assets: set[str] = set()
    for page in ("/docs", "/redoc"):
        response = await anon_client.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        html = response.text
        assert "http://" not in html, page
        assert "https://" not in html, page
        urls = [a or b for a, b in _URL_ATTRIBUTES.findall(html)]
        assert len(urls) >= 2, html
        for url in urls:
            assert url.startswith("/"), url
            assert not url.startswith("//"), url
        assets |= {url for url in urls if url != "/openapi.json"}
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    assert {url.rsplit(".", 1)[1] for url in assets} == {"js", "css", "png"}
    for url in sorted(assets):
        response = await anon_client.get(url)
        assert response.status_code == 200, url
        assert kinds["." + url.rsplit(".", 1)[1]] in response.headers["content-type"], url
        assert len(response.content) > 1000, url
        assert response.headers["x-content-type-options"] == "nosniff"
        # The same files for every user: a browser may keep them.
        assert "max-age" in response.headers["cache-control"]
    assert (await anon_client.get("/docs/oauth2-redirect")).status_code == 200
    assert_problem(await anon_client.get("/docs/assets/../../etc/passwd"), 404, "not_found")
    assert_problem(await anon_client.get("/docs/assets/core.py"), 404, "not_found")


async def test_production_serves_no_docs_unless_asked(database_url: str) -> None:
    pages = ("/docs", "/redoc", "/docs/oauth2-redirect", "/docs/assets/swagger-ui.css")
    async with _client(create_app(production(database_url))) as http:
        for page in pages:
            assert_problem(await http.get(page), 404, "not_found")
        # The spec stays: clients are generated from it.
        assert (await http.get("/openapi.json")).status_code == 200
    async with _client(create_app(production(database_url, docs_enabled=True))) as http:
        for page in pages:
            assert (await http.get(page)).status_code == 200, page


# ---- metrics ------------------------------------------------------------------------------


async def test_metrics_take_a_bearer_token_when_one_is_set(database_url: str) -> None:
    settings = make_settings(database_url, metrics_token=METRICS_TOKEN)
    async with _client(create_app(settings)) as http:
        assert_problem(await http.get("/metrics"), 401, "not_authenticated")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer " + "n" * 40})
        assert_problem(wrong, 401, "not_authenticated")
        right = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert right.status_code == 200
        assert "hulian_http_requests_total" in right.text


def test_production_refuses_to_start_with_public_metrics(database_url: str) -> None:
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        production(database_url, metrics_token=None)
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        production(database_url, metrics_token="short")


# ---- the trailing-slash redirect ------------------------------------------------------------


async def test_the_trailing_slash_redirect_never_names_another_host(
    anon_client: httpx.AsyncClient,
) -> None:
    response = await anon_client.get(
        "/healthz/", params={"a": "1"}, headers={"Host": "evil.example"}
    )
    assert response.status_code == 307
    assert response.headers["location"] == "/healthz?a=1"
    _assert_hardened(response)
    followed = await anon_client.get(response.headers["location"])
    assert followed.status_code == 200
    # A path that would make a scheme-relative address is not redirected.
    assert_problem(await anon_client.get("//evil.example/"), 404, "not_found")


# ---- the WebSocket's Origin ------------------------------------------------------------------


def _connect(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> AbstractAsyncContextManager[AsyncWebSocketSession]:
    return aconnect_ws("/api/v1/ws", client, headers=headers)


def _codes(group: BaseExceptionGroup[WebSocketDisconnect]) -> set[int]:
    codes: set[int] = set()
    for item in group.exceptions:
        if isinstance(item, BaseExceptionGroup):
            codes |= _codes(item)
        else:
            codes.add(item.code)
    return codes


async def _ws_answer(app: FastAPI, origin: str | None) -> str:
    """`refused` (the handshake) or `accepted` (then closed: no token)."""
    headers = {"Origin": origin} if origin else {}
    code = None
    try:
        async with (
            httpx.AsyncClient(
                transport=ASGIWebSocketTransport(app), base_url="http://t"
            ) as sockets,
            _connect(sockets, headers) as ws,
        ):
            try:
                await ws.receive_text(timeout=5)
            except WebSocketDisconnect as closed:
                code = closed.code
    except* WebSocketDisconnect as refused:
        # The in-process transport reports a refused handshake as a close.
        code = _codes(refused).pop()
    if code == CLOSE_ORIGIN_REFUSED:
        return "refused"
    assert code == CLOSE_NOT_AUTHENTICATED
    return "accepted"


async def test_in_production_the_websocket_takes_only_the_app_origins(
    database_url: str,
) -> None:
    app = create_app(production(database_url, app_origins=["https://app.example"]))
    assert await _ws_answer(app, "https://evil.example") == "refused"
    assert await _ws_answer(app, "https://app.example") == "accepted"
    # Not a browser page (a phone app sends no Origin).
    assert await _ws_answer(app, None) == "accepted"

    # No origin configured: no browser page may open it.
    bare = create_app(production(database_url))
    assert await _ws_answer(bare, "https://app.example") == "refused"
    assert await _ws_answer(bare, None) == "accepted"

    # An explicit WS_ALLOWED_ORIGINS wins.
    explicit = create_app(
        production(
            database_url,
            app_origins=["https://app.example"],
            ws_allowed_origins=["https://screen.example"],
        )
    )
    assert await _ws_answer(explicit, "https://screen.example") == "accepted"
    assert await _ws_answer(explicit, "https://app.example") == "refused"


async def test_outside_production_any_origin_may_connect(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    assert await _ws_answer(app, "https://anything.example") == "accepted"
