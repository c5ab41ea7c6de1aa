"""What each operation can answer, declared once: its error statuses, the
problem `code`s of each (an enum a client can switch on) and the headers.

Most of it follows from the route itself: every operation can fail (500) or
be sent a method its path does not take (405); a body can be too large
(413), not UTF-8 (400, before authentication) or invalid (422), and so can
parameters (422); the dependencies a route uses say its 401 and 403 codes.
What only the services know is in `ROUTE_PROBLEMS`, by (method, path).
tests/http/test_responses.py holds every problem the test suite sees
answered to this table."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.calls.deps import locked_visible_call, visible_call
from app.http import deps

Codes = dict[int, tuple[str, ...]]

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
HEADER_REF = "#/components/headers/"

# Every operation.
ALWAYS: Codes = {405: ("method_not_allowed",), 500: ("internal_error",)}
# An operation that takes a body; 400 is a body that is not UTF-8.
WITH_BODY: Codes = {
    400: ("bad_request",),
    413: ("payload_too_large",),
    422: ("validation_error",),
}
WITH_PARAMETERS: Codes = {422: ("validation_error",)}

# What each dependency refuses with.
DEPENDENCY_PROBLEMS: dict[Callable[..., Any], Codes] = {
    # The request's unit of work: its database may be busy or away (503,
    # `app.core.db.unavailable`).
    deps.get_session: {503: ("overloaded", "database_unavailable")},
    deps.get_principal: {401: ("invalid_token", "token_expired", "invalid_api_key")},
    deps.require_principal: {401: ("not_authenticated",)},
    deps.require_person: {403: ("api_key_not_allowed",)},
    deps.require_volunteer: {403: ("not_a_volunteer",)},
    deps.require_staff: {403: ("not_staff",)},
    deps.require_admin: {403: ("not_admin",)},
    visible_call: {404: ("not_found",)},
    locked_visible_call: {404: ("not_found",)},
}
SCOPE_PROBLEMS: Codes = {403: ("insufficient_scope",)}

API = "/api/v1"
CURSOR: Codes = {422: ("invalid_cursor",)}

# What the services answer, beyond what the route's shape tells.
ROUTE_PROBLEMS: dict[tuple[str, str], Codes] = {
    ("GET", "/readyz"): {503: ("not_ready",)},
    ("HEAD", "/readyz"): {503: ("not_ready",)},
    ("POST", f"{API}/auth/otp"): {
        403: ("challenge_failed",),
        422: ("invalid_phone",),
        429: ("rate_limited", "otp_resend_too_soon"),
        503: ("sms_unavailable",),
    },
    ("POST", f"{API}/auth/token"): {
        401: ("invalid_otp",),
        403: ("account_disabled",),
        422: ("invalid_phone",),
        429: ("rate_limited",),
    },
    ("POST", f"{API}/auth/refresh"): {
        401: ("invalid_token", "token_expired", "refresh_token_reused"),
    },
    ("PUT", f"{API}/me/duty"): {422: ("location_required",)},
    ("PUT", f"{API}/me/location"): {409: ("not_on_duty",)},
    ("GET", f"{API}/me/notifications"): CURSOR,
    ("GET", f"{API}/areas/locate"): {404: ("outside_service_area",)},
    ("GET", f"{API}/teams/nearby"): {422: ("radius_too_large", "limit_too_large")},
    ("POST", f"{API}/calls"): {
        409: ("idempotency_key_in_flight",),
        422: ("outside_service_area", "idempotency_key_reused"),
        429: ("too_many_open_calls",),
    },
    ("GET", f"{API}/calls"): CURSOR,
    ("POST", f"{API}/calls/{{call_id}}/cancel"): {
        403: ("not_allowed",),
        409: ("invalid_transition",),
    },
    ("POST", f"{API}/calls/{{call_id}}/progress"): {
        403: ("not_allowed",),
        409: ("invalid_transition",),
    },
    ("POST", f"{API}/calls/{{call_id}}/rating"): {
        403: ("not_the_caller",),
        409: ("invalid_transition", "already_rated"),
    },
    ("POST", f"{API}/calls/{{call_id}}/dispute"): {
        403: ("not_the_caller",),
        409: ("invalid_transition", "already_disputed", "dispute_window_closed"),
    },
    ("GET", f"{API}/calls/{{call_id}}/events"): CURSOR,
    ("GET", f"{API}/offers"): CURSOR,
    ("POST", f"{API}/offers/{{offer_id}}/accept"): {
        404: ("not_found",),
        409: ("offer_closed", "responder_busy", "offer_declined", "not_on_duty"),
    },
    ("POST", f"{API}/offers/{{offer_id}}/decline"): {
        404: ("not_found",),
        409: ("offer_closed",),
    },
    ("GET", f"{API}/dispatch/calls"): CURSOR,
    ("GET", f"{API}/dispatch/map"): {403: ("outside_your_area",), 404: ("not_found",)},
    ("POST", f"{API}/activities"): {
        403: ("not_a_member",),
        422: ("activity_in_future", "activity_too_old", "household_not_paired"),
    },
    ("GET", f"{API}/teams/{{team_id}}/activities"): {
        403: ("not_allowed",),
        404: ("not_found",),
        422: ("invalid_cursor", "invalid_month"),
    },
    ("GET", f"{API}/me/activities"): {422: ("invalid_cursor", "invalid_month")},
    ("GET", f"{API}/dispatch/quota"): {422: ("invalid_month",)},
    ("GET", f"{API}/dispatch/kpis"): {
        403: ("outside_your_area",),
        404: ("not_found",),
        422: ("area_required", "invalid_range", "range_too_long"),
    },
    ("GET", f"{API}/dispatch/reports/{{month}}.xlsx"): {
        403: ("outside_your_area",),
        404: ("not_found",),
        422: ("area_required", "invalid_month"),
    },
    ("GET", f"{API}/stars"): {
        404: ("not_found",),
        422: ("area_required", "invalid_month"),
    },
    ("GET", f"{API}/public/screens/{{area_id}}"): {
        404: ("not_found",),
        429: ("rate_limited",),
    },
    ("GET", f"{API}/public/screens/{{area_id}}/stream"): {
        404: ("not_found",),
        429: ("rate_limited",),
    },
    ("POST", f"{API}/dispatch/calls/{{call_id}}/assign"): {
        404: ("not_found",),
        409: ("invalid_transition", "responder_busy", "team_incomplete"),
        422: ("unknown_team",),
    },
    ("POST", f"{API}/admin/teams"): {
        403: ("outside_your_area",),
        422: ("outside_service_area",),
    },
    ("POST", f"{API}/admin/teams/{{team_id}}/members"): {
        403: ("cannot_enrol_phone",),
        404: ("not_found",),
        409: ("already_member",),
        422: ("invalid_phone",),
    },
    ("GET", f"{API}/teams/{{team_id}}"): {404: ("not_found",)},
    ("GET", f"{API}/admin/teams"): CURSOR,
    ("PUT", f"{API}/admin/teams/{{team_id}}/members/{{person_id}}"): {404: ("not_found",)},
    ("DELETE", f"{API}/admin/teams/{{team_id}}/members/{{person_id}}"): {404: ("not_found",)},
    ("POST", f"{API}/admin/dispatchers"): {
        403: ("cannot_enrol_phone",),
        422: ("unknown_area", "invalid_area_level", "invalid_phone"),
    },
    ("POST", f"{API}/admin/screens"): {
        403: ("outside_your_area",),
        422: ("outside_service_area", "location_outside_area"),
    },
    ("DELETE", f"{API}/admin/screens/{{screen_id}}"): {404: ("not_found",)},
    ("POST", f"{API}/public/screens/{{screen_id}}/calls"): {
        401: ("invalid_screen_key",),
        422: ("invalid_phone",),
        429: ("rate_limited",),
    },
    ("GET", f"{API}/public/screens/{{screen_id}}/calls/{{call_id}}"): {
        401: ("invalid_screen_key",),
        404: ("not_found",),
    },
    ("POST", f"{API}/admin/households"): {
        403: ("outside_your_area", "cannot_enrol_phone"),
        409: ("already_resident",),
        422: ("outside_service_area", "invalid_phone"),
    },
    ("GET", f"{API}/admin/households/{{household_id}}"): {404: ("household_not_found",)},
    ("POST", f"{API}/admin/households/{{household_id}}/pairings"): {
        403: ("outside_your_area",),
        404: ("household_not_found",),
        409: ("pairing_limit", "already_paired"),
        422: ("not_a_party_member",),
    },
    ("DELETE", f"{API}/admin/households/{{household_id}}/pairings/{{person_id}}"): {
        404: ("household_not_found", "not_paired"),
    },
    ("GET", f"{API}/admin/audit"): {
        403: ("subject_required",),
        404: ("household_not_found",),
        **CURSOR,
    },
    ("POST", f"{API}/admin/persons/{{person_id}}/disable"): {
        404: ("not_found",),
        409: ("cannot_disable_self",),
    },
}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "the request's id: the client's own when it sent a safe one, "
        "else a new one; in the problem's `request_id` too",
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "WWW-Authenticate": {
        "description": "the scheme to authenticate with: Bearer",
        "required": True,
        "schema": {"type": "string"},
    },
    "Allow": {
        "description": "every method of this path",
        "required": True,
        "schema": {"type": "string"},
    },
}
_STATUS_HEADERS = {401: "WWW-Authenticate", 405: "Allow", 429: "Retry-After", 503: "Retry-After"}


def _calls(dependant: Dependant) -> Iterable[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _takes_parameters(dependant: Dependant) -> bool:
    """Any path, query or header parameter, the dependencies' included."""
    if dependant.path_params or dependant.query_params or dependant.header_params:
        return True
    return any(_takes_parameters(d) for d in dependant.dependencies)


def _merge(into: dict[int, list[str]], codes: Codes) -> None:
    for status, names in codes.items():
        into.setdefault(status, [])
        into[status] += [name for name in names if name not in into[status]]


def route_problems(route: APIRoute, method: str) -> dict[int, list[str]]:
    """Every error status `method` on `route` can answer, with its codes."""
    found: dict[int, list[str]] = {}
    _merge(found, ALWAYS)
    if route.body_field is not None:
        _merge(found, WITH_BODY)
    if _takes_parameters(route.dependant):
        _merge(found, WITH_PARAMETERS)
    for call in _calls(route.dependant):
        if call in DEPENDENCY_PROBLEMS:
            _merge(found, DEPENDENCY_PROBLEMS[call])
        elif getattr(call, "__qualname__", "").startswith("require_scope."):
            _merge(found, SCOPE_PROBLEMS)
    _merge(found, ROUTE_PROBLEMS.get((method, route.path), {}))
    return dict(sorted(found.items()))


def problem_schema(status: int, codes: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "allOf": [{"$ref": PROBLEM_REF}],
        "properties": {"code": {"enum": codes}, "status": {"const": status}},
    }
    if status == 429:
        schema["required"] = ["retry_after"]
    return schema


def document_responses(schema: dict[str, Any], routes: Iterable[APIRoute]) -> None:
    """Each operation's responses as `route_problems` says, each with its
    headers; the success responses carry X-Request-ID too."""
    by_operation = {
        (method.lower(), route.path): route for route in routes for method in route.methods or ()
    }
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            route = by_operation[(method, path)]
            responses = operation.setdefault("responses", {})
            problems = route_problems(route, method.upper())
            for status in [s for s in responses if s.isdigit() and int(s) >= 400]:
                # A status a route names in its `responses` needs its codes here.
                if int(status) not in problems:
                    raise RuntimeError(f"{method} {path} {status}: no codes in ROUTE_PROBLEMS")
                del responses[status]
            for status, codes in problems.items():
                responses[str(status)] = {
                    "description": HTTPStatus(status).phrase,
                    "content": {PROBLEM_JSON: {"schema": problem_schema(status, codes)}},
                }
            for status, response in responses.items():
                headers = response.setdefault("headers", {})
                headers["X-Request-ID"] = {"$ref": f"{HEADER_REF}X-Request-ID"}
                extra = _STATUS_HEADERS.get(int(status)) if status.isdigit() else None
                if extra:
                    headers[extra] = {"$ref": f"{HEADER_REF}{extra}"}
    schema.setdefault("components", {})["headers"] = HEADERS
