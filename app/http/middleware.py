"""Request id, access log, metrics and the headers every answer carries, as
one pure ASGI middleware (cheaper than BaseHTTPMiddleware on every request);
the body limit; the client's address behind trusted proxies."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.metrics import Metrics

access_log = logging.getLogger("hulian.access")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
REQUEST_ID_HEADER = "x-request-id"

# On every answer unless its route says otherwise: no cache keeps it (tokens
# and personal data; the docs' static files allow caching themselves), no
# browser second-guesses its content type, no Referer leaves for other sites.
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SAFE_REQUEST_ID.match(text) else None
    return None


def route_template(scope: Scope) -> str:
    """The matched route's path template, never the raw path (it can hold a
    token); `unmatched` for a path no route serves."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413 before any route reads
    them: by Content-Length when given, else while buffering (bounded)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Scope, send: Send) -> None:
        request_id = scope.get("state", {}).get("request_id")
        body = {
            "type": "urn:hulian:problem:payload_too_large",
            "title": "Content Too Large",
            "status": 413,
            "detail": f"The request body may be at most {self.max_bytes} bytes.",
            "code": "payload_too_large",
        }
        if request_id:
            body["request_id"] = request_id
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(scope, send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away before sending its body.
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _hop_address(hop: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address of one X-Forwarded-For entry (`a.b.c.d`, `a.b.c.d:port`,
    `[v6]:port`, `v6`), or None when it is none."""
    hop = hop.strip()
    if hop.startswith("[") and "]" in hop:
        hop = hop[1 : hop.index("]")]
    elif hop.count(":") == 1:
        hop = hop.split(":", 1)[0]
    try:
        return ipaddress.ip_address(hop)
    except ValueError:
        return None


class TrustedProxyMiddleware:
    """The client's address when the peer is a trusted proxy: the right-most
    X-Forwarded-For hop that is not itself a trusted proxy. Everything left
    of it was written by the client and proves nothing; a peer that is not
    trusted is the client, whatever its headers say. The address keys the
    per-address OTP limit and goes into the audit log."""

    def __init__(self, app: ASGIApp, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    def _is_trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self.trusted)

    def client_behind(self, forwarded: str) -> str | None:
        hops = forwarded.split(",")
        for hop in reversed(hops):
            address = _hop_address(hop)
            if address is None:
                # The last trusted proxy wrote no address: believe nothing.
                return None
            if not self._is_trusted(address):
                return str(address)
        # Every hop is a proxy of ours: the request started inside.
        first = _hop_address(hops[0])
        return str(first) if first is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client:
            peer = _hop_address(str(client[0]))
            if peer is not None and self._is_trusted(peer):
                scope = self._rewrite(scope)
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope) -> Scope:
        forwarded: list[str] = []
        proto = None
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").strip().lower()
        scope = dict(scope)
        if forwarded:
            address = self.client_behind(",".join(forwarded))
            if address is not None:
                scope["client"] = (address, 0)
        if proto in ("http", "https"):
            scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
        return scope


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
