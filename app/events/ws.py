"""`GET /api/v1/ws`: the live stream (docs/live.md).

Auth by `Authorization: Bearer` or `?token=` (browsers; never logged: our
access log names only the route, and the JSON log formatter cuts the query
out of every logged path, uvicorn's WebSocket lines included). A socket first waits up to
`RESUME_WINDOW_S` for the client's `resume`, so that what it replays and
what arrives live form one stream of increasing ids; any other message, or
the end of the window, starts the live stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

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

router = APIRouter(prefix=API_PREFIX, tags=["live"])

RESUME_WINDOW_S = 1.0

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


def _token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return websocket.query_params.get("token")


class LiveSocket:
    def __init__(
        self,
        websocket: WebSocket,
        settings: Settings,
        hub: EventHub,
        person: PersonPrincipal,
        expires_at: datetime,
    ) -> None:
        self.ws = websocket
        self.settings = settings
        self.hub = hub
        self.person = person
        self.expires_at = expires_at
        self.subscriber: Subscriber = hub.subscribe(person)
        self.last_sent = 0
        self.ready = asyncio.Event()
        self.send_lock = asyncio.Lock()
        self.close_code: int | None = None
        self.close_reason = ""

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(json.dumps(message, ensure_ascii=False, default=str))

    def finish(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self.reader()),
            asyncio.create_task(self.writer()),
            asyncio.create_task(self.watchdog()),
            asyncio.create_task(self.start_live_after_window()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is not None and not isinstance(error, WebSocketDisconnect):
                    log.error("live socket failed", exc_info=error)
                    self.finish(CLOSE_INTERNAL_ERROR, "internal error")
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            self.hub.unsubscribe(self.subscriber)
        if self.close_code is not None and self.ws.client_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.ws.close(code=self.close_code, reason=self.close_reason)

    async def start_live_after_window(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), RESUME_WINDOW_S)
        self.ready.set()
        await asyncio.Event().wait()  # stay until the others end

    async def reader(self) -> None:
        while True:
            frame = await self.ws.receive()
            if frame["type"] == "websocket.disconnect":
                return
            text = frame.get("text")
            if text is None:
                # The protocol is JSON in text frames; a binary frame is no message.
                self.finish(CLOSE_UNSUPPORTED_DATA, "text messages only")
                return
            if len(text.encode()) > self.settings.ws_max_message_bytes:
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
                await self.send(messages.PONG)
            elif kind == "resume":
                after = message.get("after")
                if (
                    not isinstance(after, int)
                    or isinstance(after, bool)
                    or not 0 <= after <= EVENT_ID_MAX
                ):
                    await self.send(messages.error(LiveErrorCode.bad_resume))
                else:
                    await self.resume(after)
            else:
                await self.send(messages.error(LiveErrorCode.unknown_message))
            self.ready.set()

    async def resume(self, after: int) -> None:
        """Replay what the client missed; never anything it already got on
        this socket, so ids keep increasing."""
        async with self.send_lock:
            start = max(after, self.last_sent)
            upto = self.hub.delivered_upto
            dsn = live.asyncpg_dsn(self.settings.database_url_str)
            for message in await live.replay(dsn, self.person, start, upto):
                await self.ws.send_text(json.dumps(message, ensure_ascii=False, default=str))
                self.last_sent = message["id"]
            # The client has everything up to `after`; live events up to
            # `upto` were just replayed. Neither may come again.
            self.last_sent = max(self.last_sent, after, upto)

    async def writer(self) -> None:
        ready = asyncio.create_task(self.ready.wait())
        slow = asyncio.create_task(self.subscriber.overflowed.wait())
        await asyncio.wait({ready, slow}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        slow.cancel()
        queue = self.subscriber.queue
        while True:
            get = asyncio.create_task(queue.get())
            slow = asyncio.create_task(self.subscriber.overflowed.wait())
            done, _ = await asyncio.wait({get, slow}, return_when=asyncio.FIRST_COMPLETED)
            if slow in done:
                get.cancel()
                self.finish(CLOSE_TOO_SLOW, "too slow: events were dropped, resume")
                return
            slow.cancel()
            message = get.result()
            async with self.send_lock:
                if message["id"] <= self.last_sent:
                    continue
                await self.ws.send_text(json.dumps(message, ensure_ascii=False, default=str))
                self.last_sent = message["id"]

    async def watchdog(self) -> None:
        """Heartbeats; the end of the token's life; a session that ended (the
        hub checks every socket's session in one query per process)."""
        heartbeat = self.settings.ws_heartbeat_seconds
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + heartbeat
        ended = self.subscriber.ended
        while True:
            left = (self.expires_at - datetime.now(UTC)).total_seconds()
            if left <= 0:
                self.finish(CLOSE_SESSION_ENDED, "token expired")
                return
            wait = max(0.0, min(next_beat - loop.time(), left))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), wait)
            if ended.is_set():
                if self.subscriber.ending is Ending.access:
                    self.finish(CLOSE_ACCESS_CHANGED, "access changed")
                else:
                    self.finish(CLOSE_SESSION_ENDED, "session ended")
                return
            if loop.time() >= next_beat:
                await self.send({"type": "heartbeat", "at": datetime.now(UTC).isoformat()})
                next_beat = loop.time() + heartbeat


@router.websocket("/ws")
async def live_stream(websocket: WebSocket) -> None:
    settings: Settings = websocket.app.state.settings
    origin = websocket.headers.get("origin")
    allowed = settings.ws_origins
    if allowed is not None and origin and origin not in allowed:
        await websocket.close(code=CLOSE_ORIGIN_REFUSED)  # before accept: HTTP 403
        return
    await websocket.accept()
    token = _token(websocket)
    try:
        if token is None:
            raise tokens.InvalidToken("no token")
        claims = tokens.decode(settings, token, "access")
        async with session_scope(websocket.app.state.sessionmaker) as session:
            person = await auth.load_principal(session, claims.person_id, claims.session_id)
    except AppError:
        await websocket.close(code=CLOSE_NOT_AUTHENTICATED, reason="not authenticated")
        return
    hub: EventHub = websocket.app.state.hub
    await LiveSocket(websocket, settings, hub, person, claims.expires_at).run()
