"""Schemathesis over the whole OpenAPI document (issue 11).

For every operation, without credentials and with an admin's bearer token:
schemathesis' coverage phase (boundary and just-out-of-bounds values of
every parameter and body field, deterministic) and its fuzzing phase
(`MAX_EXAMPLES` random requests, fitting the schema and breaking it). No
answer may be a server error, and every answer whose status the document
declares must match what it declares: body schema (a problem's `code`
among its status's enum), media type, headers; and no answer may have a
status its operation does not declare (issue 12: 0 undocumented statuses).

Requests go in-process to the app and join the test's transaction, each in
a savepoint rolled back after it: nothing is committed, every case starts
from the same stage. Schemathesis generates and validates but does not send,
because its own ASGI client runs the app in another thread and event loop
than the test's database connection; the request is prepared as its
`requests` transport would put it on the wire.

About 60 s in CI; `MAX_EXAMPLES` bounds the fuzzing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import openapi_document
from tests.principals import bearer, make_person, token_for
from tests.scene import make_resident, make_team, offset

MAX_EXAMPLES = 20
BASE_URL = "http://testserver"
LAT, LNG = offset(22.77, 113.93, 900, -700)

SCHEMA = schemathesis.openapi.from_dict(openapi_document())
Operation = APIOperation[Any, Any, Any, Any]
OPERATIONS: list[Operation] = [
    result.ok() for result in SCHEMA.get_all_operations() if isinstance(result, Ok)
]
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
    status_code_conformance,
]
WHO = ["anonymous", "admin"]


@pytest.fixture
async def known(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> dict[str, Any]:
    """Real objects for path parameters, so that generated requests reach the
    services and not only the 404 of an unknown id; and an admin's token
    (the admin is on a team, so that its offers are listed too)."""
    team = await make_team(session, settings, LAT, LNG, members=2, name="模糊测试队")
    resident = await make_resident(session, settings)
    pressed = await anon_client.post(
        "/api/v1/calls", json={"location": {"lat": LAT, "lng": LNG}}, headers=resident.headers
    )
    assert pressed.status_code == 201, pressed.text
    call_id = pressed.json()["id"]
    offer_id = (
        await session.execute(text("SELECT id FROM offer WHERE call_id = :c"), {"c": call_id})
    ).scalar_one()
    admin_id = await make_person(session, "模糊测试管理员", is_admin=True)
    await session.execute(
        text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, 'part_time')"),
        {"t": team.id, "p": admin_id},
    )
    return {
        "path": {
            "call_id": call_id,
            "offer_id": str(offer_id),
            "team_id": str(team.id),
            "person_id": str(resident.person_id),
            "token": "fuzz-device-token-0001",
        },
        "admin": bearer(await token_for(session, settings, admin_id)),
    }


def _known_path(operation: Operation, known: dict[str, Any]) -> dict[str, str]:
    names = {parameter.name for parameter in operation.path_parameters}
    return {name: value for name, value in known["path"].items() if name in names}


async def _send_and_check(
    http: httpx.AsyncClient, session: AsyncSession, case: Case[Any], credentials: dict[str, str]
) -> None:
    """Send the case as schemathesis would, in a savepoint rolled back
    after it; FailureGroup when a check fails."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    kwargs.pop("cookies", None)
    wire = requests.Request(**kwargs).prepare()
    if credentials:
        # The admin's token replaces the credentials schemathesis generated.
        for generated in ("Authorization", "X-API-Key"):
            wire.headers.pop(generated, None)
        wire.headers.update(credentials)
    # As http.client puts them on the wire: latin-1 (httpx would refuse non-ASCII).
    headers = [
        (name.encode("latin-1"), value.encode("latin-1") if isinstance(value, str) else value)
        for name, value in wire.headers.items()
    ]
    body = wire.body.encode() if isinstance(wire.body, str) else wire.body
    assert body is None or isinstance(body, bytes)
    savepoint = await session.begin_nested()
    try:
        response = await http.request(
            str(wire.method), str(wire.url), headers=headers, content=body
        )
    finally:
        await savepoint.rollback()
    case.validate_response(response, checks=CHECKS, headers=dict(wire.headers))


def _credentials(who: str, known: dict[str, Any]) -> dict[str, str]:
    return dict(known["admin"]) if who == "admin" else {}


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
async def test_coverage_phase(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    known: dict[str, Any],
    operation: Operation,
    who: str,
) -> None:
    """Every coverage case, twice for operations with ids in their path:
    as generated (unknown ids, malformed ids) and with the known objects'
    ids, which carries the other values to the services."""
    overrides = [Override()]
    if _known_path(operation, known):
        overrides.append(Override(path_parameters=_known_path(operation, known)))
    failures: list[str] = []
    for override in overrides:
        generator = CoverageGenerator(
            operation=operation,
            generation_modes=list(GenerationMode),
            generation_config=SCHEMA.config.generation_for(operation=operation, phase="coverage"),
            auth_storage=None,
            override=override,
            feedback=FeedbackSources(),
        )
        for case in generator:
            try:
                await _send_and_check(anon_client, session, case, _credentials(who, known))
            except FailureGroup as failed:
                failures.append(str(failed))
    # One report per kind of failure is enough to act on; the count says how many.
    distinct = list(dict.fromkeys(f.split("\n\n", 2)[1] for f in failures))
    assert not failures, f"{len(failures)} failing cases, e.g.:\n" + "\n".join(
        next(f for f in failures if f.split("\n\n", 2)[1] == kind) for kind in distinct[:5]
    )


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_fuzzing_phase(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    known: dict[str, Any],
    operation: Operation,
    who: str,
    data: st.DataObject,
) -> None:
    mode = data.draw(st.sampled_from(list(GenerationMode)), label="mode")
    path = _known_path(operation, known)
    if path and mode is GenerationMode.POSITIVE and data.draw(st.booleans(), label="known ids"):
        strategy = operation.as_strategy(mode, path_parameters=path)
    else:
        strategy = operation.as_strategy(mode)
    case = data.draw(strategy, label="case")
    await _send_and_check(anon_client, session, case, _credentials(who, known))


def test_every_operation_is_run() -> None:
    spec = openapi_document()
    assert len(OPERATIONS) == sum(len(item) for item in spec["paths"].values())
