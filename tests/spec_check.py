"""Every problem the app answers in a test is one its operation declares:
the status, and the `code` in that status's enum (issue 12, items 2 and 5).
Wrapped around the `app` fixture, so the whole suite checks the table of
app/http/responses.py against what the services really answer."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.main import openapi_document

_SPEC: dict[str, Any] = {}


def declared_codes(method: str, path: str, status: int) -> list[str] | None:
    """The codes `method path` declares for `status`; None when it declares
    no such status (or no such operation)."""
    if not _SPEC:
        _SPEC.update(openapi_document())
    operation = _SPEC["paths"].get(path, {}).get(method.lower())
    response = (operation or {}).get("responses", {}).get(str(status))
    if response is None:
        return None
    schema = response["content"]["application/problem+json"]["schema"]
    codes: list[str] = schema["properties"]["code"]["enum"]
    return codes


class UndeclaredProblems:
    """Records each problem answer that its operation does not declare."""

    def __init__(self, app: ASGIApp, found: list[str]) -> None:
        self.app = app
        self.found = found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message = {}
        body = b""

        async def recording(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body += message.get("body", b"")
            await send(message)

        await self.app(scope, receive, recording)
        headers = {k.lower(): v for k, v in start.get("headers", [])}
        route = getattr(scope.get("route"), "path", None)
        status = start["status"]
        # A 405 is the path's answer to a method no operation has.
        if route is None or status == 405:
            return
        if b"problem+json" not in headers.get(b"content-type", b""):
            return
        code = json.loads(body)["code"] if body else None
        codes = declared_codes(scope["method"], route, status)
        if codes is None or code not in codes:
            self.found.append(f"{scope['method']} {route} answered {status} {code}")
