"""`duty.updated` on the live stream, on committed data: a dispatcher's map
kept current without polling (docs/live.md, "Duty on the map")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.events import hub as live
from app.main import create_app
from tests.conftest import make_settings
from tests.dispatch.test_map import Spot, spot_in_community
from tests.events.test_asyncapi import server_frame_validator
from tests.live import Ledger, committed_person, committed_team, eventually
from tests.scene import Member, offset

THROTTLE_S = 1.5


@dataclass
class Inbox:
    """Every frame a socket received, read by a task of its own."""

    ws: AsyncWebSocketSession
    frames: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def of(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, m) for at, m in self.frames if m.get("type") == kind]

    def duty_of(self, member: Member) -> list[tuple[float, dict[str, Any]]]:
        return [
            (at, m)
            for at, m in self.of("duty.updated")
            if m["data"]["member_id"] == str(member.person_id)
        ]


async def _read(inbox: Inbox) -> None:
    validator = server_frame_validator()
    while True:
        message = json.loads(await inbox.ws.receive_text())
        # Every frame is one the AsyncAPI document describes.
        validator.validate(message)
        inbox.frames.append((time.monotonic(), message))


@asynccontextmanager
async def inboxes(
    sockets: httpx.AsyncClient, **who: dict[str, str]
) -> AsyncIterator[dict[str, Inbox]]:
    async with contextlib.AsyncExitStack() as stack:
        boxes: dict[str, Inbox] = {}
        tasks = []
        for name, headers in who.items():
            ws: AsyncWebSocketSession = await stack.enter_async_context(
                aconnect_ws("http://t/api/v1/ws", sockets, headers=headers)
            )
            boxes[name] = Inbox(ws)
            tasks.append(asyncio.create_task(_read(boxes[name])))
        try:
            for box in boxes.values():
                await box.ws.send_text(json.dumps({"type": "ping"}))

            async def all_live() -> bool:
                return all(box.of("pong") for box in boxes.values())

            await eventually(all_live, within_s=5)
            yield boxes
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _spot(engine: AsyncEngine, nth: int) -> Spot:
    async with AsyncSession(engine) as session:
        return await spot_in_community(session, nth)


def _point(lat: float, lng: float) -> dict[str, float]:
    return {"lat": lat, "lng": lng, "accuracy_m": 8.0}


async def test_a_dispatchers_map_follows_its_own_areas_members_only(
    database_url: str, engine: AsyncEngine, ledger: Ledger
) -> None:
    settings = make_settings(database_url, duty_event_throttle_seconds=THROTTLE_S)
    here, elsewhere = await _spot(engine, 0), await _spot(engine, 1)
    team = await committed_team(engine, settings, ledger, here.lat, here.lng, members=2)
    far = await committed_team(engine, settings, ledger, elsewhere.lat, elsewhere.lng, members=1)
    dispatcher = await committed_person(engine, settings, ledger, dispatcher_of=here.community)
    resident = await committed_person(engine, settings, ledger)
    mover, colleague = team.members
    stranger = far.members[0]

    app = create_app(settings)
    async with LifespanManager(app):
        hub: live.EventHub = app.state.hub
        await asyncio.wait_for(hub.connected.wait(), 5)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
            httpx.AsyncClient(transport=ASGIWebSocketTransport(app), base_url="http://t") as ws,
            inboxes(
                ws,
                dispatcher=dispatcher.headers,
                resident=resident.headers,
                volunteer=colleague.headers,
            ) as box,
        ):
            map_ = box["dispatcher"]

            async def move(who: Member, north_m: float) -> dict[str, float]:
                point = _point(*offset(here.lat, here.lng, north_m, 0))
                answer = await http.put("/api/v1/me/location", json=point, headers=who.headers)
                assert answer.status_code == 204, answer.text
                return point

            # Another area's member moves: nothing for this dispatcher.
            far_point = _point(*offset(elsewhere.lat, elsewhere.lng, 25, 0))
            moved = await http.put("/api/v1/me/location", json=far_point, headers=stranger.headers)
            assert moved.status_code == 204
            # Its own member moves: at once, where to, with nothing personal.
            sent_at = time.monotonic()
            first = await move(mover, 10)

            async def first_arrived() -> bool:
                return len(map_.duty_of(mover)) == 1

            await eventually(first_arrived, within_s=THROTTLE_S * 0.8)
            _, message = map_.duty_of(mover)[0]
            assert "id" not in message  # no event of the log
            data = message["data"]
            assert data["on_duty"] is True
            assert data["available"] is True
            assert data["team_ids"] == [str(team.id)]
            assert data["location"]["lat"] == first["lat"]
            assert data["location"]["lng"] == first["lng"]
            assert "phone" not in json.dumps(message)

            # Two more moves within the window: nothing now, then the last of them.
            await move(mover, 20)
            last = await move(mover, 30)
            await asyncio.sleep(THROTTLE_S * 0.5)
            assert len(map_.duty_of(mover)) == 1

            async def last_arrived() -> bool:
                return len(map_.duty_of(mover)) == 2

            await eventually(last_arrived, within_s=THROTTLE_S * 2)
            at, trailing = map_.duty_of(mover)[1]
            assert at - sent_at >= THROTTLE_S * 0.9
            assert trailing["data"]["location"]["lat"] == last["lat"]

            # A move then off duty within a window: off duty arrives at once.
            await asyncio.sleep(THROTTLE_S * 1.1)
            await move(mover, 40)
            await eventually(lambda: _count(map_, mover, 3), within_s=THROTTLE_S)
            off_at = time.monotonic()
            off = await http.put("/api/v1/me/duty", json={"on_duty": False}, headers=mover.headers)
            assert off.status_code == 200, off.text
            await eventually(lambda: _count(map_, mover, 4), within_s=THROTTLE_S * 0.5)
            at, gone = map_.duty_of(mover)[3]
            assert at - off_at < THROTTLE_S * 0.5
            assert gone["data"]["on_duty"] is False
            assert gone["data"]["location"] is None

            # Wait out any window, then look at what everyone got.
            await asyncio.sleep(THROTTLE_S * 1.5)
            assert len(map_.duty_of(mover)) == 4
            assert map_.duty_of(stranger) == []
            assert box["resident"].of("duty.updated") == []
            assert box["volunteer"].of("duty.updated") == []


async def _count(inbox: Inbox, member: Member, n: int) -> bool:
    return len(inbox.duty_of(member)) >= n


async def test_a_dispatcher_gets_every_call_event_of_its_area_and_none_of_another(
    database_url: str, engine: AsyncEngine, ledger: Ledger
) -> None:
    settings = make_settings(database_url)
    here, elsewhere = await _spot(engine, 0), await _spot(engine, 1)
    await committed_team(engine, settings, ledger, here.lat, here.lng, members=1)
    await committed_team(engine, settings, ledger, elsewhere.lat, elsewhere.lng, members=1)
    dispatcher = await committed_person(engine, settings, ledger, dispatcher_of=here.community)
    resident = await committed_person(engine, settings, ledger)

    app = create_app(settings)
    async with LifespanManager(app):
        hub: live.EventHub = app.state.hub
        await asyncio.wait_for(hub.connected.wait(), 5)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
            httpx.AsyncClient(transport=ASGIWebSocketTransport(app), base_url="http://t") as ws,
            inboxes(ws, dispatcher=dispatcher.headers) as box,
        ):
            ids: dict[str, str] = {}
            for name, spot in (("mine", here), ("theirs", elsewhere)):
                pressed = await http.post(
                    "/api/v1/calls",
                    json={"location": _point(*offset(spot.lat, spot.lng, 5, 5))},
                    headers={**resident.headers, "Idempotency-Key": str(uuid.uuid4())},
                )
                assert pressed.status_code == 201, pressed.text
                ids[name] = pressed.json()["id"]

            async def offered() -> bool:
                return any(
                    m.get("call_id") == ids["mine"] and m["type"] == "offer.created"
                    for _, m in box["dispatcher"].frames
                )

            await eventually(offered, within_s=5)
            await asyncio.sleep(0.5)
            seen = {m.get("call_id") for _, m in box["dispatcher"].frames}
            assert ids["mine"] in seen
            assert ids["theirs"] not in seen
            updates = [
                m for _, m in box["dispatcher"].of("call.updated") if m["call_id"] == ids["mine"]
            ]
            # The exact point and the staff's view of the call, as the map needs.
            assert updates
            assert updates[-1]["data"]["location"]["accuracy_m"] == 8.0
