"""Two server processes on one database, each keeping the principals it
loaded (app/identity/principals.py): what is done through one (a logout, a
disable, a team or an area changed) takes effect in the other within 1 s,
though its cache would keep them for minutes and its sockets' periodic
check is an hour away."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.events import ws as ws_module
from tests.conftest import make_settings
from tests.live import (
    Ledger,
    LiveServer,
    committed_person,
    committed_team,
    eventually,
    park,
    spots,
)
from tests.principals import bearer, make_person, token_for

pytestmark = pytest.mark.processes

CONTRACT_S = 1.0
ENV = {
    "principal_cache_seconds": 600,
    "ws_auth_recheck_seconds": 3600,
    "search_radius_m": 400,
    "run_push_worker": "false",
}


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    pair = (
        LiveServer(database_url, tmp_path / "a.log", ENV),
        LiveServer(database_url, tmp_path / "b.log", ENV),
    )
    yield pair
    for server in pair:
        server.stop()
    for server in pair:
        assert "Traceback" not in server.log()


async def _status(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> int:
    return (await http.get(url, headers=headers)).status_code


async def _close_code(ws: AsyncWebSocketSession) -> int:
    """The code the server closes the socket with, within the contract."""
    try:
        while True:
            await ws.receive_text(timeout=CONTRACT_S)
    except WebSocketDisconnect as closed:
        return closed.code


async def test_logout_disable_and_changed_roles_take_effect_in_the_other_process(
    database_url: str,
    engine: AsyncEngine,
    ledger: Ledger,
    servers: tuple[LiveServer, LiveServer],
) -> None:
    settings = make_settings(database_url)
    a, b = servers
    [(lat, lng)] = await spots(engine, 1, 2000)
    await park(engine, ledger, lat, lng, 600)
    team = await committed_team(engine, settings, ledger, lat, lng, members=2)
    leaving, staying = team.members
    caller = await committed_person(engine, settings, ledger)
    quitter = await committed_person(engine, settings, ledger)
    banned = await committed_person(engine, settings, ledger)
    async with engine.begin() as conn:
        community, other_community = (
            await conn.execute(
                text("SELECT id FROM area WHERE level = 'community' ORDER BY code LIMIT 2")
            )
        ).scalars()
    dispatcher = await committed_person(engine, settings, ledger, dispatcher_of=community)
    async with AsyncSession(engine) as session:
        admin_id = await make_person(session, "管理员", is_admin=True)
        ledger.persons.append(admin_id)
        admin = bearer(await token_for(session, settings, admin_id))
        phone = (
            await session.execute(
                text("SELECT phone FROM person WHERE id = :p"), {"p": dispatcher.person_id}
            )
        ).scalar_one()
        await session.commit()
    await a.wait_ready()
    await b.wait_ready()
    me = "/api/v1/me"

    async with httpx.AsyncClient(timeout=10) as http, httpx.AsyncClient(timeout=10) as sockets:
        # Both processes load, then keep, everyone's principal.
        for who in (leaving, caller, quitter, banned, dispatcher):
            for server in (a, b, a, b):
                assert await _status(http, server.url + me, who.headers) == 200

        # A socket on the second process; its periodic check is an hour away.
        # A copy of the headers: httpx-ws adds its handshake's to the dict.
        socket: AbstractAsyncContextManager[AsyncWebSocketSession] = aconnect_ws(
            f"{b.url}/api/v1/ws", sockets, headers=dict(quitter.headers)
        )
        async with socket as ws:
            await ws.send_text(json.dumps({"type": "ping"}))
            assert json.loads(await ws.receive_text(timeout=5))["type"] == "pong"

            # Logged out through the first: refused by the second, socket closed.
            logout = await http.post(f"{a.url}/api/v1/auth/logout", headers=quitter.headers)
            assert logout.status_code == 204

            async def logged_out() -> bool:
                return await _status(http, b.url + me, quitter.headers) == 401

            await eventually(logged_out, within_s=CONTRACT_S)
            assert await _close_code(ws) == ws_module.CLOSE_SESSION_ENDED

        # Disabled by an admin through the first.
        disabled = await http.post(
            f"{a.url}/api/v1/admin/persons/{banned.person_id}/disable", headers=admin
        )
        assert disabled.status_code == 200, disabled.text

        async def banned_out() -> bool:
            return await _status(http, b.url + me, banned.headers) == 401

        await eventually(banned_out, within_s=CONTRACT_S)

        # A dispatcher moved to another community through the first.
        moved = await http.post(
            f"{a.url}/api/v1/admin/dispatchers",
            json={"phone": phone, "display_name": "调度", "area_id": str(other_community)},
            headers=admin,
        )
        assert moved.status_code == 201, moved.text

        async def moved_seen() -> bool:
            answer = await http.get(b.url + me, headers=dispatcher.headers)
            area: dict[str, Any] = answer.json()["dispatcher_area"]
            return bool(area["id"] == str(other_community))

        await eventually(moved_seen, within_s=CONTRACT_S)

        # A member taken off the team cannot take its offer through the second.
        pressed = await http.post(
            f"{a.url}/api/v1/calls",
            json={"location": {"lat": lat, "lng": lng}},
            headers=caller.headers,
        )
        assert pressed.status_code == 201, pressed.text
        offers = await http.get(f"{b.url}/api/v1/offers", headers=leaving.headers)
        [offer] = [o for o in offers.json()["data"] if o["call_id"] == pressed.json()["id"]]
        async with engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM team_member WHERE person_id = :p"), {"p": leaving.person_id}
            )

        async def off_the_team() -> bool:
            answer = await http.get(b.url + me, headers=leaving.headers)
            teams: list[Any] = answer.json()["teams"]
            return teams == []

        await eventually(off_the_team, within_s=CONTRACT_S)
        refused = await http.post(
            f"{b.url}/api/v1/offers/{offer['id']}/accept", headers=leaving.headers
        )
        assert refused.status_code == 404, refused.text
        # The one still on the team takes it.
        taken = await http.post(
            f"{b.url}/api/v1/offers/{offer['id']}/accept", headers=staying.headers
        )
        assert taken.status_code == 200, taken.text
