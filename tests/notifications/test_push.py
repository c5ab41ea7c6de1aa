"""Push notifications: firebase-admin's real send path against an FCM v1
endpoint intercepted by respx, the worker's outcomes (sent, token gone,
retried no sooner than Retry-After, not retried), the payload on the wire,
the log backend and the worker's loop."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2.credentials import Credentials
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import PushBackend, Settings
from app.core.logging import JsonFormatter
from app.notifications.push import LogPushSender, Outcome, PushMessage, PushResult, make_push_sender
from app.notifications.push.fcm import FcmPushSender, parse_retry_after
from app.notifications.push.worker import PushWorker, claim, push_in_session, push_once
from tests.conftest import make_settings
from tests.dbutil import drop_database, migrated_database
from tests.principals import next_phone
from tests.scene import Member, SceneTeam, clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}
NOTE = "门铃坏了，请敲门，我在三楼"
FCM_PROJECT = "hulian-test"
FCM_URL = f"https://fcm.googleapis.com/v1/projects/{FCM_PROJECT}/messages:send"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


# ---- a fake FCM behind respx ---------------------------------------------------------


def _fcm_error(status: int, grpc: str, fcm_code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": f"{grpc} (test)", "status": grpc}
    if fcm_code:
        error["details"] = [{"@type": FCM_ERROR, "errorCode": fcm_code}]
    return {"error": error}


# What the fake FCM answers, by the token's prefix.
ANSWERS: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
    "gone": (404, _fcm_error(404, "NOT_FOUND", "UNREGISTERED"), {}),
    "mismatch": (403, _fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), {}),
    "quota": (
        429,
        _fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
        {"Retry-After": "120"},
    ),
    "busy": (503, _fcm_error(503, "UNAVAILABLE", "UNAVAILABLE"), {"Retry-After": "90"}),
    "down": (503, _fcm_error(503, "UNAVAILABLE"), {}),
    "bad": (400, _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), {}),
}


@dataclass
class FakeFcm:
    bodies: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    healthy: bool = False  # when set, every token succeeds

    def answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.authorizations.append(request.headers.get("authorization"))
        token = body["message"]["token"]
        prefix = token.split("-", 1)[0]
        if self.healthy or prefix not in ANSWERS:
            name = f"projects/{FCM_PROJECT}/messages/{len(self.bodies)}"
            return httpx.Response(200, json={"name": name})
        status, payload, headers = ANSWERS[prefix]
        return httpx.Response(status, json=payload, headers=headers)

    def calls(self) -> Counter[str]:
        return Counter(body["message"]["token"].split("-", 1)[0] for body in self.bodies)

    def to(self, token: str) -> list[dict[str, Any]]:
        return [b["message"] for b in self.bodies if b["message"]["token"] == token]


@pytest.fixture
def fcm_api() -> Iterator[FakeFcm]:
    """FCM's v1 endpoint, intercepted; any other request fails the test."""
    fake = FakeFcm()
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.post(FCM_URL).mock(side_effect=fake.answer)
        yield fake


@pytest.fixture
async def fcm(settings: Settings) -> AsyncIterator[FcmPushSender]:
    """The real fcm backend with a credential that needs no network."""
    sender = FcmPushSender(
        settings.model_copy(update={"fcm_project_id": FCM_PROJECT}),
        credential=Credentials(token="test-access-token"),  # type: ignore[no-untyped-call]
    )
    yield sender
    await sender.close()


# ---- a scene: a team with devices, a resident's press --------------------------------


@dataclass
class Scene:
    team: SceneTeam
    resident: Member
    call_id: str
    offer_id: str
    tokens: list[str]  # one per member, in member order


async def register(http: httpx.AsyncClient, member: Member, token: str, platform: str) -> None:
    answer = await http.put(
        f"/api/v1/me/devices/{token}", json={"platform": platform}, headers=member.headers
    )
    assert answer.status_code == 204, answer.text


async def offer_scene(
    http: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    behaviours: list[str],
    *,
    resident_token: str | None = None,
) -> Scene:
    """A team whose members each have one device (the token starts with
    the fake FCM's behaviour for it), and a resident's press it is offered."""
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=len(behaviours))
    tokens = []
    for i, (member, behaviour) in enumerate(zip(team.members, behaviours, strict=True)):
        token = f"{behaviour}-{uuid.uuid4().hex}"
        await register(http, member, token, "ios" if i % 2 else "android")
        tokens.append(token)
    resident = await make_resident(session, settings)
    if resident_token:
        await register(http, resident, resident_token, "android")
    pressed = await http.post(
        "/api/v1/calls",
        json={"location": POINT, "category": "visit", "note": NOTE},
        headers=resident.headers,
    )
    assert pressed.status_code == 201, pressed.text
    call = pressed.json()
    assert call["status"] == "offered"
    offers = await http.get("/api/v1/offers?status=open", headers=team.members[0].headers)
    offer = next(o for o in offers.json()["data"] if o["call_id"] == call["id"])
    return Scene(team, resident, call["id"], offer["id"], tokens)


async def deliveries(session: AsyncSession, tokens: list[str]) -> dict[str, Any]:
    """The offer's delivery to each token, by token prefix, with `due_in`
    (seconds from now to its next attempt)."""
    rows = (
        await session.execute(
            text(
                """
                SELECT pd.*, extract(epoch FROM pd.next_attempt_at - now()) AS due_in,
                       EXISTS (SELECT 1 FROM device d WHERE d.token = pd.device_token) AS device
                FROM push_delivery pd JOIN notification n ON n.id = pd.notification_id
                WHERE pd.device_token = ANY(:tokens) AND n.kind = 'offer'
                """
            ),
            {"tokens": tokens},
        )
    ).all()
    return {row.device_token.split("-", 1)[0]: row for row in rows}


# ---- the tests -----------------------------------------------------------------------


async def test_each_fcm_answer_is_handled(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    fcm: FcmPushSender,
    fcm_api: FakeFcm,
) -> None:
    behaviours = ["ok", "gone", "mismatch", "quota", "busy", "bad"]
    scene = await offer_scene(anon_client, session, settings, behaviours)

    assert await push_in_session(session, settings, fcm) == len(behaviours)
    assert fcm_api.calls() == Counter(behaviours), "one request each: the SDK does not retry"
    assert set(fcm_api.authorizations) == {"Bearer test-access-token"}
    rows = await deliveries(session, scene.tokens)

    assert (rows["ok"].status, rows["ok"].backend, rows["ok"].attempts) == ("sent", "fcm", 1)
    assert rows["ok"].sent_at is not None
    assert rows["ok"].device
    for gone, code in (("gone", "unregistered"), ("mismatch", "sender_id_mismatch")):
        assert (rows[gone].status, rows[gone].last_error) == ("failed", code)
        assert not rows[gone].device, "the token is gone: its device row is deleted"
    assert (rows["quota"].status, rows["quota"].last_error) == ("pending", "quota_exceeded")
    assert rows["quota"].due_in >= 120, "no sooner than Retry-After"
    assert (rows["busy"].status, rows["busy"].last_error) == ("pending", "unavailable")
    assert rows["busy"].due_in >= 90, "no sooner than Retry-After"
    assert (rows["bad"].status, rows["bad"].last_error) == ("failed", "invalid_argument")
    assert rows["bad"].device, "a bad request says nothing about the token"

    # Nothing is due yet: another pass sends nothing.
    assert await push_in_session(session, settings, fcm) == 0
    assert sum(fcm_api.calls().values()) == len(behaviours)

    # Later, FCM is well again: the two retried ones go, the 400 is never retried.
    await session.execute(
        text("UPDATE push_delivery SET next_attempt_at = now() WHERE device_token = ANY(:t)"),
        {"t": scene.tokens},
    )
    fcm_api.healthy = True
    assert await push_in_session(session, settings, fcm) == 2
    assert fcm_api.calls() == Counter(behaviours) + Counter(["quota", "busy"])
    rows = await deliveries(session, scene.tokens)
    assert {p: r.status for p, r in rows.items()} == {
        "ok": "sent",
        "gone": "failed",
        "mismatch": "failed",
        "quota": "sent",
        "busy": "sent",
        "bad": "failed",
    }
    assert rows["quota"].attempts == rows["busy"].attempts == 2


async def test_retries_stop_after_the_last_attempt(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    fcm: FcmPushSender,
    fcm_api: FakeFcm,
) -> None:
    scene = await offer_scene(anon_client, session, settings, ["down"])
    tight = settings.model_copy(update={"push_max_attempts": 2})
    await push_in_session(session, tight, fcm)
    row = (await deliveries(session, scene.tokens))["down"]
    assert (row.status, row.last_error, row.attempts) == ("pending", "unavailable", 1)
    assert row.due_in >= 2, "exponential backoff even without Retry-After"
    await session.execute(
        text("UPDATE push_delivery SET next_attempt_at = now() WHERE device_token = ANY(:t)"),
        {"t": scene.tokens},
    )
    await push_in_session(session, tight, fcm)
    row = (await deliveries(session, scene.tokens))["down"]
    assert (row.status, row.last_error, row.attempts) == ("failed", "unavailable", 2)
    assert fcm_api.calls() == Counter({"down": 2})


async def test_a_delivery_past_its_ttl_is_not_sent(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    fcm: FcmPushSender,
    fcm_api: FakeFcm,
) -> None:
    scene = await offer_scene(anon_client, session, settings, ["ok"])
    await session.execute(
        text(
            "UPDATE push_delivery SET expires_at = now() - interval '1 second' "
            "WHERE device_token = ANY(:t)"
        ),
        {"t": scene.tokens},
    )
    assert await push_in_session(session, settings, fcm) == 0
    row = (await deliveries(session, scene.tokens))["ok"]
    assert (row.status, row.last_error, row.attempts) == ("failed", "expired", 0)
    assert not fcm_api.bodies


def _personal_data(rows: Sequence[Any]) -> list[str]:
    """Strings that must never be on the wire: names, phones, the note, the
    call's and members' coordinates."""
    forbidden = [NOTE, "门铃", str(LAT), str(LNG), "+86"]
    for row in rows:
        forbidden += [row.display_name, row.phone, row.phone.removeprefix("+86")]
        if row.lat is not None:
            forbidden += [f"{row.lat:.4f}", f"{row.lng:.4f}", f"{row.lat:.3f}", f"{row.lng:.3f}"]
    return forbidden


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


async def test_the_payload_on_the_wire(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    fcm: FcmPushSender,
    fcm_api: FakeFcm,
) -> None:
    resident_token = f"ok-resident-{uuid.uuid4().hex}"
    scene = await offer_scene(
        anon_client, session, settings, ["ok", "ok", "ok"], resident_token=resident_token
    )
    await push_in_session(session, settings, fcm)
    collapse = f"call-{scene.call_id}"

    # The offer, to each member's device: an urgent alert.
    for i, token in enumerate(scene.tokens):
        (message,) = fcm_api.to(token)
        assert message["data"] == {
            "kind": "offer",
            "notification_id": message["data"]["notification_id"],
            "call_id": scene.call_id,
            "offer_id": scene.offer_id,
            "category": "visit",
        }
        uuid.UUID(message["data"]["notification_id"])
        assert all(isinstance(v, str) for v in message["data"].values())
        assert message["notification"] == {
            "title": "附近有新的求助",
            "body": "上门探访：请尽快查看并接单。",
        }
        android = message["android"]
        assert android["priority"] == "high"
        assert android["collapse_key"] == collapse
        assert android["ttl"] == f"{settings.offer_timeout_seconds}s", "the offer's time left"
        assert android["notification"]["tag"] == collapse
        headers = message["apns"]["headers"]
        assert headers["apns-priority"] == "10"
        assert headers["apns-collapse-id"] == collapse
        assert headers["apns-push-type"] == "alert"
        assert int(headers["apns-expiration"]) > 0
        aps = message["apns"]["payload"]["aps"]
        assert aps["interruption-level"] == "time-sensitive"
        assert message["webpush"]["headers"]["Urgency"] == "high", i

    # The resident's "offered" status.
    (status,) = fcm_api.to(resident_token)
    assert status["data"]["kind"] == "call_status"
    assert status["data"]["call_id"] == scene.call_id
    assert "offer_id" not in status["data"]
    assert status["notification"]["body"] == "已通知附近的志愿者，请稍候。"

    # A member accepts: the others' offer is withdrawn by a silent message
    # with the same collapse key; the taker gets none.
    taker = scene.team.members[0]
    accepted = await anon_client.post(
        f"/api/v1/offers/{scene.offer_id}/accept", headers=taker.headers
    )
    assert accepted.status_code == 200, accepted.text
    before = len(fcm_api.bodies)
    await push_in_session(session, settings, fcm)
    assert len(fcm_api.to(scene.tokens[0])) == 1, "no withdrawal to the taker"
    for token in scene.tokens[1:]:
        _offer, withdrawal = fcm_api.to(token)
        assert withdrawal["data"]["kind"] == "offer_closed"
        assert withdrawal["data"]["offer_id"] == scene.offer_id
        assert "notification" not in withdrawal, "a data message, no alert"
        assert withdrawal["android"]["priority"] == "normal"
        assert withdrawal["android"]["collapse_key"] == collapse
        headers = withdrawal["apns"]["headers"]
        assert headers["apns-priority"] == "5"
        assert headers["apns-push-type"] == "background"
        assert headers["apns-collapse-id"] == collapse
        assert withdrawal["apns"]["payload"]["aps"]["content-available"] == 1
    (accepted_status,) = fcm_api.to(resident_token)[1:]
    assert accepted_status["notification"]["body"] == "志愿者已接单。"
    assert len(fcm_api.bodies) == before + 3

    # Nothing personal anywhere on the wire.
    people = (
        await session.execute(
            text(
                """
                SELECT p.display_name, p.phone,
                       ST_Y(d.location::geometry) AS lat, ST_X(d.location::geometry) AS lng
                FROM person p LEFT JOIN duty d ON d.person_id = p.id
                WHERE p.id = ANY(:ids)
                """
            ),
            {"ids": [m.person_id for m in scene.team.members] + [scene.resident.person_id]},
        )
    ).all()
    wire = json.dumps(fcm_api.bodies, ensure_ascii=False)
    for secret in _personal_data(people):
        assert secret not in wire, secret
    assert not _keys(fcm_api.bodies) & {
        "lat",
        "lng",
        "location",
        "note",
        "display_name",
        "phone",
        "phone_masked",
        "responder",
    }


async def test_the_lease_keeps_a_claimed_batch_from_a_second_claim(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    scene = await offer_scene(anon_client, session, settings, ["ok", "ok"])
    first = await claim(session, "log")
    assert {m.token for m in first} >= set(scene.tokens)
    assert await claim(session, "log") == [], "leased: not claimed again"
    # The process died before recording: once the lease runs out the
    # deliveries are sent again (at least once).
    await session.execute(
        text("UPDATE push_delivery SET next_attempt_at = now() WHERE device_token = ANY(:t)"),
        {"t": scene.tokens},
    )
    again = await claim(session, "log")
    assert {m.token for m in again} >= set(scene.tokens)
    rows = await deliveries(session, scene.tokens)
    assert {r.attempts for r in rows.values()} == {2}


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    when = parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0)
    assert when == 30.0


async def test_the_log_backend_logs_ids_never_the_token(caplog: pytest.LogCaptureFixture) -> None:
    push = PushMessage(
        delivery_id=uuid.uuid4(),
        token="secret-device-token-123456",
        platform="android",
        kind="offer",
        title="附近有新的求助",
        body="紧急求助：请尽快查看并接单。",
        data={"kind": "offer", "notification_id": str(uuid.uuid4()), "call_id": str(uuid.uuid4())},
        collapse_key="call-x",
        ttl_seconds=45,
    )
    sender = LogPushSender()
    with caplog.at_level(logging.INFO, logger="hulian.push"):
        (result,) = await sender.send([push])
    assert result == PushResult(push.delivery_id, result.outcome)
    assert result.outcome.value == "sent"
    (record,) = [r for r in caplog.records if r.name == "hulian.push"]
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["delivery_id"] == str(push.delivery_id)
    assert entry["kind"] == "offer"
    assert entry["call_id"] == push.data["call_id"]
    assert "secret-device-token" not in line
    await sender.close()


def _service_account(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": FCM_PROJECT,
        "private_key_id": "test",
        "private_key": pem,
        "client_email": f"push@{FCM_PROJECT}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.write_text(json.dumps(info), encoding="utf-8")


async def test_the_sender_follows_the_settings(database_url: str, tmp_path: Path) -> None:
    assert make_push_sender(make_settings(database_url)).name == "log"
    account = tmp_path / "service-account.json"
    _service_account(account)
    settings = make_settings(
        database_url,
        push_backend=PushBackend.fcm,
        google_application_credentials=str(account),
        fcm_project_id=FCM_PROJECT,
    )
    first, second = make_push_sender(settings), make_push_sender(settings)
    assert first.name == second.name == "fcm", "named apps: several coexist"
    await first.close()
    await second.close()


@dataclass
class RecordingSender:
    inner: LogPushSender = field(default_factory=LogPushSender)
    sent: list[PushMessage] = field(default_factory=list)
    closed: bool = False
    name: str = "log"

    async def send(self, batch: list[PushMessage]) -> list[PushResult]:
        self.sent.extend(batch)
        return await self.inner.send(batch)

    async def close(self) -> None:
        self.closed = True


async def test_the_worker_sends_in_the_background_and_stops(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    connection: AsyncConnection,
    settings: Settings,
) -> None:
    scene = await offer_scene(anon_client, session, settings, ["ok", "ok"])
    factory = async_sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    sender = RecordingSender()
    worker = PushWorker(factory, settings.model_copy(update={"push_interval_seconds": 60}), sender)
    worker.start()
    for _ in range(500):
        if worker.passes:
            break
        await asyncio.sleep(0.01)
    await worker.stop()
    assert worker.passes == 1
    assert sender.closed
    assert set(scene.tokens) <= {m.token for m in sender.sent}
    rows = await deliveries(session, scene.tokens)
    assert {r.status for r in rows.values()} == {"sent"}
    assert {r.backend for r in rows.values()} == {"log"}
    assert await push_once(factory, settings, sender) == 0, "nothing left"


@dataclass
class SlowSender:
    """Records what it sends, and takes its time, so two workers' passes overlap."""

    sent: list[uuid.UUID] = field(default_factory=list)
    name: str = "log"

    async def send(self, batch: list[PushMessage]) -> list[PushResult]:
        await asyncio.sleep(0.05)
        self.sent.extend(push.delivery_id for push in batch)
        return [PushResult(push.delivery_id, Outcome.sent) for push in batch]

    async def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def committed_url() -> Iterator[str]:
    """A sibling database of its own: these workers commit."""
    url = migrated_database("push")
    yield url
    drop_database(url)


@pytest.mark.processes
async def test_two_workers_never_send_one_delivery_twice(committed_url: str) -> None:
    settings = make_settings(committed_url)
    engines = [create_async_engine(committed_url) for _ in range(2)]
    try:
        async with engines[0].begin() as conn:
            person = uuid.uuid4()
            await conn.execute(
                text("INSERT INTO person (id, phone, display_name) VALUES (:id, :p, '推送测试')"),
                {"id": person, "p": next_phone()},
            )
            notification = uuid.uuid4()
            await conn.execute(
                text(
                    "INSERT INTO notification (id, person_id, kind, title, body) "
                    "VALUES (:id, :p, 'escalation', 't', 'b')"
                ),
                {"id": notification, "p": person},
            )
            await conn.execute(
                text(
                    """
                    INSERT INTO push_delivery (id, notification_id, device_token, platform,
                                               status, next_attempt_at, expires_at)
                    SELECT gen_random_uuid(), :n, 'token-' || i, 'android', 'pending', now(),
                           now() + interval '1 hour'
                    FROM generate_series(1, 1200) AS i
                    """
                ),
                {"n": notification},
            )
        factories = [async_sessionmaker(engine, expire_on_commit=False) for engine in engines]
        senders = [SlowSender(), SlowSender()]

        async def drain(i: int) -> None:
            while await push_once(factories[i], settings, senders[i]):
                pass

        await asyncio.gather(drain(0), drain(1))
        first, second = (set(s.sent) for s in senders)
        assert first, "both took part"
        assert second, "both took part"
        assert not first & second, "no delivery sent by both"
        assert len(first) + len(second) == 1200 == len(senders[0].sent) + len(senders[1].sent)
        async with engines[0].connect() as conn:
            statuses = (
                await conn.execute(text("SELECT status, count(*) FROM push_delivery GROUP BY 1"))
            ).all()
        assert [tuple(row) for row in statuses] == [("sent", 1200)]
    finally:
        for engine in engines:
            await engine.dispose()
