"""The AsyncAPI 3.0 document of the live stream `GET /api/v1/ws`, served at
`/asyncapi.json` beside `/openapi.json` and committed as
openapi/asyncapi.json. Its message schemas are generated from the models the
REST API answers with (the events of GET /calls/{id}/events) and those of
app/events/messages.py, so the two specs cannot tell different stories."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from app import __version__
from app.events import messages, ws
from app.http.prefix import API_PREFIX
from app.models.call import (
    CallUpdatedEvent,
    OfferClosedEvent,
    OfferCreatedEvent,
    ResponderLocationEvent,
)

ASYNCAPI_URL = "/asyncapi.json"
REF = "#/components/schemas/{model}"

# Message name → its model; what the server sends, then what the client does.
EVENTS: dict[str, type[BaseModel]] = {
    "callUpdated": CallUpdatedEvent,
    "offerCreated": OfferCreatedEvent,
    "offerClosed": OfferClosedEvent,
    "responderLocation": ResponderLocationEvent,
}
SERVER_MESSAGES: dict[str, type[BaseModel]] = {
    **EVENTS,
    "dutyUpdated": messages.DutyUpdated,
    "pong": messages.Pong,
    "heartbeat": messages.Heartbeat,
    "error": messages.LiveError,
}
CLIENT_MESSAGES: dict[str, type[BaseModel]] = {
    "ping": messages.Ping,
    "resume": messages.Resume,
}

# The close codes of app/events/ws.py, and what the client does on each.
CLOSE_CODES: tuple[tuple[int, str], ...] = (
    (
        ws.CLOSE_NOT_AUTHENTICATED,
        "not authenticated (no token, invalid, expired at connect): log in, reconnect",
    ),
    (
        ws.CLOSE_SESSION_ENDED,
        "the token expired, or the session was logged out, revoked or its "
        "person disabled: refresh the token, reconnect with `resume`",
    ),
    (
        ws.CLOSE_ACCESS_CHANGED,
        "what the person may see changed (admin, area, teams): reconnect with `resume`",
    ),
    (
        ws.CLOSE_TOO_SLOW,
        "too slow: the socket's queue overflowed and events were dropped: "
        "reconnect with `resume` from the last id",
    ),
    (ws.CLOSE_MESSAGE_TOO_BIG, "a client message over WS_MAX_MESSAGE_BYTES (64 KiB)"),
    (ws.CLOSE_UNSUPPORTED_DATA, "a binary frame: messages are JSON in text frames"),
    (ws.CLOSE_INVALID_DATA, "a message nested too deeply to parse, or text that is not UTF-8"),
    (
        ws.CLOSE_ORIGIN_REFUSED,
        "origin not in WS_ALLOWED_ORIGINS: refused at the handshake (HTTP 403)",
    ),
    (ws.CLOSE_INTERNAL_ERROR, "an internal error: reconnect with `resume`"),
)

CHANNEL_DESCRIPTION = """\
Every event a person may see, as it happens, ids strictly increasing on a
socket: the same objects GET /api/v1/calls/{id}/events returns. A new socket
waits up to 1 s for a first `resume` (or `ping`) before it starts the live
stream, so that what it replays and what arrives live form one stream.
See docs/live.md.

Close codes:

| code | meaning |
|---|---|
"""


def _asyncapi_schema(node: Any) -> Any:
    """Pydantic's JSON Schema as an AsyncAPI Schema Object, whose
    `discriminator` is the property's name (OpenAPI's is an object)."""
    if isinstance(node, dict):
        out = {key: _asyncapi_schema(value) for key, value in node.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(node, list):
        return [_asyncapi_schema(item) for item in node]
    return node


def _schemas() -> dict[str, Any]:
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "serialization") for model in SERVER_MESSAGES.values()),
        *((model, "validation") for model in CLIENT_MESSAGES.values()),
    ]
    _, top = models_json_schema(modes, ref_template=REF)
    schemas: dict[str, Any] = _asyncapi_schema(top["$defs"])
    return dict(sorted(schemas.items()))


def _message(name: str, model: type[BaseModel]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": name,
        "title": model.__name__,
        "contentType": "application/json",
        "payload": {"$ref": REF.format(model=model.__name__)},
    }
    if model.__doc__:
        message["summary"] = " ".join(model.__doc__.split())
    return message


def _refs(channel: str, names: list[str]) -> list[dict[str, str]]:
    return [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names]


@functools.cache
def asyncapi_document() -> dict[str, Any]:
    """The document; the same for every process and setting."""
    every = {**SERVER_MESSAGES, **CLIENT_MESSAGES}
    close_codes = "".join(f"| {code} | {meaning} |\n" for code, meaning in CLOSE_CODES)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Hulian live stream",
            "version": __version__,
            "description": "The WebSocket beside the REST API (/openapi.json): events of "
            "calls and offers as they happen.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "api": {
                "host": "{host}",
                "protocol": "wss",
                "description": "the host that serves the REST API (`ws` rather than `wss` "
                "where it has no TLS, as in development)",
                "variables": {"host": {"default": "localhost:8000"}},
                "security": [
                    {"$ref": "#/components/securitySchemes/bearer"},
                    {"$ref": "#/components/securitySchemes/queryToken"},
                ],
            }
        },
        "channels": {
            "live": {
                "address": f"{API_PREFIX}/ws",
                "title": "The live stream",
                "description": CHANNEL_DESCRIPTION + close_codes,
                "servers": [{"$ref": "#/servers/api"}],
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in every},
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                "token": {
                                    "type": "string",
                                    "description": "the access token, for browsers, which "
                                    "cannot set headers on a WebSocket",
                                }
                            },
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
            }
        },
        "operations": {
            "sendEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/live"},
                "summary": "Each event of a call or offer the person may see.",
                "messages": _refs("live", list(EVENTS)),
            },
            "sendDutyUpdates": {
                "action": "send",
                "channel": {"$ref": "#/channels/live"},
                "summary": "To dispatchers and admins: a member of their area went on or "
                "off duty or moved (no event id; not replayed).",
                "messages": _refs("live", ["dutyUpdated"]),
            },
            "sendHeartbeat": {
                "action": "send",
                "channel": {"$ref": "#/channels/live"},
                "summary": "A heartbeat every WS_HEARTBEAT_SECONDS.",
                "messages": _refs("live", ["heartbeat"]),
            },
            "sendError": {
                "action": "send",
                "channel": {"$ref": "#/channels/live"},
                "summary": "A client message not understood; the socket stays open.",
                "messages": _refs("live", ["error"]),
            },
            "receivePing": {
                "action": "receive",
                "channel": {"$ref": "#/channels/live"},
                "messages": _refs("live", ["ping"]),
                "reply": {
                    "channel": {"$ref": "#/channels/live"},
                    "messages": _refs("live", ["pong"]),
                },
            },
            "receiveResume": {
                "action": "receive",
                "channel": {"$ref": "#/channels/live"},
                "summary": "Replay the events after `after`, then go on live.",
                "messages": _refs("live", ["resume"]),
            },
        },
        "components": {
            "schemas": _schemas(),
            "messages": {name: _message(name, model) for name, model in every.items()},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an access token from POST /api/v1/auth/token",
                },
                "queryToken": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": "the same access token as `?token=`",
                },
            },
        },
    }


router = APIRouter()


@router.get(ASYNCAPI_URL, include_in_schema=False)
async def asyncapi_json() -> JSONResponse:
    return JSONResponse(asyncapi_document())
