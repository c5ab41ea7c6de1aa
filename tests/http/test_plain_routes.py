"""The call loop's plain routes (app/http/plain_route.py: the press, the
accept, a progress step) answer a plain request without FastAPI's
dependency solver, hand everything else to FastAPI's handler of the same
declaration, and both give the same answers."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import fastapi.dependencies.utils
import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.plain_routes import PressRoute, ProgressRoute
from app.core.config import Settings
from app.core.errors import Forbidden
from app.http.deps import (
    CurrentUser,
    OriginDep,
    SessionDep,
    SettingsDep,
    VolunteerUser,
    get_origin,
    require_person,
)
from app.http.plain_route import NOT_PLAIN, PlainRoute
from app.models.call import CallCreate
from app.offers.plain_routes import AcceptRoute
from app.offers.routes import OfferId, accept_offer
from tests.problems import assert_problem
from tests.scene import Member, SceneTeam, clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}

Send = Callable[[dict[str, str]], Awaitable[httpx.Response]]

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
# Headers whose values differ from one request to the next.
_PER_REQUEST = {"x-request-id", "date", "content-length"}


# Fields that count up from one request to the next, and those that name
# the person (two members of one team take the two loops).
_SEQUENCES = {"last_event_id", "request_id"}
_PER_PERSON = {"display_name", "phone_masked"}


def _shape(value: Any) -> Any:
    """An answer with what differs between two people's loops blanked: ids,
    times, sequence numbers and names."""
    if isinstance(value, dict):
        return {
            k: "<n>" if k in _SEQUENCES else "<person>" if k in _PER_PERSON else _shape(v)
            for k, v in value.items()
        }
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


ROUTES: tuple[type[PlainRoute], ...] = (PressRoute, AcceptRoute, ProgressRoute)


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each request to a plain route, whether its own handler answered."""
    answered: list[bool] = []
    for route in ROUTES:
        monkeypatch.setattr(route, "plain", _recording(route.plain, answered))
    return answered


def _recording(plain: Any, answered: list[bool]) -> Any:
    async def recorded(*args: Any) -> Any:
        result = await plain(*args)
        answered.append(result is not NOT_PLAIN)
        return result

    return recorded


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


async def _declined(*_: Any) -> Any:
    return NOT_PLAIN


@contextmanager
def _fastapis(monkeypatch: pytest.MonkeyPatch, *routes: type[PlainRoute]) -> Iterator[None]:
    """Within it, these routes' own handlers decline every request."""
    with monkeypatch.context() as patched:
        for route in routes:
            patched.setattr(route, "plain", _declined)
        yield


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
        patched.setattr(PressRoute, "plain", _declined)
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
        patched.setattr(PressRoute, "plain", _declined)
        declared = await bad_token({"Authorization": "Bearer not-a-token"})
    for answer in (own, declared):
        assert_problem(answer, 401, "invalid_token")
    _assert_alike(own, declared)


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
    assert taken == [], "a keyed press is not the press's own handler's to look at"


@pytest.mark.parametrize("route", ROUTES)
def test_a_plain_route_whose_endpoint_takes_other_inputs_is_refused(
    route: type[PlainRoute],
) -> None:
    """A plain route passes the endpoint a fixed set of inputs: an endpoint
    that declares another cannot be built into the app."""

    async def widened(body: CallCreate, origin: str | None = None) -> None:
        return None

    with pytest.raises(TypeError, match="origin"):
        APIRouter().add_api_route("/x", widened, methods=["POST"], route_class_override=route)


async def _stricter_accept(
    offer_id: OfferId, user: VolunteerUser, session: SessionDep, settings: SettingsDep
) -> None:
    """The accept's inputs by name, but a volunteer's rule for `user`."""


async def _accept_with_origin(
    offer_id: OfferId, user: CurrentUser, session: SessionDep, settings: OriginDep
) -> None:
    """The accept's inputs by name, but a dependency the plain path never calls."""


@pytest.mark.parametrize(
    ("endpoint", "missing"),
    [(_stricter_accept, "require_volunteer"), (_accept_with_origin, "get_origin")],
)
def test_a_plain_route_whose_declaration_depends_on_another_rule_is_refused(
    endpoint: Callable[..., Awaitable[None]], missing: str
) -> None:
    """Right names are not enough: a declaration that asks for a rule the
    plain path does not apply (a volunteer, not any person) is refused, so
    no plain request can skip it."""
    with pytest.raises(TypeError, match=missing):
        APIRouter().add_api_route(
            "/{offer_id}/accept", endpoint, methods=["POST"], route_class_override=AcceptRoute
        )


def test_a_router_wide_dependency_on_a_plain_route_is_refused() -> None:
    """What a router's inclusion adds is solved by FastAPI's handler too: a
    plain route whose inclusion adds a dependency is refused when FastAPI
    builds the included route (for the OpenAPI document, which CI builds
    from the app, or the first request)."""
    inner = APIRouter()
    inner.add_api_route(
        "/{offer_id}/accept", accept_offer, methods=["POST"], route_class_override=AcceptRoute
    )
    application = FastAPI()
    application.include_router(inner, dependencies=[Depends(get_origin)])
    with pytest.raises(TypeError, match="get_origin"):
        application.openapi()


async def test_a_dependency_override_is_applied_to_plain_requests_too(
    app: FastAPI,
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    taken: list[bool],
) -> None:
    """An override is the solver's to apply: with one in place, a plain
    press goes to FastAPI's handler, which applies it."""

    async def nobody() -> None:
        # A refusal the route declares (require_person's own), overridden in.
        raise Forbidden("Overridden.", code="api_key_not_allowed")

    resident = await make_resident(session, settings)
    app.dependency_overrides[require_person] = nobody
    try:
        answer = await _press(anon_client)(resident.headers)
    finally:
        app.dependency_overrides.clear()
    assert_problem(answer, 403, "api_key_not_allowed")
    assert taken == [], "the press's own handler was not asked"
    assert (await _press(anon_client)(resident.headers)).status_code == 201
    assert taken == [True]


async def _offer_of(http: httpx.AsyncClient, member: Member, call_id: str) -> str:
    offers = (await http.get("/api/v1/offers", headers=member.headers)).json()["data"]
    offer_id: str = next(o["id"] for o in offers if o["call_id"] == call_id)
    return offer_id


async def _two_calls(
    http: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> tuple[str, str]:
    """Two residents' calls, both offered to `team`."""
    ids = []
    for _ in range(2):
        resident = await make_resident(session, settings)
        answer = await _press(http)(resident.headers)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids[0], ids[1]


async def test_the_accept_and_the_steps_skip_the_solver_and_answer_as_fastapi_would(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    monkeypatch: pytest.MonkeyPatch,
    solved: list[str],
) -> None:
    """The same loop twice, by two members of one team: one through the
    routes' own handlers, one through FastAPI's."""
    own_call, declared_call = await _two_calls(anon_client, session, settings)
    first, second, third = team.members
    own_offer = await _offer_of(anon_client, first, own_call)
    declared_offer = await _offer_of(anon_client, second, declared_call)
    solved.clear()

    def declared() -> AbstractContextManager[None]:
        return _fastapis(monkeypatch, AcceptRoute, ProgressRoute)

    async def accept(offer: str, member: Member) -> httpx.Response:
        return await anon_client.post(f"/api/v1/offers/{offer}/accept", headers=member.headers)

    async def step(call: str, member: Member, status: str) -> httpx.Response:
        return await anon_client.post(
            f"/api/v1/calls/{call}/progress",
            json={"status": status, "note": "马上到"},
            headers=member.headers,
        )

    own = await accept(own_offer, first)
    with declared():
        fastapis = await accept(declared_offer, second)
    assert own.status_code == fastapis.status_code == 200, own.text
    assert own.json()["status"] == "accepted"
    _assert_alike(own, fastapis)

    for status in ("en_route", "on_site", "resolved"):
        own = await step(own_call, first, status)
        with declared():
            fastapis = await step(declared_call, second, status)
        assert own.status_code == fastapis.status_code == 200, own.text
        assert own.json()["status"] == status
        _assert_alike(own, fastapis)
    assert (
        solved
        == [f"/api/v1/offers/{declared_offer}/accept"]
        + [f"/api/v1/calls/{declared_call}/progress"] * 3
    ), "only FastAPI's handler solved the dependencies"

    # What the service refuses: an offer already taken, a step out of
    # order, a call the person may not see.
    own = await accept(own_offer, third)
    with declared():
        fastapis = await accept(declared_offer, third)
    for answer in (own, fastapis):
        assert_problem(answer, 409, "offer_closed")
    _assert_alike(own, fastapis)

    own = await step(own_call, first, "en_route")
    with declared():
        fastapis = await step(declared_call, second, "en_route")
    for answer in (own, fastapis):
        assert_problem(answer, 409, "invalid_transition")
    _assert_alike(own, fastapis)

    stranger = await make_resident(session, settings)
    own = await step(own_call, stranger, "en_route")
    with declared():
        fastapis = await step(declared_call, stranger, "en_route")
    for answer in (own, fastapis):
        assert_problem(answer, 404, "not_found")
    _assert_alike(own, fastapis)


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("press: no token", 401, "not_authenticated"),
        ("press: basic auth", 401, "invalid_token"),
        ("press: an invalid body", 422, "validation_error"),
        ("press: not JSON", 422, "validation_error"),
        ("press: a bad Idempotency-Key", 422, "validation_error"),
        ("accept: no token", 401, "not_authenticated"),
        ("accept: not an id", 422, "validation_error"),
        ("accept: an API key", 401, "invalid_api_key"),
        ("step: no body", 422, "validation_error"),
        ("step: an unknown step", 422, "validation_error"),
        ("step: not an id", 422, "validation_error"),
    ],
)
async def test_anything_but_a_plain_request_is_fastapis_to_answer(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    team: SceneTeam,
    taken: list[bool],
    case: str,
    status: int,
    code: str,
) -> None:
    resident = await make_resident(session, settings)
    call = await _press(anon_client)(resident.headers)
    assert call.status_code == 201, call.text
    # The resident's own call, which they may see (so that FastAPI's
    # handler, which finds the call before it reads the body, gets to it).
    call_id = call.json()["id"]
    route, _, shape = case.partition(": ")
    path = {
        "press": "/api/v1/calls",
        "accept": f"/api/v1/offers/{call_id}/accept",
        "step": f"/api/v1/calls/{call_id}/progress",
    }[route]
    content = {
        "press": b'{"location": {"lat": 22.77, "lng": 113.93}}',
        "accept": b"",
        "step": b'{"status": "en_route"}',
    }[route]
    headers = {**resident.headers, "Content-Type": "application/json"}
    if shape == "no token":
        del headers["Authorization"]
    elif shape == "basic auth":
        headers["Authorization"] = "Basic dXNlcjpwYXNz"
    elif shape == "an API key":
        del headers["Authorization"]
        headers["X-API-Key"] = "hk_not_a_key"
    elif shape == "a bad Idempotency-Key":
        headers["Idempotency-Key"] = "a b"
    elif shape == "not an id":
        path = path.replace(call_id, "not-an-id")
    elif shape == "an invalid body":
        content = b'{"location": {"lat": 91, "lng": 113.93}}'
    elif shape == "not JSON":
        content = b'{"location": '
    elif shape == "no body":
        content = b""
    elif shape == "an unknown step":
        content = b'{"status": "teleported"}'
    taken.clear()
    answer = await anon_client.post(path, content=content, headers=headers)
    assert_problem(answer, status, code)
    # Without a plain bearer token a route's own handler is not even asked;
    # with one, it was asked and declined.
    unasked = shape in {"no token", "basic auth", "an API key", "a bad Idempotency-Key"}
    assert taken == ([] if unasked else [False]), f"{case}: the route's own handler answered"
