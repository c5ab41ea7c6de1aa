"""Whose address a request has: the peer's, unless the peer is a trusted
proxy (FORWARDED_ALLOW_IPS); then the right-most X-Forwarded-For hop that is
not itself a trusted proxy. It keys the per-address OTP limit and is written
to the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.main import create_app
from tests.conftest import join_test_transaction, make_settings
from tests.principals import next_phone
from tests.problems import assert_problem

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

# httpx's in-process transport connects from 127.0.0.1.
PEER = "127.0.0.1"


@pytest.fixture
def client_with(session: AsyncSession, database_url: str) -> ClientFactory:
    @asynccontextmanager
    async def factory(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(make_settings(database_url, **overrides))
        join_test_transaction(app, session)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                yield http

    return factory


async def _login_ip(http: httpx.AsyncClient, session: AsyncSession, forwarded: str) -> str:
    """Log in with this X-Forwarded-For; the address the audit log kept."""
    phone = next_phone()
    headers = {"X-Forwarded-For": forwarded}
    sent = await http.post("/api/v1/auth/otp", json={"phone": phone}, headers=headers)
    assert sent.status_code == 202, sent.text
    login = await http.post(
        "/api/v1/auth/token",
        json={"phone": phone, "code": sent.json()["debug_code"]},
        headers=headers,
    )
    assert login.status_code == 200, login.text
    ip: str = (
        await session.execute(
            text("SELECT host(ip) FROM audit_log WHERE action = 'login' AND actor_person_id = :p"),
            {"p": login.json()["user"]["id"]},
        )
    ).scalar_one()
    return ip


async def _otp_statuses(http: httpx.AsyncClient, forwarded: list[str]) -> list[int]:
    statuses = []
    for value in forwarded:
        response = await http.post(
            "/api/v1/auth/otp", json={"phone": next_phone()}, headers={"X-Forwarded-For": value}
        )
        if response.status_code == 429:
            assert_problem(response, 429, "rate_limited")
        statuses.append(response.status_code)
    return statuses


async def test_by_default_no_peer_is_a_proxy(
    client_with: ClientFactory, session: AsyncSession
) -> None:
    async with client_with(otp_per_ip_per_hour=3) as http:
        assert await _login_ip(http, session, "203.0.113.50") == PEER
        # Each request names another address; all count against the peer's.
        statuses = await _otp_statuses(http, ["198.51.100.1", "198.51.100.2", "198.51.100.3"])
    assert statuses == [202, 202, 429]


async def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_counts(
    client_with: ClientFactory, session: AsyncSession
) -> None:
    # The peer (a load balancer) and an inner proxy network are trusted.
    async with client_with(
        forwarded_allow_ips=f"{PEER}, 10.0.0.0/8", otp_per_ip_per_hour=2
    ) as http:
        # What the client wrote (left) is not believed; what the proxies saw is.
        assert await _login_ip(http, session, "1.2.3.4, 203.0.113.7, 10.1.2.3") == "203.0.113.7"
        assert await _login_ip(http, session, "203.0.113.8") == "203.0.113.8"
        # A client that rotates the address it claims is still one address.
        statuses = await _otp_statuses(
            http, ["192.0.2.1, 203.0.113.9", "192.0.2.2, 203.0.113.9", "192.0.2.3, 203.0.113.9"]
        )
        assert statuses == [202, 202, 429]
        # Another client behind the same proxy has its own limit.
        assert await _otp_statuses(http, ["203.0.113.10"]) == [202]
        # Something that is not an address: the proxy's own (never a 500).
        assert await _login_ip(http, session, "not-an-address") == PEER


async def test_an_untrusted_peer_is_not_believed_even_when_proxies_are_set(
    client_with: ClientFactory, session: AsyncSession
) -> None:
    async with client_with(forwarded_allow_ips="10.0.0.0/8") as http:
        assert await _login_ip(http, session, "203.0.113.7") == PEER


@pytest.mark.parametrize("value", ["*", "not-an-ip", "10.0.0.0/33"])
def test_trusted_proxies_must_be_addresses_or_networks(database_url: str, value: str) -> None:
    with pytest.raises(ValidationError, match="FORWARDED_ALLOW_IPS"):
        make_settings(database_url, forwarded_allow_ips=value)
