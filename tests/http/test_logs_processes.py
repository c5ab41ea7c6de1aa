"""What a real `python -m app serve` process writes to its log, and whom it
believes a request comes from: uvicorn's own loggers included, which the
in-process tests never see."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tests.live import Ledger, LiveServer, committed_person
from tests.principals import next_phone
from tests.problems import assert_problem

pytestmark = pytest.mark.processes


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.stop()


def connect(
    url: str, client: httpx.AsyncClient
) -> AbstractAsyncContextManager[AsyncWebSocketSession]:
    return aconnect_ws(url, client)


def _entries(log: str) -> list[dict[str, Any]]:
    """Every line is one JSON object."""
    entries = []
    for line in log.splitlines():
        if line.strip():
            entry: dict[str, Any] = json.loads(line)
            entries.append(entry)
    return entries


async def test_a_query_string_token_never_reaches_the_log(
    database_url: str,
    engine: AsyncEngine,
    ledger: Ledger,
    servers: list[LiveServer],
    tmp_path: Path,
) -> None:
    resident = await committed_person(engine, make_settings(database_url), ledger)
    token = resident.headers["Authorization"].removeprefix("Bearer ")
    # INFO: uvicorn writes a line for each WebSocket handshake at that level.
    server = LiveServer(database_url, tmp_path / "server.log", {"log_level": "INFO"})
    servers.append(server)
    await server.wait_ready()

    ws_url = server.url.replace("http://", "ws://")
    async with httpx.AsyncClient(timeout=10) as http:
        async with connect(f"{ws_url}/api/v1/ws?token={token}", http) as ws:
            await ws.send_text(json.dumps({"type": "ping"}))
            while json.loads(await ws.receive_text(timeout=10))["type"] != "pong":
                pass
        # A WebSocket no route serves is refused (403), and logged as such.
        with pytest.raises(Exception):  # noqa: B017 - the handshake is refused
            async with connect(f"{ws_url}/api/v1/nothing?token={token}", http) as ws:
                await ws.receive_text(timeout=5)
        answered = await http.get(
            f"{server.url}/api/v1/areas/locate",
            params={"lat": 22.77, "lng": 113.93, "token": "sekrit-query-value"},
            headers=resident.headers,
        )
        assert answered.status_code == 200
    server.stop()

    log = server.log()
    entries = _entries(log)
    handshakes = [e["msg"] for e in entries if '"WebSocket ' in e["msg"]]
    # The handshake lines are there (the test reads the right log), without
    # their query strings.
    assert any("/api/v1/ws?[redacted]" in line and "accepted" in line for line in handshakes), log
    assert any("/api/v1/nothing?[redacted]" in line for line in handshakes), log
    for secret in (token, token[:40], "token=", "sekrit"):
        assert secret not in log


async def test_a_database_error_is_logged_once_without_its_values(
    database_url: str, engine: AsyncEngine, servers: list[LiveServer], tmp_path: Path
) -> None:
    phone = next_phone()
    # A constraint that only this phone breaks: the insert of its one-time
    # code fails in the database, with the phone among the statement's
    # parameters and in PostgreSQL's DETAIL line ("Failing row contains").
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "ALTER TABLE otp_code ADD CONSTRAINT test_refuse_one_phone "
                f"CHECK (phone <> '{phone}') NOT VALID"
            )
        )
    try:
        server = LiveServer(database_url, tmp_path / "server.log")
        servers.append(server)
        await server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            response = await http.post("/api/v1/auth/otp", json={"phone": phone})
        body = assert_problem(response, 500, "internal_error")
        server.stop()
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE otp_code DROP CONSTRAINT test_refuse_one_phone"))

    log = server.log()
    entries = _entries(log)
    errors = [e for e in entries if e["level"] in {"error", "critical"}]
    assert len(errors) == 1, log
    [error] = errors
    assert error["request_id"] == body["request_id"]
    # What failed and where, by name.
    assert "IntegrityError" in json.dumps(error)
    assert "test_refuse_one_phone" in json.dumps(error)
    digits = phone.removeprefix("+86")
    for leak in (digits, digits[-8:], "parameters:", "Failing row", "DETAIL"):
        assert leak not in log, leak


async def test_a_forwarded_for_header_from_loopback_is_not_believed(
    database_url: str, engine: AsyncEngine, servers: list[LiveServer], tmp_path: Path
) -> None:
    """Without FORWARDED_ALLOW_IPS no peer is a proxy, loopback included: a
    client that names its own address gets neither a fresh per-address
    limit nor a forged address in the audit log."""
    server = LiveServer(database_url, tmp_path / "server.log", {"otp_per_ip_per_hour": 2})
    servers.append(server)
    await server.wait_ready()
    phones = [next_phone() for _ in range(3)]
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM rate_limit_hit WHERE bucket = 'otp:ip:127.0.0.1'"))
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            sent = await http.post(
                "/api/v1/auth/otp",
                json={"phone": phones[0]},
                headers={"X-Forwarded-For": "198.51.100.1"},
            )
            assert sent.status_code == 202, sent.text
            login = await http.post(
                "/api/v1/auth/token",
                json={"phone": phones[0], "code": sent.json()["debug_code"]},
                headers={"X-Forwarded-For": "198.51.100.1"},
            )
            assert login.status_code == 200, login.text
            person_id = login.json()["user"]["id"]
            second = await http.post(
                "/api/v1/auth/otp",
                json={"phone": phones[1]},
                headers={"X-Forwarded-For": "198.51.100.2"},
            )
            assert second.status_code == 202, second.text
            third = await http.post(
                "/api/v1/auth/otp",
                json={"phone": phones[2]},
                headers={"X-Forwarded-For": "198.51.100.3"},
            )
            assert_problem(third, 429, "rate_limited")
        async with engine.connect() as conn:
            ip = (
                await conn.execute(
                    text(
                        "SELECT host(ip) FROM audit_log "
                        "WHERE action = 'login' AND actor_person_id = :p"
                    ),
                    {"p": person_id},
                )
            ).scalar_one()
        assert ip == "127.0.0.1"
    finally:
        # Other tests of the session count codes from 127.0.0.1 too.
        async with engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM person WHERE phone = ANY(CAST(:p AS text[]))"), {"p": phones}
            )
            await conn.execute(text("DELETE FROM rate_limit_hit WHERE bucket = 'otp:ip:127.0.0.1'"))
