"""Identity: one-time codes, tokens and their attacks, sessions, limits."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audit.log import RequestOrigin
from app.core.config import Settings
from app.core.phones import normalize_phone
from app.identity import auth, tokens
from app.main import create_app
from tests.conftest import join_test_transaction, make_settings
from tests.principals import bearer, make_person, next_phone, token_for
from tests.problems import assert_problem

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
AppFactory = Callable[..., AbstractAsyncContextManager[FastAPI]]

# Client addresses: the owner of a phone, and people who are not.
OWNER, ATTACKER, ACCOMPLICE = "198.51.100.10", "203.0.113.66", "203.0.113.77"


@pytest.fixture
def app_with(session: AsyncSession, database_url: str) -> AppFactory:
    """An app with other settings, in the test's transaction."""

    @asynccontextmanager
    async def factory(**overrides: object) -> AsyncIterator[FastAPI]:
        app = create_app(make_settings(database_url, **overrides))
        join_test_transaction(app, session)
        async with LifespanManager(app):
            yield app

    return factory


def client_at(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client whose requests come from `address`."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


@pytest.fixture
def client_with(app_with: AppFactory) -> ClientFactory:
    """A client on an app with other settings, in the test's transaction."""

    @asynccontextmanager
    async def factory(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
        async with app_with(**overrides) as app, client_at(app) as http:
            yield http

    return factory


def other_than(*codes: str) -> str:
    """A six-digit code that is none of `codes`."""
    return next(f"{n:06d}" for n in range(len(codes) + 1) if f"{n:06d}" not in codes)


async def _login(client: httpx.AsyncClient, phone: str) -> dict[str, object]:
    sent = await client.post("/api/v1/auth/otp", json={"phone": phone})
    assert sent.status_code == 202, sent.text
    code = sent.json()["debug_code"]
    response = await client.post("/api/v1/auth/token", json={"phone": phone, "code": code})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


# ---- one-time codes --------------------------------------------------------------


async def test_otp_login_creates_a_resident(
    anon_client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    phone = next_phone()
    sent = await anon_client.post("/api/v1/auth/otp", json={"phone": phone})
    assert sent.status_code == 202
    body = sent.json()
    assert body["expires_in"] == 300
    assert body["resend_after"] == 60
    assert re.fullmatch(r"\d{6}", body["debug_code"])

    response = await anon_client.post(
        "/api/v1/auth/token", json={"phone": phone, "code": body["debug_code"]}
    )
    assert response.status_code == 200, response.text
    pair = response.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 900
    assert pair["user"]["roles"] == ["resident"]
    assert pair["user"]["teams"] == []
    assert pair["user"]["phone_masked"] == f"{phone[3:6]}****{phone[-4:]}"

    me = await anon_client.get("/api/v1/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json() == pair["user"]

    stored = (
        await connection.execute(
            text("SELECT code_hash FROM otp_code WHERE phone = :p"), {"p": phone}
        )
    ).scalar_one()
    assert body["debug_code"] not in stored, "only a keyed digest of the code is kept"
    actions = (
        (
            await connection.execute(
                text("SELECT action FROM audit_log WHERE actor_person_id = :id"),
                {"id": pair["user"]["id"]},
            )
        )
        .scalars()
        .all()
    )
    assert "login" in actions


async def test_a_code_is_single_use_and_bound_to_its_phone(
    anon_client: httpx.AsyncClient,
) -> None:
    phone, other = next_phone(), next_phone()
    code = (await anon_client.post("/api/v1/auth/otp", json={"phone": phone})).json()["debug_code"]
    wrong_phone = await anon_client.post("/api/v1/auth/token", json={"phone": other, "code": code})
    assert_problem(wrong_phone, 401, "invalid_otp")
    ok = await anon_client.post("/api/v1/auth/token", json={"phone": phone, "code": code})
    assert ok.status_code == 200
    again = await anon_client.post("/api/v1/auth/token", json={"phone": phone, "code": code})
    assert_problem(again, 401, "invalid_otp")


async def test_five_wrong_tries_kill_every_code_they_were_tried_on(
    app_with: AppFactory, connection: AsyncConnection
) -> None:
    """A wrong try is compared with each live code of the phone, so it counts
    against each: no code is ever exposed to more than five guesses."""
    phone = next_phone()
    async with (
        app_with(otp_resend_seconds=0) as app,
        client_at(app, OWNER) as owner,
        client_at(app, ATTACKER) as attacker,
        client_at(app, ACCOMPLICE) as accomplice,
    ):
        codes = [
            (await owner.post("/api/v1/auth/otp", json={"phone": phone})).json()["debug_code"]
            for _ in range(2)
        ]
        wrong = other_than(*codes)
        # Two addresses: one alone may not try five times (see below).
        for http in (attacker, attacker, attacker, accomplice, accomplice):
            response = await http.post("/api/v1/auth/token", json={"phone": phone, "code": wrong})
            assert_problem(response, 401, "invalid_otp")
        for code in codes:
            right = await owner.post("/api/v1/auth/token", json={"phone": phone, "code": code})
            assert_problem(right, 401, "invalid_otp")
    tries = (
        await connection.execute(
            text(
                "SELECT attempts, closed_at IS NOT NULL FROM otp_code WHERE phone = :p "
                "ORDER BY created_at"
            ),
            {"p": phone},
        )
    ).all()
    assert [tuple(row) for row in tries] == [(5, True), (5, True)]
    failures = (
        await connection.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'login_failed'")
        )
    ).scalar_one()
    assert failures >= 7


async def test_one_address_cannot_use_up_the_owners_code(app_with: AppFactory) -> None:
    phone = next_phone()
    async with (
        app_with() as app,
        client_at(app, OWNER) as owner,
        client_at(app, ATTACKER) as attacker,
    ):
        code = (await owner.post("/api/v1/auth/otp", json={"phone": phone})).json()["debug_code"]
        wrong = other_than(code)
        for _ in range(3):
            response = await attacker.post(
                "/api/v1/auth/token", json={"phone": phone, "code": wrong}
            )
            assert_problem(response, 401, "invalid_otp")
        for guess in (wrong, code):  # from this address, even the right code waits
            limited = await attacker.post(
                "/api/v1/auth/token", json={"phone": phone, "code": guess}
            )
            assert_problem(limited, 429, "rate_limited")
            assert 0 < int(limited.headers["retry-after"]) <= 300
        login = await owner.post("/api/v1/auth/token", json={"phone": phone, "code": code})
        assert login.status_code == 200, login.text


async def test_tries_on_a_phone_with_no_live_code_spend_nothing(
    client_with: ClientFactory,
) -> None:
    """Nothing can be guessed, so nothing is counted: no address is held up."""
    async with client_with() as http:
        for _ in range(8):
            response = await http.post(
                "/api/v1/auth/token", json={"phone": next_phone(), "code": "000000"}
            )
            assert_problem(response, 401, "invalid_otp")
        phone = next_phone()
        for _ in range(8):
            response = await http.post(
                "/api/v1/auth/token", json={"phone": phone, "code": "000000"}
            )
            assert_problem(response, 401, "invalid_otp")


async def test_an_expired_code_fails(
    anon_client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    phone = next_phone()
    code = (await anon_client.post("/api/v1/auth/otp", json={"phone": phone})).json()["debug_code"]
    await connection.execute(
        text("UPDATE otp_code SET expires_at = now() - interval '1 second' WHERE phone = :p"),
        {"p": phone},
    )
    response = await anon_client.post("/api/v1/auth/token", json={"phone": phone, "code": code})
    assert_problem(response, 401, "invalid_otp")


async def test_resend_waits_and_the_newest_three_codes_stay_valid(
    client_with: ClientFactory,
) -> None:
    phone = next_phone()
    async with client_with() as http:
        await http.post("/api/v1/auth/otp", json={"phone": phone})
        response = await http.post("/api/v1/auth/otp", json={"phone": phone})
        body = assert_problem(response, 429, "otp_resend_too_soon")
        assert 55 <= int(response.headers["retry-after"]) <= 61
        assert body["retry_after"] == int(response.headers["retry-after"])
    phone = next_phone()
    async with client_with(otp_resend_seconds=0) as http:
        codes = [
            (await http.post("/api/v1/auth/otp", json={"phone": phone})).json()["debug_code"]
            for _ in range(4)
        ]
        oldest, used, *others = codes
        if oldest not in codes[1:]:
            old = await http.post("/api/v1/auth/token", json={"phone": phone, "code": oldest})
            assert_problem(old, 401, "invalid_otp")
        login = await http.post("/api/v1/auth/token", json={"phone": phone, "code": used})
        assert login.status_code == 200, login.text
        # A login closes the phone's other codes: none is needed any more.
        for code in others:
            if code != used:
                after = await http.post("/api/v1/auth/token", json={"phone": phone, "code": code})
                assert_problem(after, 401, "invalid_otp")


async def test_codes_someone_else_asks_for_do_not_cancel_the_owners(
    app_with: AppFactory,
) -> None:
    phone = next_phone()
    async with (
        app_with(otp_resend_seconds=0) as app,
        client_at(app, OWNER) as owner,
        client_at(app, ATTACKER) as attacker,
    ):
        code = (await owner.post("/api/v1/auth/otp", json={"phone": phone})).json()["debug_code"]
        for _ in range(2):
            sent = await attacker.post("/api/v1/auth/otp", json={"phone": phone})
            assert sent.status_code == 202, sent.text
        login = await owner.post("/api/v1/auth/token", json={"phone": phone, "code": code})
        assert login.status_code == 200, login.text


async def test_a_send_challenge_guards_the_phones_codes(
    app_with: AppFactory, connection: AsyncConnection
) -> None:
    """The hook runs before anything is spent: a bot that fails it uses up
    neither the phone's codes for the hour nor its address's."""

    class Riddle:
        async def check(self, phone_e164: str, origin: RequestOrigin, answer: str | None) -> bool:
            return answer == "42"

    phone = next_phone()
    async with app_with() as app, client_at(app, ATTACKER) as http:
        app.state.otp_challenge = Riddle()
        for answer in ({}, {"X-Challenge-Response": "41"}):
            refused = await http.post("/api/v1/auth/otp", json={"phone": phone}, headers=answer)
            assert_problem(refused, 403, "challenge_failed")
        spent = await connection.execute(
            text(
                "SELECT (SELECT count(*) FROM rate_limit_hit WHERE bucket LIKE :phone "
                "OR bucket LIKE :ip), (SELECT count(*) FROM otp_code WHERE phone = :p)"
            ),
            {"phone": f"%{phone}%", "ip": f"%{ATTACKER}%", "p": phone},
        )
        assert tuple(spent.one()) == (0, 0)
        sent = await http.post(
            "/api/v1/auth/otp", json={"phone": phone}, headers={"X-Challenge-Response": "42"}
        )
        assert sent.status_code == 202, sent.text


async def test_per_phone_and_per_ip_hourly_limits(client_with: ClientFactory) -> None:
    async with client_with(otp_per_ip_per_hour=3) as http:
        for _ in range(3):
            response = await http.post("/api/v1/auth/otp", json={"phone": next_phone()})
            assert response.status_code == 202
        response = await http.post("/api/v1/auth/otp", json={"phone": next_phone()})
        assert_problem(response, 429, "rate_limited")
        assert int(response.headers["retry-after"]) > 0

    phone = next_phone()
    async with client_with(otp_resend_seconds=0, otp_per_phone_per_hour=5) as http:
        for _ in range(5):
            assert (await http.post("/api/v1/auth/otp", json={"phone": phone})).status_code == 202
        response = await http.post("/api/v1/auth/otp", json={"phone": phone})
        assert_problem(response, 429, "rate_limited")
        assert 3500 <= int(response.headers["retry-after"]) <= 3600


@pytest.mark.parametrize("phone", ["12345", "+1 202 555 01", "not a phone", "+86 010 1234 5678"])
async def test_bad_phones_are_422(anon_client: httpx.AsyncClient, phone: str) -> None:
    response = await anon_client.post("/api/v1/auth/otp", json={"phone": phone})
    assert_problem(response, 422, "invalid_phone")


async def test_bodies_are_strict(anon_client: httpx.AsyncClient) -> None:
    extra = await anon_client.post("/api/v1/auth/otp", json={"phone": next_phone(), "x": 1})
    assert_problem(extra, 422, "validation_error")
    missing = await anon_client.post("/api/v1/auth/token", json={"phone": next_phone()})
    assert_problem(missing, 422, "validation_error")


def test_phone_normalisation() -> None:
    assert normalize_phone("13800000000", allow_demo=False) == "+8613800000000"
    assert normalize_phone("+86 138 0000 0000", allow_demo=False) == "+8613800000000"
    assert normalize_phone("10012345678", allow_demo=True) == "+8610012345678"


async def test_oversized_bodies_are_413(anon_client: httpx.AsyncClient) -> None:
    big = b'{"phone": "' + b"1" * (65 * 1024) + b'"}'
    response = await anon_client.post(
        "/api/v1/auth/otp", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 4096

    streamed = await anon_client.post(
        "/api/v1/auth/otp", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


# ---- tokens ---------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _forge(settings: Settings, **changes: object) -> str:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "iss": tokens.ISSUER,
        "aud": tokens.AUDIENCE,
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    claims.update(changes)
    return jwt.encode(claims, settings.secret_key, algorithm="HS256")


async def test_token_attacks_are_refused(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    person_id = await make_person(session, "攻击目标")
    pair = await auth.start_session(session, settings, person_id)
    real = jwt.decode(pair.access_token, options={"verify_signature": False})
    header_none = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(real).encode())
    attacks = {
        "alg none": f"{header_none}.{payload}.",
        "wrong signature": jwt.encode(
            real, "another-secret-that-is-long-enough-for-hs256", algorithm="HS256"
        ),
        "expired": _forge(settings, sub=real["sub"], sid=real["sid"], exp=1_600_000_000),
        "refresh as access": pair.refresh_token,
        "wrong audience": _forge(settings, sub=real["sub"], sid=real["sid"], aud="other"),
        "wrong issuer": _forge(settings, sub=real["sub"], sid=real["sid"], iss="evil"),
        "no session": _forge(settings, sub=real["sub"]),
        "garbage": "not.a.jwt",
    }
    for name, token in attacks.items():
        response = await anon_client.get("/api/v1/me", headers=bearer(token))
        assert response.status_code == 401, name
        assert response.json()["code"] in {"invalid_token", "token_expired"}, name
        assert response.headers["www-authenticate"] == "Bearer"
    assert (
        await anon_client.get("/api/v1/me", headers=bearer(pair.access_token))
    ).status_code == 200
    # An access token where a refresh token is needed.
    response = await anon_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair.access_token}
    )
    assert_problem(response, 401, "invalid_token")
    other_scheme = await anon_client.get("/api/v1/me", headers={"Authorization": "Basic eDp5"})
    assert_problem(other_scheme, 401, "invalid_token")


async def test_refresh_rotates_and_a_replay_kills_the_chain(
    anon_client: httpx.AsyncClient,
) -> None:
    pair = await _login(anon_client, next_phone())
    first = await anon_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != pair["refresh_token"]
    assert (
        await anon_client.get("/api/v1/me", headers=bearer(rotated["access_token"]))
    ).status_code == 200

    replay = await anon_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert_problem(replay, 401, "refresh_token_reused")
    # The whole chain is dead: the newer tokens too.
    after = await anon_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert after.status_code == 401
    assert (
        await anon_client.get("/api/v1/me", headers=bearer(rotated["access_token"]))
    ).status_code == 401


async def test_logout_ends_access_and_refresh(anon_client: httpx.AsyncClient) -> None:
    pair = await _login(anon_client, next_phone())
    access = bearer(str(pair["access_token"]))
    assert (await anon_client.post("/api/v1/auth/logout", headers=access)).status_code == 204
    assert_problem(await anon_client.get("/api/v1/me", headers=access), 401, "invalid_token")
    refreshed = await anon_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert_problem(await anon_client.post("/api/v1/auth/logout"), 401, "not_authenticated")


async def test_a_disabled_person_loses_every_session(
    client_with: ClientFactory, session: AsyncSession, settings: Settings
) -> None:
    phone = next_phone()
    admin = await token_for(session, settings, await make_person(session, "管理员", is_admin=True))
    async with client_with(otp_resend_seconds=0) as http:
        pair, second = await _login(http, phone), await _login(http, phone)
        user_id = pair["user"]["id"]  # type: ignore[index]
        response = await http.post(
            f"/api/v1/admin/persons/{user_id}/disable", headers=bearer(admin)
        )
        assert response.status_code == 200, response.text
        for each in (pair, second):
            me = await http.get("/api/v1/me", headers=bearer(str(each["access_token"])))
            assert_problem(me, 401, "invalid_token")
            refreshed = await http.post(
                "/api/v1/auth/refresh", json={"refresh_token": each["refresh_token"]}
            )
            assert refreshed.status_code == 401
        code = (await http.post("/api/v1/auth/otp", json={"phone": phone})).json()["debug_code"]
        again = await http.post("/api/v1/auth/token", json={"phone": phone, "code": code})
        assert_problem(again, 403, "account_disabled")


async def test_the_audit_log_cannot_be_changed(connection: AsyncConnection) -> None:
    await connection.execute(text("INSERT INTO audit_log (action) VALUES ('test')"))
    for statement in (
        "UPDATE audit_log SET action = 'changed'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ):
        savepoint = await connection.begin_nested()
        with pytest.raises(Exception, match="append-only"):
            await connection.execute(text(statement))
        await savepoint.rollback()
