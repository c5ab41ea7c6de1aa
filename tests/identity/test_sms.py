"""The http SMS backend against an intercepted gateway (respx)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import AppEnv, Settings, SmsBackend
from app.main import create_app
from tests.conftest import join_test_transaction, make_settings
from tests.principals import next_phone
from tests.problems import assert_problem

GATEWAY = "https://sms.gateway.example/v1/send"


@pytest.fixture
async def sms_client(database_url: str, session: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url,
        sms_backend="http",
        sms_http_url=GATEWAY,
        sms_http_token="gateway-secret-token",
    )
    app = create_app(settings)
    join_test_transaction(app, session)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


async def test_the_code_goes_to_the_gateway_and_logs_in(
    sms_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    phone = next_phone()
    with respx.mock(assert_all_called=True) as gateway:
        route = gateway.post(GATEWAY).mock(return_value=httpx.Response(200, json={"ok": True}))
        sent = await sms_client.post("/api/v1/auth/otp", json={"phone": phone})
    assert sent.status_code == 202
    assert sent.json().get("debug_code") is None, "a real backend never reveals the code"
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer gateway-secret-token"
    body = json.loads(request.content)
    assert body["phone"] == phone
    assert body["purpose"] == "login_code"
    code = body["message"].split("验证码是")[1][:6]
    assert code.isdigit()
    assert "5分钟" in body["message"]
    token = await sms_client.post("/api/v1/auth/token", json={"phone": phone, "code": code})
    assert token.status_code == 200
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert code not in logged
    assert "gateway-secret-token" not in logged
    assert phone[3:] not in logged


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(500), httpx.Response(401), httpx.ConnectError("refused")],
)
async def test_a_failing_gateway_is_503_and_nothing_is_kept(
    sms_client: httpx.AsyncClient, connection: AsyncConnection, answer: httpx.Response | Exception
) -> None:
    phone = next_phone()
    with respx.mock as gateway:
        if isinstance(answer, Exception):
            gateway.post(GATEWAY).mock(side_effect=answer)
        else:
            gateway.post(GATEWAY).mock(return_value=answer)
        response = await sms_client.post("/api/v1/auth/otp", json={"phone": phone})
    assert_problem(response, 503, "sms_unavailable")
    kept = (
        await connection.execute(
            text("SELECT count(*) FROM otp_code WHERE phone = :p"), {"p": phone}
        )
    ).scalar_one()
    assert kept == 0, "no code exists that was never sent"


def test_http_backend_needs_a_url() -> None:
    with pytest.raises(ValueError, match="SMS_HTTP_URL"):
        make_settings("postgresql+asyncpg://postgres@127.0.0.1/hulian_test", sms_backend="http")


def test_production_starts_with_a_real_sms_backend() -> None:
    values: dict[str, object] = {
        "app_env": "production",
        "secret_key": "y" * 48,
        "sms_backend": "http",
        "sms_http_url": GATEWAY,
        "metrics_token": "z" * 48,
    }
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
    assert settings.app_env is AppEnv.production
    assert settings.sms_backend is SmsBackend.http
