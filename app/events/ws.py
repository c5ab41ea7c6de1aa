"""`GET /api/v1/ws`: the live stream (docs/live.md).

Auth by `Authorization: Bearer` or `?token=` (browsers; never logged: our
access log names only the route, and the JSON log formatter cuts the query
out of every logged path, uvicorn's WebSocket lines included). A socket first waits up to
`RESUME_WINDOW_S` for the client's `resume`, so that what it replays and
what arrives live form one stream of increasing ids; any other message, or
the end of the window, starts the live stream.

**What an idle socket holds.** A process may hold tens of thousands of
sockets, most of them idle, so a socket is one task (the ASGI call itself,
which reads) and one small object (`LiveSocket`, `__slots__`), nothing else:
a plain ASGI endpoint (no Starlette `WebSocket`, no FastAPI dependency
machinery around it), no task, queue, event or lock of its own while idle.
Whatever must be sent (events, answers, heartbeats, the close) waits in the
socket's buffers and is written by a short-lived task started when there is
something to write and ended when there is nothing left (`LiveSocket.flush`):
one writer at a time, so ids keep increasing. Heartbeats and token expiry
come from the process's one ticker (`app/events/ticker.py`), sessions are
checked in one query per process (`EventHub._check_sessions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.datastructures import Headers, QueryParams
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core import jsontext
from app.core.config import Settings
from app.core.db import session_scope
from app.core.errors import AppError
from app.events import hub as live
from app.events import messages
from app.events.hub import Ending, EventHub, Subscriber
from app.events.messages import LiveErrorCode
from app.http.prefix import API_PREFIX
from app.identity import auth, tokens
from app.identity.auth import PersonPrincipal
from app.models.call import EVENT_ID_MAX

router = APIRouter(tags=["live"])

RESUME_WINDOW_S = 1.0
# Sockets of a process that may look up their person at once (`LiveEndpoint`).
SETUP_CONCURRENCY = 4

# Close codes (docs/live.md).
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_SESSION_ENDED = 4001
CLOSE_ACCESS_CHANGED = 4003
CLOSE_TOO_SLOW = 4008
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_DATA = 1007
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_ORIGIN_REFUSED = 1008
CLOSE_INTERNAL_ERROR = 1011

log = logging.getLogger("hulian.live")


def _same_origin(origin: str, host: str | None) -> bool:
    """A page of this server itself (the web app at /app/): its origin names
    the host the socket was asked of. Another site's page cannot make its
    visitor's browser send our host with its own origin."""
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


def _token(scope: Scope) -> str | None:
    header = Headers(scope=scope).get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return QueryParams(scope.get("query_string", b"")).get("token")


def _text(message: dict[str, Any]) -> str:
    return jsontext.dumps(message)


PONG = _text(messages.PONG)


class LiveSocket(Subscriber):
    """One connected socket: the hub's `Subscriber` for its person, the
    ticker's `Ticking`, and its writer. The reader is `run`, in the ASGI
    call's own task."""

    __slots__ = (
        "beat_slot",
        "close_code",
        "close_reason",
        "closing",
        "expiry_tick",
        "flusher",
        "hub",
        "last_sent",
        "live",
        "replies",
        "resuming",
        "send",
    )

    def __init__(self, send: Send, hub: EventHub, person: PersonPrincipal) -> None:
        super().__init__(person)
        self.send = send
        self.hub = hub
        self.last_sent = 0
        # The live stream started: the client spoke, or the window ended.
        self.live = False
        # A `resume` is being replayed: it writes, nothing else does.
        self.resuming = False
        # The writer while there is something to write, else None.
        self.flusher: asyncio.Task[None] | None = None
        # Answers and heartbeats waiting to be sent (made when needed).
        self.replies: deque[str] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        # The close frame went out, or the client left: nothing more is sent.
        self.closing = False
        self.beat_slot = 0
        self.expiry_tick = 0

    # ---- what others call: the hub, the ticker, the reader ---------------------------

    def finish(self, code: int, reason: str) -> None:
        """Close the socket with this code (the first reason given wins)."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.kick()

    def wake(self) -> None:
        if self.overflowed:
            self.finish(CLOSE_TOO_SLOW, "too slow: events were dropped, resume")
        elif self.ending is Ending.access:
            self.finish(CLOSE_ACCESS_CHANGED, "access changed")
        elif self.ending is not None:
            self.finish(CLOSE_SESSION_ENDED, "session ended")
        else:
            self.kick()

    def beat(self, text: str) -> None:
        self.reply(text)

    def expire(self) -> None:
        self.finish(CLOSE_SESSION_ENDED, "token expired")

    def reply(self, text: str) -> None:
        if self.closing or self.close_code is not None:
            return
        replies = self.replies
        if replies is None:
            replies = self.replies = deque()
        if len(replies) >= live.QUEUE_SIZE:
            # A client that sends but never reads: as for events.
            self.finish(CLOSE_TOO_SLOW, "too slow: not reading")
            return
        replies.append(text)
        self.kick()

    def go_live(self) -> None:
        if not self.live:
            self.live = True
            self.kick()

    # ---- the writer ------------------------------------------------------------------

    def kick(self) -> None:
        """Start the writer if there is something to write and nobody writes."""
        if self.flusher is not None or self.resuming or self.closing:
            return
        if self.close_code is not None or self.replies or (self.live and self.pending):
            self.flusher = asyncio.get_running_loop().create_task(self.flush())

    async def _send_text(self, text: str) -> None:
        await self.send({"type": "websocket.send", "text": text})

    async def flush(self) -> None:
        """Write what waits, in order (the close first and alone), until
        nothing is left; a `resume` stops it before its next message."""
        try:
            while not self.resuming and not self.closing:
                if self.close_code is not None:
                    self.closing = True
                    await self.send(
                        {
                            "type": "websocket.close",
                            "code": self.close_code,
                            "reason": self.close_reason,
                        }
                    )
                elif self.replies:
                    text = self.replies.popleft()
                    if not self.replies:
                        self.replies = None
                    await self._send_text(text)
                elif self.live and (message := self.take()) is not None:
                    event_id = message.get("id")
                    if event_id is None:
                        # `duty.updated`: no event of the log, no id, never replayed.
                        await self._send_text(_text(message))
                    elif event_id > self.last_sent:
                        await self._send_text(_text(message))
                        self.last_sent = event_id
                else:
                    return
        except OSError:
            # The client left (uvicorn's ClientDisconnected): the reader ends.
            self.closing = True
        except Exception as error:
            if not self.closing:
                log.error("live socket failed", exc_info=error)
                self.closing = True
                with contextlib.suppress(Exception):
                    await self.send(
                        {
                            "type": "websocket.close",
                            "code": CLOSE_INTERNAL_ERROR,
                            "reason": "internal error",
                        }
                    )
        finally:
            self.flusher = None

    # ---- the reader ------------------------------------------------------------------

    async def run(self, receive: Receive, expires_in_s: float, max_message_bytes: int) -> None:
        hub = self.hub
        hub.subscribe(self)
        hub.ticker.add(self, expires_in_s)
        asyncio.get_running_loop().call_later(RESUME_WINDOW_S, self.go_live)
        try:
            await self.read(receive, max_message_bytes)
        except Exception as error:
            log.error("live socket failed", exc_info=error)
            self.finish(CLOSE_INTERNAL_ERROR, "internal error")
        finally:
            hub.unsubscribe(self)
            hub.ticker.discard(self)
            flusher = self.flusher
            if flusher is not None and self.close_code is None:
                flusher.cancel()
            if flusher is not None:
                # The close this socket asked for goes out before the call ends.
                await asyncio.gather(flusher, return_exceptions=True)
            self.closing = True

    async def read(self, receive: Receive, max_message_bytes: int) -> None:
        """Until the client leaves, or the socket is closed."""
        while True:
            frame = await receive()
            if frame["type"] == "websocket.disconnect":
                self.closing = True
                return
            if frame["type"] != "websocket.receive" or self.close_code is not None:
                continue
            text = frame.get("text")
            if text is None:
                # The protocol is JSON in text frames; a binary frame is no message.
                self.finish(CLOSE_UNSUPPORTED_DATA, "text messages only")
                return
            if len(text.encode()) > max_message_bytes:
                self.finish(CLOSE_MESSAGE_TOO_BIG, "message too big")
                return
            try:
                message = json.loads(text)
            except RecursionError:
                # Nested deeper than the parser's stack (a few KiB of `[`):
                # no client writes that, so the socket ends as sent bad data.
                self.finish(CLOSE_INVALID_DATA, "message nested too deeply")
                return
            except ValueError:
                message = None
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "ping":
                self.reply(PONG)
            elif kind == "resume":
                after = message.get("after")
                if (
                    not isinstance(after, int)
                    or isinstance(after, bool)
                    or not 0 <= after <= EVENT_ID_MAX
                ):
                    self.reply(_text(messages.error(LiveErrorCode.bad_resume)))
                else:
                    await self.resume(after)
            else:
                self.reply(_text(messages.error(LiveErrorCode.unknown_message)))
            self.go_live()

    async def resume(self, after: int) -> None:
        """Replay what the client missed; never anything it already got on
        this socket, so ids keep increasing. The writer stops first; the
        replay is written here, then the writer takes over again."""
        self.resuming = True
        try:
            if self.flusher is not None:
                await self.flusher
            start = max(after, self.last_sent)
            upto = self.hub.delivered_upto
            for message in await self.hub.replay(self.person, start, upto):
                if self.closing or self.close_code is not None:
                    return
                await self._send_text(_text(message))
                self.last_sent = message["id"]
            # The client has everything up to `after`; live events up to
            # `upto` were just replayed. Neither may come again.
            self.last_sent = max(self.last_sent, after, upto)
        finally:
            self.resuming = False
            self.kick()


async def _principal(scope: Scope, settings: Settings) -> tuple[PersonPrincipal, float] | None:
    """The socket's person and the seconds its token has left, or None.
    (A function of its own: nothing it used, the database session above
    all, stays referenced from the socket's long-lived frame.)"""
    token = _token(scope)
    try:
        if token is None:
            raise tokens.InvalidToken("no token")
        claims = tokens.decode(settings, token, "access")
        async with session_scope(scope["app"].state.sessionmaker) as session:
            person = await auth.load_principal(session, claims.person_id, claims.session_id)
    except AppError:
        return None
    return person, (claims.expires_at - datetime.now(UTC)).total_seconds()


class LiveEndpoint:
    """The ASGI endpoint of `GET /api/v1/ws` (a plain ASGI app, so that
    Starlette calls it as it is).

    At most `SETUP_CONCURRENCY` sockets of a process look up their person at
    once: after a mass reconnect, thousands would otherwise queue for the
    requests' connection pool ahead of the presses."""

    def __init__(self) -> None:
        self._gate: asyncio.Semaphore | None = None
        self._gate_loop: asyncio.AbstractEventLoop | None = None

    def gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate_loop is not loop:
            self._gate, self._gate_loop = asyncio.Semaphore(SETUP_CONCURRENCY), loop
        return self._gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings: Settings = scope["app"].state.settings
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = settings.ws_origins
        if (
            allowed is not None
            and origin
            and origin not in allowed
            and not _same_origin(origin, headers.get("host"))
        ):
            # Before accepting: the handshake is refused with HTTP 403.
            await send({"type": "websocket.close", "code": CLOSE_ORIGIN_REFUSED, "reason": ""})
            return
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        async with self.gate():
            found = await _principal(scope, settings)
        if found is None:
            await send(
                {
                    "type": "websocket.close",
                    "code": CLOSE_NOT_AUTHENTICATED,
                    "reason": "not authenticated",
                }
            )
            return
        person, expires_in = found
        hub: EventHub = scope["app"].state.hub
        await LiveSocket(send, hub, person).run(receive, expires_in, settings.ws_max_message_bytes)


LIVE_PATH = f"{API_PREFIX}/ws"
live_endpoint = LiveEndpoint()
# Listed with the other routes; served by `LiveStreamShortcut` ahead of them.
router.routes.append(WebSocketRoute(LIVE_PATH, live_endpoint, name="live_stream"))


class LiveStreamShortcut:
    """Middleware that hands `GET /api/v1/ws` to its endpoint before the
    inner layers (request context and body limit, which skip WebSockets
    anyway, the exception handlers, FastAPI's exit stack, the router): each
    of those is a coroutine frame, some with an exit stack, that the
    socket's task would hold for as long as the socket is open.

    `__call__` is a plain function that returns the coroutine to await, so
    this layer holds no frame either."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if (
            scope["type"] == "websocket"
            and scope["path"].removeprefix(scope.get("root_path", "")) == LIVE_PATH
        ):
            return live_endpoint(scope, receive, send)
        return self.app(scope, receive, send)
