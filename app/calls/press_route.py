"""The press's route, `POST /api/v1/calls`, answered without FastAPI's
dependency solver when the request is a plain press.

A surge is presses, and the framework around a press (solving the
dependency tree, validating the answer it was just handed and serialising
it, the middleware, the route's matching) cost 0.8-2.8 ms of its 6.5-7.3
ms of CPU; this handler takes the first two off (docs/benchmarks.md, "The
press without the dependency solver").
`PressRoute` is the route's class: its declaration (`app/calls/routes.py`)
is unchanged, so the OpenAPI document, the route's matching, the middleware
and the problem handlers are the same. Only the handler differs:

- a plain press (a JSON body that `CallCreate` accepts, a bearer token, no
  Idempotency-Key) resolves the route's dependencies here, with the very
  functions the solver would call (`app.http.deps`), in the order it
  would, and calls the route's own endpoint;
- anything else (no token, an API key, a body that is not a valid
  `CallCreate`, an Idempotency-Key) goes to FastAPI's handler, unchanged,
  so every refusal is the one the declaration gives.

Nothing is done twice: the fast handler decides before any work whether it
takes the request. tests/calls/test_press_route.py holds both handlers to
the same answers.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Response
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request

from app.core.config import Settings
from app.http import deps
from app.models.call import CallCreate, CallPublic

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Endpoint = Callable[..., Coroutine[Any, Any, CallPublic]]

# As FastAPI serialises a route's response model (pydantic's dump_json).
_PUBLIC = TypeAdapter(CallPublic)


def _json_body(request: Request, raw: bytes) -> Any:
    """The body as FastAPI would read it, or None when FastAPI should."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" or not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:  # FastAPI's handler answers it (422 json_invalid)
        return None


def _bearer(request: Request) -> str | None:
    """The bearer token, read as `HTTPBearer` reads it, or None."""
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


async def plain_press(request: Request, endpoint: Endpoint, status_code: int) -> Response | None:
    """The answer to a plain press, or None when the request is not one (and
    nothing was done)."""
    if "idempotency-key" in request.headers or "x-api-key" in request.headers:
        return None
    token = _bearer(request)
    if token is None:
        return None
    data = _json_body(request, await request.body())
    if data is None:
        return None
    try:
        body = CallCreate.model_validate(data)
    except ValidationError:
        return None
    settings: Settings = request.app.state.settings
    # What the endpoint may set (its status), as FastAPI's sub-response.
    sub = Response(status_code=status_code)
    # The unit of work of `deps.get_session` (scope "function"): committed
    # before the answer is built, rolled back on any error, which the app's
    # problem handlers answer as they would the declared route's.
    async with deps.request_session(request) as session:
        principal = await deps.require_principal(
            await deps.authenticate(session, settings, request, token)
        )
        user = await deps.require_person(principal)
        call = await endpoint(
            body=body, user=user, session=session, settings=settings, response=sub
        )
    answer = Response(
        _PUBLIC.dump_json(call), status_code=sub.status_code, media_type="application/json"
    )
    answer.headers.raw.extend(h for h in sub.headers.raw if h[0] != b"content-length")
    return answer


# What `plain_press` passes the endpoint (an Idempotency-Key is FastAPI's).
_PASSED = frozenset({"body", "user", "session", "settings", "response", "idempotency_key"})


class PressRoute(APIRoute):
    """`POST /api/v1/calls`: the declared route, with `plain_press` first."""

    def get_route_handler(self) -> Handler:
        declared = super().get_route_handler()
        endpoint: Endpoint = self.endpoint
        # An input added to the route that `plain_press` does not give would
        # be missed on every plain press: refuse it when the app is built.
        declares = set(inspect.signature(endpoint).parameters)
        if declares != _PASSED:
            raise TypeError(
                f"{endpoint.__name__} declares {sorted(declares)}; app/calls/press_route.py"
                f" passes {sorted(_PASSED)}: change both"
            )
        status_code = self.status_code or 200

        async def handler(request: Request) -> Response:
            answer = await plain_press(request, endpoint, status_code)
            return answer if answer is not None else await declared(request)

        return handler
