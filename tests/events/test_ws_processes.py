"""The live stream across real server processes sharing one database: a
socket on one process sees what was done through another, and
`python -m app serve --workers N` works."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tests.live import Ledger, LiveServer, committed_person, committed_team, park, spots

pytestmark = pytest.mark.processes


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.stop()


def connect(
    url: str, client: httpx.AsyncClient, headers: dict[str, str]
) -> AbstractAsyncContextManager[AsyncWebSocketSession]:
    return aconnect_ws(url, client, headers=dict(headers))


async def _next(ws: AsyncWebSocketSession, kind: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await ws.receive_text(timeout=10))
        if message.get("type") == kind:
            return message


async def test_a_socket_on_one_process_sees_what_another_did(
    database_url: str,
    engine: AsyncEngine,
    ledger: Ledger,
    servers: list[LiveServer],
    tmp_path: Path,
) -> None:
    settings = make_settings(database_url)
    [(lat, lng)] = await spots(engine, 1, 2000)
    await park(engine, ledger, lat, lng, 600)
    team = await committed_team(engine, settings, ledger, lat, lng, members=2)
    resident = await committed_person(engine, settings, ledger)
    env = {"search_radius_m": 400, "run_push_worker": "false"}
    first = LiveServer(database_url, tmp_path / "first.log", env)
    second = LiveServer(database_url, tmp_path / "second.log", env, workers=2)
    servers.extend([first, second])
    await first.wait_ready()
    await second.wait_ready()

    async with (
        httpx.AsyncClient(timeout=10) as http,
        httpx.AsyncClient(timeout=10) as sockets,
        connect(f"{first.url}/api/v1/ws", sockets, resident.headers) as on_first,
        connect(f"{second.url}/api/v1/ws", sockets, team.members[0].headers) as on_second,
    ):
        for ws in (on_first, on_second):
            await ws.send_text(json.dumps({"type": "ping"}))
            await _next(ws, "pong")
        # Pressed through the second process (two workers).
        pressed = await http.post(
            f"{second.url}/api/v1/calls",
            json={"location": {"lat": lat, "lng": lng}},
            headers=resident.headers,
        )
        assert pressed.status_code == 201, pressed.text
        call_id = pressed.json()["id"]
        offered = await _next(on_second, "offer.created")
        assert offered["call_id"] == call_id
        # Accepted through the first process; the resident's socket is also
        # on the first, the member's on the second.
        accepted = await http.post(
            f"{first.url}/api/v1/offers/{offered['data']['id']}/accept",
            headers=team.members[1].headers,
        )
        assert accepted.status_code == 200, accepted.text
        seen = await _next(on_first, "call.updated")
        while seen["data"]["status"] != "accepted":
            seen = await _next(on_first, "call.updated")
        assert seen["call_id"] == call_id
        closed = await _next(on_second, "offer.closed")
        assert closed["data"]["status"] == "accepted"
    for server in servers:
        assert "Traceback" not in server.log()


async def test_metrics_add_up_across_workers(
    database_url: str, servers: list[LiveServer], tmp_path: Path
) -> None:
    server = LiveServer(
        database_url, tmp_path / "workers.log", {"run_push_worker": "false"}, workers=2
    )
    servers.append(server)
    await server.wait_ready()
    line = 'hulian_http_requests_total{method="GET",route="/healthz",status="200"}'
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        before = _counter((await http.get("/metrics")).text, line)
        for _ in range(40):
            assert (await http.get("/healthz")).status_code == 200
        scrapes = [(await http.get("/metrics")).text for _ in range(6)]
    # Whichever worker answers, the count is the sum over both.
    for text in scrapes:
        assert _counter(text, line) == before + 40
    assert any('hulian_db_pool_size{pid="' in text for text in scrapes)


def _counter(exposition: str, line: str) -> float:
    for row in exposition.splitlines():
        if row.startswith(line):
            return float(row.rsplit(" ", 1)[1])
    return 0.0
