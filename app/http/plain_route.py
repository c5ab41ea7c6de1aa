"""Routes of the call loop answered without FastAPI's dependency solver
when the request is a plain one.

A surge is presses, accepts and progress steps, and the framework around
each (solving the dependency tree, validating the answer it was just
handed and serialising it) cost a press 0.8-2.8 ms of its 6.5-7.3 ms of CPU
(docs/benchmarks.md, "The press without the dependency solver").
`PlainRoute` is such a route's class: its declaration is unchanged, so the
OpenAPI document, the route's matching, the middleware and the problem
handlers are the same. Only the handler differs:

- a plain request (a bearer token, no Idempotency-Key or X-API-Key, path
  parameters and a JSON body that validate) is answered by the subclass's
  `plain`, which resolves the route's dependencies with the very functions
  the solver would call (`app.http.deps`, `app.calls.deps`), in the order
  it would, in one unit of work, and calls the route's own endpoint;
- anything else goes to FastAPI's handler, unchanged, before any work, so
  every refusal of a request's shape is the one the declaration gives.

A subclass names what its `plain` passes the endpoint (`passes`) and which
dependency functions it calls besides the person's chain (`resolves`); a
route whose endpoint takes anything else, or whose declaration (with what
its router's inclusion adds) depends on any other function, is refused
when the app is built. So an input or a rule added to a route (a stricter
`VolunteerUser` for `CurrentUser`, a router-wide dependency) cannot be
silently skipped on its plain requests. (A route is checked when it is
declared; what an inclusion adds, when FastAPI builds the included route:
for the OpenAPI document, which CI builds from the app, or the first
request.)
tests/http/test_plain_routes.py holds both handlers to the same answers.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from fastapi import Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute, _effective_route_context_var
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app.core.config import Settings
from app.http import deps
from app.identity.auth import PersonPrincipal

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Endpoint = Callable[..., Coroutine[Any, Any, Any]]
Body = TypeVar("Body", bound=BaseModel)

# A path parameter read as FastAPI reads it (pydantic, lax, from the string).
_UUID = TypeAdapter(uuid.UUID)


def bearer(request: Request) -> str | None:
    """The bearer token of a plain request, read as `HTTPBearer` reads it;
    None for anything the declared handler should answer: no token, another
    scheme, an API key or an Idempotency-Key."""
    if "idempotency-key" in request.headers or "x-api-key" in request.headers:
        return None
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


async def json_body(request: Request, model: type[Body]) -> Body | None:
    """The body as FastAPI would validate it, or None when FastAPI should
    answer it (another media type, no body, broken JSON, invalid)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        return None
    raw = await request.body()
    if not raw:
        return None
    try:
        return model.model_validate(json.loads(raw))
    except (ValueError, ValidationError):  # ValidationError is a ValueError too
        return None


def path_uuid(request: Request, name: str) -> uuid.UUID | None:
    """A path parameter as a UUID, or None when FastAPI should refuse it."""
    try:
        return _UUID.validate_python(request.path_params[name])
    except ValidationError:
        return None


@dataclass(frozen=True, slots=True)
class Person:
    """What a person's route is given: the unit of work, the settings and
    the person (`SessionDep`, `SettingsDep`, `CurrentUser`)."""

    session: AsyncSession
    settings: Settings
    user: PersonPrincipal


@asynccontextmanager
async def person(request: Request, token: str) -> AsyncIterator[Person]:
    """The unit of work of `deps.get_session` (committed before the answer
    is built, rolled back on any error, which the app's problem handlers
    answer as they would the declared route's) and the person of the token,
    through the solver's own functions in its order."""
    settings = await deps.get_settings_dep(request)
    async with deps.request_session(request) as session:
        principal = await deps.require_principal(
            await deps.authenticate(session, settings, request, token)
        )
        yield Person(session, settings, await deps.require_person(principal))


def _calls(dependant: Dependant) -> set[Any]:
    """Every dependency function a declaration's solver would call."""
    found: set[Any] = set()
    for sub in dependant.dependencies:
        found.add(sub.call)
        found |= _calls(sub)
    return found


# What `person` resolves: `CurrentUser`'s own chain (the token's principal,
# the unit of work and the settings it is read with).
_PERSON_CHAIN = frozenset(
    {deps.require_person} | _calls(get_dependant(path="", call=deps.require_person))
)


def _named(calls: set[Any] | frozenset[Any]) -> list[str]:
    return sorted(getattr(call, "__name__", type(call).__name__) for call in calls)


class NotPlain:
    """`plain`'s answer for a request the declared handler should take."""


NOT_PLAIN = NotPlain()


class PlainRoute(APIRoute):
    """A declared route with the subclass's `plain` tried first."""

    # The endpoint's inputs by name: what `plain` passes, and an input with
    # a default that a plain request never has (the press's Idempotency-Key).
    passes: ClassVar[frozenset[str]]
    # The dependency functions `plain` calls besides `_PERSON_CHAIN`.
    resolves: ClassVar[frozenset[Any]] = frozenset()

    async def plain(
        self, request: Request, token: str, endpoint: Endpoint, response: Response
    ) -> Any:
        """The endpoint's result for a request with a bearer `token` (and
        no API key or Idempotency-Key), or `NOT_PLAIN` before any work.
        `response` is FastAPI's sub-response (the endpoint may set its
        status and headers)."""
        raise NotImplementedError

    def get_route_handler(self) -> Handler:
        declared = super().get_route_handler()
        # The route as its inclusion made it, as FastAPI's own handler reads
        # it (with the router's dependencies, if its inclusion adds any).
        route: Any = _effective_route_context_var.get()
        if route is None or route.original_route is not self:
            route = self
        endpoint: Endpoint = self.endpoint
        declares = set(inspect.signature(endpoint).parameters)
        if declares != self.passes:
            raise TypeError(
                f"{endpoint.__name__} declares {sorted(declares)}; {type(self).__name__}"
                f" passes {sorted(self.passes)}: change both"
            )
        depends, resolved = _calls(route.dependant), _PERSON_CHAIN | self.resolves
        if depends != resolved:
            raise TypeError(
                f"{endpoint.__name__} depends on {_named(depends)}; {type(self).__name__}"
                f" resolves {_named(resolved)}: change both"
            )
        # As FastAPI serialises the route's response model (pydantic's dump_json).
        answer_type = TypeAdapter(self.response_model)
        status_code = route.status_code or 200

        # Overrides (a test's, a deployment's) are the solver's to apply: with
        # any in place, every request is FastAPI's.
        overrides = route.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return await declared(request)
            token = bearer(request)
            sub = Response(status_code=status_code)
            result = NOT_PLAIN if token is None else await self.plain(request, token, endpoint, sub)
            if result is NOT_PLAIN:
                return await declared(request)
            answer = Response(
                answer_type.dump_json(result),
                status_code=sub.status_code,
                media_type="application/json",
            )
            answer.headers.raw.extend(h for h in sub.headers.raw if h[0] != b"content-length")
            return answer

        return handler
