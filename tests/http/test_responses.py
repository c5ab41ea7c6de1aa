"""Every operation lists every status it can answer, with the problem
schema, the codes of each status as an enum, and the headers it sends
(issue 12, items 2 and 5). That the services answer no other code is
checked by tests/spec_check.py around every test's app, and by schemathesis."""

from __future__ import annotations

from typing import Any

import httpx

from app.main import openapi_document
from tests.problems import assert_problem
from tests.spec_check import declared_codes

SPEC = openapi_document()


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in SPEC["paths"].items() for m, op in item.items()]


def _header_names(response: dict[str, Any]) -> set[str]:
    return {name.lower() for name in response.get("headers", {})}


def test_every_operation_declares_what_any_request_can_meet() -> None:
    for method, path, operation in _operations():
        responses = operation["responses"]
        assert {"405", "500"} <= set(responses), (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= set(responses), (method, path)
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in responses, (method, path)
        if operation.get("security"):
            assert "401" in responses, (method, path)
        for status, response in responses.items():
            assert "x-request-id" in _header_names(response), (method, path, status)


def test_each_problem_status_lists_its_codes() -> None:
    for method, path, operation in _operations():
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema["allOf"] == [{"$ref": "#/components/schemas/Problem"}]
            codes = schema["properties"]["code"]["enum"]
            assert codes, (method, path, status)
            assert len(codes) == len(set(codes)), (method, path, status)


def test_headers_of_401_405_429_503() -> None:
    wanted = {"401": "www-authenticate", "405": "allow", "429": "retry-after"}
    wanted["503"] = "retry-after"
    seen = set()
    for method, path, operation in _operations():
        for status, header in wanted.items():
            if status in operation["responses"]:
                seen.add(status)
                assert header in _header_names(operation["responses"][status]), (method, path)
        if "429" in operation["responses"]:
            schema = operation["responses"]["429"]["content"]["application/problem+json"]
            assert schema["schema"]["required"] == ["retry_after"]
    assert seen == set(wanted)
    assert "retry_after" in SPEC["components"]["schemas"]["Problem"]["properties"]


def test_codes_follow_from_the_route() -> None:
    assert declared_codes("GET", "/api/v1/me", 401) == [
        "not_authenticated",
        "invalid_token",
        "token_expired",
        "invalid_api_key",
    ]
    assert set(declared_codes("POST", "/api/v1/admin/teams", 403) or ()) == {
        "api_key_not_allowed",
        "not_staff",
        "outside_your_area",
    }
    assert declared_codes("GET", "/api/v1/areas", 403) == ["insufficient_scope"]
    assert declared_codes("GET", "/api/v1/calls/{call_id}", 404) == ["not_found"]
    assert declared_codes("GET", "/healthz", 401) is None


async def test_a_body_that_is_not_utf8_is_400_before_authentication(
    anon_client: httpx.AsyncClient,
) -> None:
    response = await anon_client.post(
        "/api/v1/calls", content=b'{"a": "\xff\xfe"}', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "bad_request")
    assert "400" in SPEC["paths"]["/api/v1/calls"]["post"]["responses"]


async def test_a_429_carries_retry_after_in_both_places(anon_client: httpx.AsyncClient) -> None:
    phone = {"phone": "13800000000"}
    first = await anon_client.post("/api/v1/auth/otp", json=phone)
    assert first.status_code == 202, first.text
    again = await anon_client.post("/api/v1/auth/otp", json=phone)
    body = assert_problem(again, 429, "otp_resend_too_soon")
    assert body["retry_after"] == int(again.headers["retry-after"]) >= 1
