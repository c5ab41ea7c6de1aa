"""The call loop's calls routes answered without the dependency solver
(app/http/plain_route.py): the press, `POST /api/v1/calls`, and a progress
step, `POST /api/v1/calls/{call_id}/progress`. Their declarations are in
app/calls/routes.py."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from starlette.requests import Request

from app.calls.deps import locked_visible_call
from app.http import plain_route
from app.http.plain_route import NOT_PLAIN, Endpoint, PlainRoute
from app.models.call import CallCreate, CallProgress


class PressRoute(PlainRoute):
    """A plain press: a JSON body `CallCreate` accepts, a bearer token, no
    Idempotency-Key (a keyed press, its replay and its refusals are
    FastAPI's)."""

    passes = frozenset({"body", "user", "session", "settings", "response", "idempotency_key"})

    async def plain(
        self, request: Request, token: str, endpoint: Endpoint, response: Response
    ) -> Any:
        body = await plain_route.json_body(request, CallCreate)
        if body is None:
            return NOT_PLAIN
        async with plain_route.person(request, token) as asking:
            return await endpoint(
                body=body,
                user=asking.user,
                session=asking.session,
                settings=asking.settings,
                response=response,
            )


class ProgressRoute(PlainRoute):
    """A plain progress step: the call's id, a JSON body `CallProgress`
    accepts, a bearer token; the call as `CurrentLockedCall` gives it."""

    passes = frozenset({"call", "body", "session"})
    resolves = frozenset({locked_visible_call})

    async def plain(
        self, request: Request, token: str, endpoint: Endpoint, response: Response
    ) -> Any:
        call_id = plain_route.path_uuid(request, "call_id")
        if call_id is None:
            return NOT_PLAIN
        body = await plain_route.json_body(request, CallProgress)
        if body is None:
            return NOT_PLAIN
        async with plain_route.person(request, token) as asking:
            call = await locked_visible_call(
                call_id=call_id, user=asking.user, session=asking.session
            )
            return await endpoint(call=call, body=body, session=asking.session)
