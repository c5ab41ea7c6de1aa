"""`duty.updated` across real server processes: a dispatcher connected to
one process follows a member whose positions go through another."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.conftest import make_settings
from tests.dispatch.test_map import spot_in_community
from tests.live import Ledger, LiveServer, committed_person, committed_team
from tests.scene import offset

pytestmark = pytest.mark.processes


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.stop()


def connect(
    url: str, client: httpx.AsyncClient, headers: dict[str, str]
) -> AbstractAsyncContextManager[AsyncWebSocketSession]:
    return aconnect_ws(url, client, headers=dict(headers))


async def _duty(ws: AsyncWebSocketSession) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await ws.receive_text(timeout=10))
        if message.get("type") == "duty.updated":
            return message


async def test_a_move_through_one_process_reaches_a_map_on_another(
    database_url: str,
    engine: AsyncEngine,
    ledger: Ledger,
    servers: list[LiveServer],
    tmp_path: Path,
) -> None:
    settings = make_settings(database_url)
    async with AsyncSession(engine) as session:
        here = await spot_in_community(session, 0)
        elsewhere = await spot_in_community(session, 1)
    team = await committed_team(engine, settings, ledger, here.lat, here.lng, members=1)
    far = await committed_team(engine, settings, ledger, elsewhere.lat, elsewhere.lng, members=1)
    dispatcher = await committed_person(engine, settings, ledger, dispatcher_of=here.community)
    env = {"run_push_worker": "false", "duty_event_throttle_seconds": 30}
    first = LiveServer(database_url, tmp_path / "first.log", env)
    second = LiveServer(database_url, tmp_path / "second.log", env, workers=2)
    servers.extend([first, second])
    await first.wait_ready()
    await second.wait_ready()

    async with (
        httpx.AsyncClient(timeout=10) as http,
        httpx.AsyncClient(timeout=10) as sockets,
        connect(f"{first.url}/api/v1/ws", sockets, dispatcher.headers) as ws,
    ):
        await ws.send_text(json.dumps({"type": "ping"}))
        while json.loads(await ws.receive_text(timeout=10)).get("type") != "pong":
            pass
        # The other community's member moves first, then the dispatcher's own:
        # the first duty.updated the socket gets is its own member's.
        lat, lng = offset(elsewhere.lat, elsewhere.lng, 15, 0)
        moved = await http.put(
            f"{second.url}/api/v1/me/location",
            json={"lat": lat, "lng": lng},
            headers=far.members[0].headers,
        )
        assert moved.status_code == 204, moved.text
        lat, lng = offset(here.lat, here.lng, 15, 0)
        moved = await http.put(
            f"{second.url}/api/v1/me/location",
            json={"lat": lat, "lng": lng, "accuracy_m": 6.0},
            headers=team.members[0].headers,
        )
        assert moved.status_code == 204, moved.text

        message = await _duty(ws)
        assert message["data"]["member_id"] == str(team.members[0].person_id)
        assert message["data"]["location"] == {"lat": lat, "lng": lng, "accuracy_m": 6.0}

        # Off duty through the other process too, at once (the window is 30 s).
        off = await http.put(
            f"{second.url}/api/v1/me/duty", json={"on_duty": False}, headers=team.members[0].headers
        )
        assert off.status_code == 200, off.text
        gone = await _duty(ws)
        assert gone["data"]["member_id"] == str(team.members[0].person_id)
        assert gone["data"]["on_duty"] is False
