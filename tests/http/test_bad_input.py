"""Input that once answered 500 (issue 11, item 5) answers 422 problem
details: NUL and other control characters in text, cursors whose time
PostgreSQL cannot be sent, an event id beyond bigint. And two properties,
over every text field of every request body in the OpenAPI document and
every paged list: arbitrary text never gives a server error.

Each generated example runs in a savepoint that is rolled back, on a stage
where every request would succeed with ordinary text, so the text is what
reaches the services and the database."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.core.config import Settings
from app.main import openapi_document
from tests.principals import bearer, make_person, next_phone, token_for
from tests.problems import assert_problem
from tests.scene import Member, clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}
NUL = "\x00"
BIGINT_MAX = 2**63 - 1

# ---- what the OpenAPI document says is text ----------------------------------------------


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _is_text(schema: dict[str, Any]) -> bool:
    """A string a client may fill in at will: not an enum, a constant or a format."""
    options = schema.get("anyOf", [schema])
    return any(
        o.get("type") == "string" and not ({"enum", "const", "format"} & o.keys()) for o in options
    )


def text_fields() -> list[tuple[str, str]]:
    """(operation, property) for every text property of every JSON request body."""
    spec = openapi_document()
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            schema = content["application/json"]["schema"]
            # An optional body is `anyOf: [{$ref}, {type: null}]`.
            for option in schema.get("anyOf", [schema]):
                body = _resolve(spec, option)
                for name, prop in body.get("properties", {}).items():
                    if _is_text(_resolve(spec, prop)):
                        found.append((f"{method.upper()} {path}", name))
    return sorted(found)


def paged_lists() -> list[str]:
    """The GET paths that take a time-ordered `cursor` (a call's events are
    paged by event id, tested in test_paging.py)."""
    spec = openapi_document()
    return sorted(
        path
        for path, item in spec["paths"].items()
        if any(p["name"] == "cursor" for p in item.get("get", {}).get("parameters", []))
        and not path.endswith("/events")
    )


# ---- a stage on which every request succeeds --------------------------------------------


@dataclass
class Baseline:
    """A request that, with ordinary text, answers `status`."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int


@dataclass
class Stage:
    baselines: dict[str, Baseline] = field(default_factory=dict)
    admin: dict[str, str] = field(default_factory=dict)
    resident: dict[str, str] = field(default_factory=dict)
    call_id: str = ""
    team_id: str = ""  # for `{team_id}` in a paged list's path


async def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def _open_offer(http: httpx.AsyncClient, resident: Member, member: Member) -> tuple[str, str]:
    """A call of `resident` offered to the member's team: (call id, offer id)."""
    call = await _ok(
        await http.post("/api/v1/calls", json={"location": POINT}, headers=resident.headers), 201
    )
    offers = await _ok(await http.get("/api/v1/offers?status=open", headers=member.headers))
    offer = next(o for o in offers["data"] if o["call_id"] == call["id"])
    return call["id"], offer["id"]


@pytest.fixture
async def stage(anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings) -> Stage:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)
    m0, m1, m2 = team.members
    rated, progressing, offered, fresh = [await make_resident(session, settings) for _ in range(4)]
    http = anon_client

    # A resolved call, to be rated.
    call_1, offer_1 = await _open_offer(http, rated, m0)
    await _ok(await http.post(f"/api/v1/offers/{offer_1}/accept", headers=m0.headers))
    for step in ("en_route", "on_site", "resolved"):
        progress = {"status": step}
        await _ok(
            await http.post(f"/api/v1/calls/{call_1}/progress", json=progress, headers=m0.headers)
        )
    # An accepted call, to report progress on.
    call_2, offer_2 = await _open_offer(http, progressing, m1)
    await _ok(await http.post(f"/api/v1/offers/{offer_2}/accept", headers=m1.headers))
    # An offered call, to decline or cancel.
    call_3, offer_3 = await _open_offer(http, offered, m2)

    admin_id = await make_person(session, "舞台管理员", is_admin=True)
    await session.execute(
        text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, 'part_time')"),
        {"t": team.id, "p": admin_id},
    )
    admin = bearer(await token_for(session, settings, admin_id))
    community = (
        await session.execute(text("SELECT id FROM area WHERE level = 'community' LIMIT 1"))
    ).scalar_one()
    base = dict(zip(("lat", "lng"), offset(LAT, LNG, -300, 200), strict=True))
    api = "/api/v1"
    base_community = (await areas.locate_ids(session, base["lat"], base["lng"])).community
    screen_body = {"name": "服务屏", "area_id": str(base_community), "location": base}
    made = await http.post(f"{api}/admin/screens", json=screen_body, headers=admin)
    screen = await _ok(made, 201)
    baselines = {
        f"POST {api}/auth/otp": Baseline(f"{api}/auth/otp", {"phone": next_phone()}, {}, 202),
        # A wrong code and a refresh token that is not one: the text can only
        # make them more wrong, never right.
        f"POST {api}/auth/token": Baseline(
            f"{api}/auth/token", {"phone": next_phone(), "code": "000000"}, {}, 401
        ),
        f"POST {api}/auth/refresh": Baseline(
            f"{api}/auth/refresh", {"refresh_token": "not-a-token"}, {}, 401
        ),
        f"POST {api}/calls": Baseline(
            f"{api}/calls", {"location": POINT, "note": "门铃坏了"}, fresh.headers, 201
        ),
        f"POST {api}/calls/{{call_id}}/cancel": Baseline(
            f"{api}/calls/{call_3}/cancel", {"reason": "不用了"}, offered.headers, 200
        ),
        f"POST {api}/calls/{{call_id}}/progress": Baseline(
            f"{api}/calls/{call_2}/progress",
            {"status": "en_route", "note": "马上到"},
            m1.headers,
            200,
        ),
        f"POST {api}/calls/{{call_id}}/rating": Baseline(
            f"{api}/calls/{call_1}/rating", {"stars": 5, "comment": "谢谢"}, rated.headers, 201
        ),
        f"POST {api}/calls/{{call_id}}/dispute": Baseline(
            f"{api}/calls/{call_1}/dispute", {"reason": "没有修好"}, rated.headers, 200
        ),
        f"POST {api}/offers/{{offer_id}}/decline": Baseline(
            f"{api}/offers/{offer_3}/decline", {"reason": "在开会"}, m2.headers, 200
        ),
        f"POST {api}/activities": Baseline(
            f"{api}/activities",
            {
                "team_id": str(team.id),
                "kind": "visit",
                "at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
                "duration_min": 20,
                "note": "探访独居老人",
            },
            m0.headers,
            201,
        ),
        f"POST {api}/admin/teams": Baseline(
            f"{api}/admin/teams",
            {"name": "新队", "base": base, "service_content": "修水管"},
            admin,
            201,
        ),
        f"POST {api}/admin/teams/{{team_id}}/members": Baseline(
            f"{api}/admin/teams/{team.id}/members",
            {"phone": next_phone(), "display_name": "新队员", "kind": "part_time"},
            admin,
            201,
        ),
        f"POST {api}/admin/households": Baseline(
            f"{api}/admin/households",
            {"address": "光明街道某小区1栋101室", "location": base, "tags": ["elderly"]},
            admin,
            201,
        ),
        f"POST {api}/admin/screens": Baseline(f"{api}/admin/screens", screen_body, admin, 201),
        f"POST {api}/public/screens/{{screen_id}}/calls": Baseline(
            f"{api}/public/screens/{screen['id']}/calls",
            {"note": "有人摔倒", "category": "urgent"},
            {"X-Screen-Key": screen["key"]},
            201,
        ),
        f"POST {api}/admin/dispatchers": Baseline(
            f"{api}/admin/dispatchers",
            {"phone": next_phone(), "display_name": "新调度", "area_id": str(community)},
            admin,
            201,
        ),
    }
    return Stage(baselines, admin, rated.headers, call_1, str(team.id))


@pytest.fixture
def rollback_each(session: AsyncSession) -> Any:
    """Run one request in a savepoint that is rolled back: every example
    starts from the same stage."""

    async def send(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
        savepoint = await session.begin_nested()
        try:
            return await http.request(method, url, **kwargs)
        finally:
            await savepoint.rollback()

    return send


async def _send(
    http: httpx.AsyncClient, rollback_each: Any, stage: Stage, operation: str, name: str, value: str
) -> tuple[httpx.Response, Baseline]:
    baseline = stage.baselines[operation]
    body = {**baseline.body, name: value}
    # Encoded as a client would; ensure_ascii keeps it ASCII whatever it holds.
    content = json.dumps(body).encode()
    response = await rollback_each(
        http,
        operation.split(" ", 1)[0],
        baseline.path,
        content=content,
        headers={**baseline.headers, "content-type": "application/json"},
    )
    return response, baseline


# ---- NUL and control characters ------------------------------------------------------------

# The free-text fields the issue names; the property below covers every text field.
FREE_TEXT = [
    ("POST /api/v1/calls", "note"),
    ("POST /api/v1/calls/{call_id}/cancel", "reason"),
    ("POST /api/v1/calls/{call_id}/progress", "note"),
    ("POST /api/v1/calls/{call_id}/rating", "comment"),
    ("POST /api/v1/calls/{call_id}/dispute", "reason"),
    ("POST /api/v1/offers/{offer_id}/decline", "reason"),
    ("POST /api/v1/activities", "note"),
    ("POST /api/v1/admin/teams", "name"),
    ("POST /api/v1/admin/teams", "service_content"),
    ("POST /api/v1/admin/teams/{team_id}/members", "display_name"),
    ("POST /api/v1/admin/dispatchers", "display_name"),
    ("POST /api/v1/admin/households", "address"),
]


def test_the_free_text_fields_are_in_the_spec() -> None:
    assert set(FREE_TEXT) <= set(text_fields())


@pytest.mark.parametrize(("operation", "name"), FREE_TEXT)
async def test_a_nul_in_text_is_422(
    anon_client: httpx.AsyncClient, stage: Stage, rollback_each: Any, operation: str, name: str
) -> None:
    ordinary, _ = await _send(anon_client, rollback_each, stage, operation, name, "早上好\n谢谢")
    assert ordinary.status_code < 300, ordinary.text
    for value in ("a\x00b", NUL, "bell\x07", "escape\x1b[2J", "lone \ud800"):
        response, _ = await _send(anon_client, rollback_each, stage, operation, name, value)
        problem = assert_problem(response, 422, "validation_error")
        assert [e["loc"] for e in problem["errors"]] == [["body", name]]
        assert "\x00" not in response.text
    for fine in ("tab\there", "line\r\nbreak"):
        response, _ = await _send(anon_client, rollback_each, stage, operation, name, fine)
        assert response.status_code < 300, response.text


# ---- cursors -------------------------------------------------------------------------------


def make_cursor(created_at: str, row_id: str | None = None) -> str:
    raw = json.dumps([created_at, row_id or str(uuid.uuid4())]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


OUT_OF_RANGE = [
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
    "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
    "9999-12-31T23:59:59.999999-00:01",
    "0001-01-01T00:00:00",  # no offset: read in the server's zone, it may fall out too
    "2026-01-01T00:00:00+24:00",
]


@pytest.mark.parametrize("created_at", OUT_OF_RANGE)
async def test_a_cursor_out_of_range_is_422(
    anon_client: httpx.AsyncClient, stage: Stage, created_at: str
) -> None:
    lists = paged_lists()
    assert len(lists) >= 4
    cursor = make_cursor(created_at)
    for path in lists:
        response = await anon_client.get(
            path.format(team_id=stage.team_id), params={"cursor": cursor}, headers=stage.admin
        )
        assert_problem(response, 422, "invalid_cursor")


async def test_cursors_at_the_edges_of_the_range_are_accepted(
    anon_client: httpx.AsyncClient, stage: Stage
) -> None:
    for created_at in (
        "0001-01-01T00:00:00+00:00",
        "0001-01-01T14:00:00+14:00",
        "9999-12-31T23:59:59.999999+00:00",
        "9999-12-31T09:59:59-14:00",
    ):
        cursor = make_cursor(created_at)
        for path in paged_lists():
            response = await anon_client.get(
                path.format(team_id=stage.team_id), params={"cursor": cursor}, headers=stage.admin
            )
            assert response.status_code == 200, (created_at, path, response.text)


# ---- event ids -------------------------------------------------------------------------------


async def test_an_event_id_beyond_bigint_is_422(
    anon_client: httpx.AsyncClient, stage: Stage
) -> None:
    path = f"/api/v1/calls/{stage.call_id}/events"
    last = await anon_client.get(path, params={"after": BIGINT_MAX}, headers=stage.resident)
    assert last.status_code == 200, last.text
    assert last.json()["data"] == []
    for after in (BIGINT_MAX + 1, 2**64, 10**30):
        response = await anon_client.get(path, params={"after": after}, headers=stage.resident)
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"][0]["loc"] == ["query", "after"]


# ---- properties ----------------------------------------------------------------------------

TEXT_FIELDS = text_fields()

# Any code point but lone surrogates, which no UTF-8 client can send; long
# strings too, around and beyond every max_length.
ANY_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=90, max_size=700),
)
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def test_every_text_field_has_a_baseline_request(stage: Stage) -> None:
    """A new operation with a text field needs a line in `stage`; a new text
    field of a known operation is covered without one."""
    missing = {operation for operation, _ in TEXT_FIELDS} - stage.baselines.keys()
    assert not missing, f"add a baseline request to `stage` for {sorted(missing)}"


@PROPERTY
@given(target=st.sampled_from(TEXT_FIELDS), value=ANY_TEXT)
@example(target=("POST /api/v1/calls", "note"), value="\x00")
@example(target=("POST /api/v1/auth/otp", "phone"), value="138\x000000000")
async def test_any_text_is_accepted_or_422(
    anon_client: httpx.AsyncClient,
    stage: Stage,
    rollback_each: Any,
    target: tuple[str, str],
    value: str,
) -> None:
    operation, name = target
    response, baseline = await _send(anon_client, rollback_each, stage, operation, name, value)
    # What the request answers with ordinary text (its other fields make it
    # succeed, or fail for a reason the text cannot change), or 422.
    assert response.status_code in {baseline.status, 422}, (operation, name, value, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


FIRST = datetime(1, 1, 1, tzinfo=UTC)
LAST = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
# Every offset Python can hold, the ±14:00 that real zones reach included.
OFFSETS = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
).map(timezone)
ANY_CURSOR = st.one_of(
    st.text(max_size=200),
    st.builds(
        make_cursor,
        st.builds(
            lambda at, tz: at.replace(tzinfo=tz).isoformat(),
            # The ends of Python's range, where an offset pushes UTC beyond it.
            st.one_of(st.sampled_from([FIRST, LAST]), st.datetimes()),
            st.one_of(st.none(), OFFSETS),
        ),
        st.uuids().map(str),
    ),
    st.builds(
        lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=140),
    ),
)


@PROPERTY
@given(path=st.sampled_from(paged_lists()), cursor=ANY_CURSOR)
@example(path="/api/v1/calls", cursor=make_cursor("0001-01-01T00:00:00+14:00"))
async def test_any_cursor_is_a_page_or_422(
    anon_client: httpx.AsyncClient, stage: Stage, path: str, cursor: str
) -> None:
    response = await anon_client.get(
        path.format(team_id=stage.team_id), params={"cursor": cursor}, headers=stage.admin
    )
    assert response.status_code in {200, 422}, (path, cursor, response.text)
    if response.status_code == 422:
        assert response.json()["code"] in {"invalid_cursor", "validation_error"}
