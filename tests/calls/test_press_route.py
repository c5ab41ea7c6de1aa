"""The press's own handler (app/calls/press_route.py) answers a plain press
without FastAPI's dependency solver, hands everything else to FastAPI's
handler of the same declaration, and both give the same answers."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import fastapi.dependencies.utils
import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import press_route
from app.calls.press_route import PressRoute
from app.core.config import Settings
from app.models.call import CallCreate
from tests.problems import assert_problem
from tests.scene import SceneTeam, clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}

Send = Callable[[dict[str, str]], Awaitable[httpx.Response]]

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
# Headers whose values differ from one request to the next.
_PER_REQUEST = {"x-request-id", "date", "content-length"}


# Fields that count up from one request to the next.
_SEQUENCES = {"last_event_id", "request_id"}


def _shape(value: Any) -> Any:
    """An answer with what differs between two people's presses blanked:
    ids, times and sequence numbers."""
    if isinstance(value, dict):
        return {k: "<n>" if k in _SEQUENCES else _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, str):
        if _UUID.match(value):
            return "<id>"
        if _TIME.match(value):
            return "<time>"
    return value


def _headers(answer: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in answer.headers.items() if k not in _PER_REQUEST}


def _assert_alike(own: httpx.Response, declared: httpx.Response) -> None:
    """The same status, headers and body, but for what differs per request."""
    assert own.status_code == declared.status_code, (own.text, declared.text)
    assert _headers(own) == _headers(declared)
    assert _shape(own.json()) == _shape(declared.json())


@pytest.fixture
async def team(session: AsyncSession, settings: Settings) -> SceneTeam:
    await clear_duty_near(session, LAT, LNG, 5000)
    return await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each request to the press's handler, whether it answered it."""
    answered: list[bool] = []
    plain = press_route.plain_press

    async def recorded(*args: Any) -> Any:
        answer = await plain(*args)
        answered.append(answer is not None)
        return answer

    monkeypatch.setattr(press_route, "plain_press", recorded)
    return answered


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI's dependency solver ran for."""
    paths: list[str] = []
    solve = fastapi.dependencies.utils.solve_dependencies

    async def counted(*args: Any, **kwargs: Any) -> Any:
        paths.append(kwargs["request"].url.path)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return paths


async def _declined(*_: Any) -> None:
    return None


async def _both(
    monkeypatch: pytest.MonkeyPatch,
    session: AsyncSession,
    settings: Settings,
    send: Send,
) -> tuple[httpx.Response, httpx.Response]:
    """The same request by two new residents: one answered by the press's
    handler, one by FastAPI's (the press's handler declining it)."""
    own = await send((await make_resident(session, settings)).headers)
    with monkeypatch.context() as patched:
        patched.setattr(press_route, "plain_press", _declined)
        declared = await send((await make_resident(session, settings)).headers)
    return own, declared


def _press(http: httpx.AsyncClient, point: dict[str, float] | None = None) -> Send:
    async def send(headers: dict[str, str]) -> httpx.Response:
        return await http.post("/api/v1/calls", json={"location": point or POINT}, headers=headers)

    return send


async def test_a_plain_press_skips_the_solver_and_answers_as_fastapi_would(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    monkeypatch: pytest.MonkeyPatch,
    solved: list[str],
) -> None:
    own, declared = await _both(monkeypatch, session, settings, _press(anon_client))
    assert solved == ["/api/v1/calls"], "only FastAPI's handler solved the dependencies"
    assert own.status_code == declared.status_code == 201, own.text
    assert own.json()["status"] == "offered"
    _assert_alike(own, declared)
    assert own.headers["content-length"] == str(len(own.content))


async def test_a_double_tap_answers_200_by_either_handler(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def twice(headers: dict[str, str]) -> httpx.Response:
        first = await _press(anon_client)(headers)
        again = await _press(anon_client, {**POINT, "lat": LAT + 0.0003})(headers)
        assert again.json()["id"] == first.json()["id"]
        return again

    own, declared = await _both(monkeypatch, session, settings, twice)
    assert own.status_code == declared.status_code == 200
    _assert_alike(own, declared)


async def test_what_the_service_refuses_is_answered_alike(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    monkeypatch: pytest.MonkeyPatch,
    solved: list[str],
) -> None:
    far = _press(anon_client, {"lat": 39.9, "lng": 116.4})
    own, declared = await _both(monkeypatch, session, settings, far)
    for answer in (own, declared):
        assert_problem(answer, 422, "outside_service_area")
    _assert_alike(own, declared)

    def spot(north: float, east: float) -> dict[str, float]:
        lat, lng = offset(LAT, LNG, north, east)
        return {"lat": lat, "lng": lng}

    async def four(headers: dict[str, str]) -> httpx.Response:
        for n in range(3):
            assert (await _press(anon_client, spot(600 * n, 300))(headers)).status_code == 201
        return await _press(anon_client, spot(0, 900))(headers)

    own, declared = await _both(monkeypatch, session, settings, four)
    for answer in (own, declared):
        assert_problem(answer, 429, "too_many_open_calls")
    assert own.headers["retry-after"] == declared.headers["retry-after"]
    _assert_alike(own, declared)
    # Only the declared handler's presses (four of them, and the far one)
    # went through the solver.
    assert len(solved) == 5

    bad_token = _press(anon_client)
    own = await bad_token({"Authorization": "Bearer not-a-token"})
    with monkeypatch.context() as patched:
        patched.setattr(press_route, "plain_press", _declined)
        declared = await bad_token({"Authorization": "Bearer not-a-token"})
    for answer in (own, declared):
        assert_problem(answer, 401, "invalid_token")
    _assert_alike(own, declared)


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no token", 401, "not_authenticated"),
        ("basic auth", 401, "invalid_token"),
        ("an invalid body", 422, "validation_error"),
        ("not JSON", 422, "validation_error"),
        ("a bad Idempotency-Key", 422, "validation_error"),
    ],
)
async def test_anything_but_a_plain_press_is_fastapis_to_answer(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    taken: list[bool],
    case: str,
    status: int,
    code: str,
) -> None:
    resident = await make_resident(session, settings)
    headers = dict(resident.headers)
    content = b'{"location": {"lat": 22.77, "lng": 113.93}}'
    if case == "no token":
        headers = {}
    elif case == "basic auth":
        headers = {"Authorization": "Basic dXNlcjpwYXNz"}
    elif case == "an invalid body":
        content = b'{"location": {"lat": 91, "lng": 113.93}}'
    elif case == "not JSON":
        content = b'{"location": '
    elif case == "a bad Idempotency-Key":
        headers["Idempotency-Key"] = "a b"
    answer = await anon_client.post(
        "/api/v1/calls",
        content=content,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert_problem(answer, status, code)
    assert taken == [False], f"{case}: FastAPI's handler answered"


async def test_an_idempotent_press_is_fastapis_and_replays(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    solved: list[str],
    taken: list[bool],
) -> None:
    resident = await make_resident(session, settings)
    keyed = {**resident.headers, "Idempotency-Key": "press-route-1"}
    first = await anon_client.post("/api/v1/calls", json={"location": POINT}, headers=keyed)
    again = await anon_client.post("/api/v1/calls", json={"location": POINT}, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(solved) == 2
    assert taken == [False, False]


def test_a_press_route_whose_endpoint_takes_other_inputs_is_refused() -> None:
    """`plain_press` passes the endpoint a fixed set of inputs: an endpoint
    that declares another cannot be built into the app."""

    async def widened(body: CallCreate, origin: str | None = None) -> None:
        return None

    with pytest.raises(TypeError, match="origin"):
        APIRouter().add_api_route("/x", widened, methods=["POST"], route_class_override=PressRoute)
