"""openapi/openapi.json is what the app generates, and it reads well."""

from __future__ import annotations

import json
import re
from typing import Any

from app.core.config import Settings
from app.main import openapi_document
from tests.authz_matrix import ROWS


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


# The names generated clients call (`api.calls.create_call`): a change here
# breaks every client, so it is deliberate, and goes in CHANGELOG.md.
OPERATION_IDS = (
    "get_health",
    "get_readiness",
    "head_health",
    "head_readiness",
    "request_otp",
    "create_token",
    "refresh_token",
    "logout_session",
    "get_me",
    "register_device",
    "delete_device",
    "update_duty",
    "update_location",
    "list_notifications",
    "list_areas",
    "locate_area",
    "list_nearby_teams",
    "create_call",
    "list_calls",
    "get_call",
    "cancel_call",
    "report_progress",
    "rate_call",
    "dispute_call",
    "list_call_events",
    "list_stars",
    "get_screen_feed",
    "stream_screen_feed",
    "list_offers",
    "accept_offer",
    "decline_offer",
    "list_dispatch_calls",
    "get_dispatch_map",
    "assign_call",
    "create_activity",
    "list_team_activities",
    "list_quota_shortfalls",
    "list_kpis",
    "get_monthly_report",
    "create_team",
    "add_team_member",
    "get_team",
    "list_teams",
    "update_team_member",
    "remove_team_member",
    "create_dispatcher",
    "disable_person",
    "create_household",
    "get_household",
    "create_pairing",
    "delete_pairing",
    "list_my_households",
    "list_pairing_shortfalls",
    "list_audit_entries",
    "create_screen",
    "revoke_screen",
    "create_screen_call",
    "get_screen_call",
    "list_my_activities",
)


def test_operation_ids_are_readable_unique_and_stable() -> None:
    spec = openapi_document()
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)+", operation_id), operation_id
    assert sorted(ids) == sorted(OPERATION_IDS), (
        "an operation id changed or was added: update OPERATION_IDS and note it in CHANGELOG.md"
    )


def test_every_error_response_is_problem_details() -> None:
    spec = openapi_document()
    assert "Problem" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, method, operation in _operations(spec):
        assert operation.get("description"), f"{method} {path} needs a docstring"
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert list(response["content"]) == ["application/problem+json"], (path, status)


def test_api_contract_paths_are_present() -> None:
    paths = openapi_document()["paths"]
    for path in (
        "/api/v1/areas",
        "/api/v1/areas/locate",
        "/api/v1/teams/nearby",
        "/healthz",
        "/readyz",
    ):
        assert "get" in paths[path], path


def test_security_schemes_are_published() -> None:
    spec = openapi_document()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "an access token from POST /auth/token",
    }
    assert schemes["APIKeyHeader"]["in"] == "header"
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"
    me = spec["paths"]["/api/v1/me"]["get"]
    assert {"HTTPBearer": []} in me["security"]
    assert "security" not in spec["paths"]["/api/v1/auth/otp"]["post"]


# ---- what generated clients rely on (issue 12) --------------------------------------------


def _nullable(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(
        option.get("type") == "null" for option in schema.get("anyOf", [])
    )


def test_optional_bodies_and_parameters_are_not_nullable() -> None:
    """An optional body or parameter is left out, never sent as null: a
    generated client that reads `anyOf [X, null]` sends `None` (a header
    `None`, a JSON `null`, or a crash on its Unset marker)."""
    spec = openapi_document()
    found = []
    for path, method, operation in _operations(spec):
        body = operation.get("requestBody")
        if body is not None and not body.get("required"):
            found += [
                (method, path, "body") for m in body["content"].values() if _nullable(m["schema"])
            ]
        for parameter in operation.get("parameters", []):
            if not parameter.get("required") and _nullable(parameter["schema"]):
                found.append((method, path, parameter["name"]))
    assert found == []


def test_api_keys_are_declared_where_they_are_accepted() -> None:
    """X-API-Key is declared on exactly the operations the authorization
    matrix lets an API key through where it refuses anonymous callers, with
    the scope it needs; elsewhere a key
    alone is refused (401/403), so a client must not be offered it."""
    spec = openapi_document()
    accepted = {
        (row.method.lower(), row.template)
        for row in ROWS
        if 200 <= row.expected.get("api_key", 403) < 300 and row.expected.get("anonymous") == 401
    }
    assert accepted, "the matrix lets no API key through: the test would prove nothing"
    declared = set()
    for path, method, operation in _operations(spec):
        for requirement in operation.get("security", []):
            if "APIKeyHeader" in requirement:
                declared.add((method, path))
                (scope,) = requirement["APIKeyHeader"]
                assert f"`{scope}`" in operation["description"], (method, path)
    assert declared == accepted


def _schema_properties(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (name, prop_name, prop)
        for name, schema in spec["components"]["schemas"].items()
        for prop_name, prop in schema.get("properties", {}).items()
    ]


def test_every_property_and_parameter_is_described() -> None:
    spec = openapi_document()
    bare = [
        f"{name}.{prop_name}"
        for name, prop_name, prop in _schema_properties(spec)
        if not prop.get("description")
    ]
    bare += [
        f"{operation['operationId']}({parameter['name']})"
        for _, _, operation in _operations(spec)
        for parameter in operation.get("parameters", [])
        if not parameter.get("description")
    ]
    assert bare == []


def _inline_enums(schema: dict[str, Any]) -> bool:
    options = [schema, schema.get("items", {}), *schema.get("anyOf", [])]
    options += [o.get("items", {}) for o in schema.get("anyOf", [])]
    return any(len(o.get("enum", ())) > 1 for o in options)


def test_enums_are_named() -> None:
    """A list of values written inline gets a name made up by each generator
    (`UserRolesItem`, `CallProgressStatus`): every enum is a named schema."""
    spec = openapi_document()
    inline = [
        f"{name}.{prop}" for name, prop, schema in _schema_properties(spec) if _inline_enums(schema)
    ]
    inline += [
        f"{operation['operationId']}({parameter['name']})"
        for _, _, operation in _operations(spec)
        for parameter in operation.get("parameters", [])
        if _inline_enums(parameter["schema"])
    ]
    assert inline == []
    assert [n for n in spec["components"]["schemas"] if re.search(r"Item$|^Body_", n)] == []


def test_every_request_body_has_an_example() -> None:
    spec = openapi_document()
    missing = []
    for path, method, operation in _operations(spec):
        for media in operation.get("requestBody", {}).get("content", {}).values():
            schema = media["schema"]
            if "$ref" in schema:
                schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
            if not (media.get("example") or media.get("examples") or schema.get("examples")):
                missing.append((method, path))
    assert missing == []


def test_the_limits_the_server_enforces_are_stated() -> None:
    spec = openapi_document()
    settings = Settings()
    params = {
        (operation["operationId"], parameter["name"]): parameter
        for _, _, operation in _operations(spec)
        for parameter in operation.get("parameters", [])
    }
    nearby_radius = params[("list_nearby_teams", "radius_m")]["schema"]
    assert nearby_radius["maximum"] == settings.nearby_max_radius_m
    assert params[("list_nearby_teams", "limit")]["schema"]["maximum"] == settings.nearby_max_limit
    assert params[("list_call_events", "after")]["schema"]["maximum"] == 2**63 - 1
    for (operation_id, name), parameter in params.items():
        if name == "limit":
            assert "maximum" in parameter["schema"], operation_id
        if name == "cursor" and operation_id == "list_call_events":
            assert re.fullmatch(parameter["schema"]["pattern"], "42"), operation_id
            assert not re.fullmatch(parameter["schema"]["pattern"], "@@@"), operation_id
        elif name == "cursor":
            assert re.fullmatch(parameter["schema"]["pattern"], "WyIyMDI2Il0"), operation_id
            assert not re.fullmatch(parameter["schema"]["pattern"], "@@@"), operation_id
    phones = [prop for _, name, prop in _schema_properties(spec) if name == "phone"]
    assert phones
    for phone in phones:
        assert re.fullmatch(phone["pattern"], "+86 138-0000-0000")
        assert not re.fullmatch(phone["pattern"], "not a phone")
    # A client cannot read the server's settings: a description names the value.
    setting_names = {name.upper() for name in Settings.model_fields}
    text = json.dumps(spec)
    assert [name for name in setting_names if re.search(rf"\b{name}\b", text)] == []


def test_enums_the_server_sends_are_marked_extensible() -> None:
    """Issue 12, item 8: a client must know which enums may grow."""
    from app.http.evolution import EXTENSIBLE, NOTE, answered_schemas

    document = openapi_document()
    components = document["components"]["schemas"]
    answered = answered_schemas(document)
    sent = sorted(name for name in answered if "enum" in components[name])
    assert {"CallStatus", "OfferStatus", "CallCategory", "NotificationKind"} <= set(sent)
    for name in sent:
        assert components[name].get(EXTENSIBLE) is True, name
        assert NOTE in components[name]["description"], name
    only_asked = [name for name, c in components.items() if "enum" in c and name not in answered]
    for name in only_asked:
        assert EXTENSIBLE not in components[name], name
    assert "How it evolves" in document["info"]["description"]


# Properties of answers that are not always sent, and why.
SOMETIMES_SENT = {
    ("OtpSent", "debug_code"): "only outside production, with the console SMS backend",
    ("Point", "accuracy_m"): "one schema with requests, where it may be left out",
    ("Problem", "request_id"): "absent when the answer is made before a request id exists",
    ("Problem", "errors"): "only on validation errors",
    ("Problem", "retry_after"): "only on 429 (whose own schema requires it)",
}


def test_what_answers_always_send_is_required() -> None:
    """Issue 12, item 5: a generated client must not have to guess whether
    an always-sent property may be missing."""
    from app.http.evolution import answered_schemas

    document = openapi_document()
    components = document["components"]["schemas"]
    optional = {
        (name, prop)
        for name in answered_schemas(document)
        for prop in components[name].get("properties", {})
        if prop not in components[name].get("required", [])
    }
    assert optional == set(SOMETIMES_SENT)
