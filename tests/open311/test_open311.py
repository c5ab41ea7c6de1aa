"""Open311 GeoReport v2 (docs/open311.md): through a real GeoReport v2
client library (`georeport` 0.3.1, from PyPI) for what it does (services,
a service definition, GET requests; it sends no api_key, so the transport
below adds the key as an X-API-Key header, as a deployment's proxy would),
and through plain HTTP for what it lacks (it cannot POST a request). The
Done-when test: a request filed by Open311 reaches a volunteer's socket as
an offer."""

from __future__ import annotations

import asyncio
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import georeport.georeport as georeport_module
import httpx
import pytest
from georeport import GeoReport
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.identity import api_keys
from tests.conftest import make_settings
from tests.events.test_ws import Factory, _next, connect, live_app
from tests.live import delete_committed
from tests.scene import SceneTeam, clear_duty_near, make_team, offset

__all__ = ["live_app"]  # a fixture, used by name

LAT, LNG = 22.77, 113.93
ROOT = "http://testserver/open311/v2"


@pytest.fixture
async def team(session: AsyncSession, settings: Settings) -> SceneTeam:
    await clear_duty_near(session, LAT, LNG, 5000)
    return await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)


@pytest.fixture
async def key(session: AsyncSession) -> str:
    return (await api_keys.create(session, "市民App", ["open311"])).key


class _ViaTestClient:
    """What `georeport` uses of `requests` (get, post), served by the
    test's in-process client on the test's event loop: the library runs in
    a thread and each of its requests is awaited on the loop."""

    def __init__(self, http: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self._http = http
        self._loop = loop
        self.key: str | None = None

    def _run(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": self.key} if self.key else {}
        call = self._http.request(method, url, headers=headers, **kwargs)
        return asyncio.run_coroutine_threadsafe(call, self._loop).result(timeout=30)

    def get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        return self._run("GET", url, params=params)

    def post(self, url: str, data: dict[str, Any] | None = None, **_: Any) -> httpx.Response:
        return self._run("POST", url, data=data)


@pytest.fixture
async def via(anon_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> _ViaTestClient:
    shim = _ViaTestClient(anon_client, asyncio.get_running_loop())
    monkeypatch.setattr(georeport_module, "requests", shim)
    return shim


async def test_a_georeport_client_lists_services_and_follows_a_request(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    team: SceneTeam,
    key: str,
    via: _ViaTestClient,
) -> None:
    client = GeoReport(ROOT, api_key=key)
    services = await asyncio.to_thread(client.get_service_list)
    codes = [s["service_code"] for s in services]
    assert codes == ["urgent", "visit", "affairs", "mediation", "hardship", "safety"]
    assert next(s for s in services if s["service_code"] == "safety")["service_name"] == "安全隐患"
    definition = await asyncio.to_thread(client.get_service_definition, "mediation")
    assert definition == {"service_code": "mediation", "attributes": []}

    posted = await anon_client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": key,
            "service_code": "safety",
            "lat": str(LAT),
            "long": str(LNG),
            "description": "井盖松动",
            "phone": "13800138000",
            "first_name": "张",
        },
    )
    assert posted.status_code == 201, posted.text
    call_id = posted.json()[0]["service_request_id"]
    row = (
        await session.execute(
            text("SELECT status, category, resident_id, api_key_id, note FROM call WHERE id = :id"),
            {"id": call_id},
        )
    ).one()
    assert row.status == "offered"
    assert row.category == "safety"
    assert row.note == "井盖松动"
    assert row.resident_id is None, "the requester's contact fields are not kept"
    assert row.api_key_id is not None
    offers = (
        await anon_client.get("/api/v1/offers?status=open", headers=team.members[0].headers)
    ).json()["data"]
    assert [o["call_id"] for o in offers] == [call_id]

    via.key = key
    followed = await asyncio.to_thread(client.get_service_request, call_id)
    assert followed["status"] == "open"
    assert followed["service_code"] == "safety"
    assert followed["status_notes"] == "已通知附近的志愿者，请稍候。"
    listed = await asyncio.to_thread(client.get_service_requests, status="open")
    assert [r["service_request_id"] for r in listed] == [call_id]

    xml_client = GeoReport(ROOT, api_key=key, output_format="xml")
    services_xml = await asyncio.to_thread(xml_client.get_service_list)
    assert [s["service_code"] for s in services_xml][:2] == ["urgent", "visit"]
    followed_xml = await asyncio.to_thread(xml_client.get_service_request, call_id)
    assert followed_xml["service_request_id"] == call_id
    assert followed_xml["status"] == "open"


async def test_requests_are_seen_by_their_own_key_only(
    anon_client: httpx.AsyncClient, session: AsyncSession, team: SceneTeam, key: str
) -> None:
    filed = await anon_client.post(
        "/open311/v2/requests.json",
        data={"api_key": key, "service_code": "visit", "lat": str(LAT), "long": str(LNG)},
    )
    assert filed.status_code == 201, filed.text
    call_id = filed.json()[0]["service_request_id"]
    mine = await anon_client.get("/open311/v2/requests.json", params={"api_key": key})
    assert mine.status_code == 200
    (found,) = mine.json()
    assert found["service_request_id"] == call_id
    assert found["status"] == "open"
    assert found["service_code"] == "visit"
    assert found["lat"] == pytest.approx(LAT)
    assert "responder" not in found
    assert "team" not in found

    other = (await api_keys.create(session, "别的App", ["open311"])).key
    theirs = await anon_client.get("/open311/v2/requests.json", params={"api_key": other})
    assert theirs.json() == []
    hidden = await anon_client.get(
        f"/open311/v2/requests/{call_id}.json", params={"api_key": other}
    )
    assert hidden.status_code == 404
    assert hidden.json() == [{"code": 404, "description": "service_request_id not found"}]

    # Closed once the call is cancelled by a dispatcher (here: directly).
    await session.execute(
        text("UPDATE call SET status = 'cancelled', closed_at = now() WHERE id = :id"),
        {"id": call_id},
    )
    one = await anon_client.get(f"/open311/v2/requests/{call_id}.xml", params={"api_key": key})
    assert one.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(one.content)
    assert root.tag == "service_requests"
    assert root.findtext("request/status") == "closed"
    assert root.findtext("request/service_request_id") == call_id
    closed = await anon_client.get(
        "/open311/v2/requests.json", params={"api_key": key, "status": "open"}
    )
    assert closed.json() == []


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"service_code": "visit", "address_string": "光明大道1号"}, 400, "lat and long"),
        ({"service_code": "nope", "lat": "22.77", "long": "113.93"}, 404, "service_code"),
        ({"service_code": "visit", "lat": "0", "long": "0"}, 422, "outside"),
        ({"service_code": "visit", "lat": "north", "long": "113.93"}, 400, "lat"),
    ],
)
async def test_bad_requests_answer_the_spec_s_errors(
    anon_client: httpx.AsyncClient, key: str, fields: dict[str, str], status: int, words: str
) -> None:
    answered = await anon_client.post("/open311/v2/requests.json", data={"api_key": key, **fields})
    assert answered.status_code == status, answered.text
    (error,) = answered.json()
    assert set(error) == {"code", "description"}
    assert error["code"] == status
    assert words in error["description"]


async def test_keys_and_formats(
    anon_client: httpx.AsyncClient, session: AsyncSession, key: str
) -> None:
    body = {"service_code": "visit", "lat": str(LAT), "long": str(LNG)}
    missing = await anon_client.post("/open311/v2/requests.xml", data=body)
    assert missing.status_code == 403
    root = ET.fromstring(missing.content)
    assert root.tag == "errors"
    assert root.findtext("error/code") == "403"
    wrong = await anon_client.post("/open311/v2/requests.json", data={**body, "api_key": "hk_no"})
    assert wrong.status_code == 403
    assert not wrong.headers["content-type"].startswith("application/problem+json")
    unscoped = (await api_keys.create(session, "只读", ["areas:read"])).key
    refused = await anon_client.post(
        "/open311/v2/requests.json", data={**body, "api_key": unscoped}
    )
    assert refused.status_code == 403
    assert refused.json()[0]["code"] == 403
    assert (await anon_client.get("/open311/v2/services.yaml")).status_code == 404
    unknown = await anon_client.get("/open311/v2/nothing.json")
    assert unknown.status_code == 404
    assert unknown.json()[0]["code"] == 404
    discovery = await anon_client.get("/open311/v2/discovery.json")
    assert (
        discovery.json()["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    )
    as_json = await anon_client.post(
        "/open311/v2/requests.json", json={**body, "lat": LAT, "long": LNG, "api_key": key}
    )
    assert as_json.status_code == 201, as_json.text


@pytest.fixture
async def committed(engine: AsyncEngine, database_url: str) -> AsyncIterator[dict[str, Any]]:
    """A team on duty at a spot of its own and an open311 key, committed."""
    settings = make_settings(database_url)
    lat, lng = offset(22.765, 113.925, 0, 0)
    async with AsyncSession(engine) as session:
        team = await make_team(session, settings, lat, lng, members=2, name="开放队")
        made = await api_keys.create(session, "committed", ["open311"])
        await session.commit()
    yield {"team": team, "key": made.key, "key_id": made.id, "lat": lat, "lng": lng}
    async with engine.begin() as conn:
        await delete_committed(conn, [m.person_id for m in team.members], [team.id])
        await conn.execute(text("DELETE FROM call WHERE api_key_id = :k"), {"k": made.id})
        await conn.execute(text("DELETE FROM api_key WHERE id = :k"), {"k": made.id})


async def test_an_open311_request_reaches_a_volunteer_s_socket_as_an_offer(
    live_app: Factory, committed: dict[str, Any]
) -> None:
    team: SceneTeam = committed["team"]
    async with (
        live_app() as lv,
        connect("/api/v1/ws", lv.sockets, headers=team.members[1].headers) as vws,
    ):
        await vws.send_text(json.dumps({"type": "ping"}))
        assert await _next(vws) == {"type": "pong"}
        filed = await lv.http.post(
            "/open311/v2/requests.json",
            data={
                "api_key": committed["key"],
                "service_code": "hardship",
                "lat": str(committed["lat"]),
                "long": str(committed["lng"]),
            },
        )
        assert filed.status_code == 201, filed.text
        call_id = filed.json()[0]["service_request_id"]
        uuid.UUID(call_id)
        offer = await _next(vws, "offer.created")
        assert offer["call_id"] == call_id
        assert offer["data"]["team"]["id"] == str(team.id)
        assert offer["data"]["category"] == "hardship"
