"""openapi/asyncapi.json is what the app generates, it is a valid AsyncAPI
3.0 document, and its messages are the REST API's models. That real frames
match it: tests/events/test_ws.py::test_every_frame_matches_the_asyncapi_document."""

from __future__ import annotations

import json
from typing import Any, get_args

import httpx
import jsonschema_rs

from app.events.asyncapi import ASYNCAPI_URL, SERVER_MESSAGES, asyncapi_document
from app.main import create_app, openapi_document
from app.models.call import EVENT_MODELS, EventPublic, EventType
from tests.conftest import make_settings
from tests.dbutil import PROJECT_ROOT

# The AsyncAPI 3.0.0 JSON Schema as the AsyncAPI project publishes it, from
# the npm registry (`@asyncapi/specs`, pinned in clients/typescript's lock
# and installed by `make clients`, as the client generators are).
ASYNCAPI_SCHEMA = (
    PROJECT_ROOT
    / "clients"
    / "typescript"
    / "node_modules"
    / "@asyncapi"
    / "specs"
    / "schemas"
    / "3.0.0-without-$id.json"
)


def server_frame_validator() -> Any:
    """A validator of any frame the server may send: exactly one of the
    document's server messages (formats checked: uuid, date-time)."""
    document = asyncapi_document()
    # What the server sends: its `send` operations, and the replies to what it receives.
    refs = [
        ref
        for operation in document["operations"].values()
        for ref in (
            operation["messages"]
            if operation["action"] == "send"
            else operation.get("reply", {}).get("messages", [])
        )
    ]
    channel_messages = document["channels"]["live"]["messages"]
    payloads = []
    for ref in refs:
        name = ref["$ref"].rsplit("/", 1)[1]
        target = channel_messages[name]["$ref"].rsplit("/", 1)[1]
        payloads.append(document["components"]["messages"][target]["payload"])
    schema = {"oneOf": payloads, "components": {"schemas": document["components"]["schemas"]}}
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


def test_it_is_a_valid_asyncapi_3_document() -> None:
    validator = jsonschema_rs.validator_for(json.loads(ASYNCAPI_SCHEMA.read_text("utf-8")))
    document = asyncapi_document()
    errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []
    # The schema has teeth: OpenAPI's discriminator object is no AsyncAPI one.
    broken = json.loads(json.dumps(document))
    broken["components"]["schemas"]["CallUpdatedEvent"]["discriminator"] = {"propertyName": "x"}
    assert not validator.is_valid(broken)


async def test_served_beside_openapi_without_auth(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get(ASYNCAPI_URL)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == asyncapi_document()
    assert ASYNCAPI_URL not in openapi_document()["paths"]


def test_every_event_type_has_its_model_and_message() -> None:
    typed = [get_args(model.model_fields["type"].annotation)[0] for model in EVENT_MODELS]
    assert sorted(typed) == sorted(EventType)
    sent = {model for model in SERVER_MESSAGES.values()}
    assert set(EVENT_MODELS) <= sent
    union = openapi_document()["components"]["schemas"]["EventPublic"]
    assert set(union["discriminator"]["mapping"]) == {kind.value for kind in EventType}
    assert len(union["oneOf"]) == len(EventType)
    assert EventPublic.model_json_schema()["discriminator"]["propertyName"] == "type"


def _without_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_without_defaults(item) for item in node]
    return node


def test_the_messages_are_the_rest_schemas() -> None:
    """The same models, so the same schemas: FastAPI leaves out what a
    response field defaults to, which a message never lacks anyway."""
    rest = openapi_document()["components"]["schemas"]
    live = asyncapi_document()["components"]["schemas"]
    names = [model.__name__ for model in EVENT_MODELS] + ["CallPublic", "OfferPublic", "Point"]
    for name in names:
        assert _without_defaults(live[name]) == _without_defaults(rest[name]), name
