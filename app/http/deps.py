"""Dependencies, defined once as `Annotated` aliases for the routes.

Deny by default: a route that names none of the principal aliases below is
public, and the authorization matrix test lists every route with who may
call it, so a new route cannot slip in unlisted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.log import RequestOrigin
from app.core.config import Settings
from app.core.errors import Forbidden, Unauthorized
from app.identity import api_keys, principals
from app.identity.auth import ApiKeyPrincipal, PersonPrincipal, Principal
from app.identity.challenge import SendChallenge
from app.identity.sms import SmsSender
from app.identity.tokens import InvalidToken


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def request_session(request: Request) -> AbstractAsyncContextManager[AsyncSession]:
    """The request's unit of work, the only place that commits: the app's
    `state.unit_of_work` (`session_scope` on its sessionmaker; a test's
    joins the test's transaction). The plain routes' handlers
    (app/http/plain_route.py) open it here too."""
    unit: Callable[[], AbstractAsyncContextManager[AsyncSession]] = request.app.state.unit_of_work
    return unit()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work (`request_session`)."""
    async with request_session(request) as session:
        yield session


async def get_origin(request: Request) -> RequestOrigin:
    return RequestOrigin(
        ip=request.client.host if request.client else None,
        request_id=getattr(request.state, "request_id", None),
    )


async def get_sms(request: Request) -> SmsSender:
    sender: SmsSender = request.app.state.sms
    return sender


async def get_otp_challenge(request: Request) -> SendChallenge:
    challenge: SendChallenge = request.app.state.otp_challenge
    return challenge


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# scope="function": the unit of work ends (commits) when the route returns,
# before the response is sent. In the default request scope it would end
# after the response is on the wire: a 2xx for a write whose commit may
# still fail, and a client that reads before its own write. Every use of
# this alias shares one cache key, so a request has one session: the
# principal is looked up in the same one the route writes with.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
OriginDep = Annotated[RequestOrigin, Depends(get_origin)]
SmsDep = Annotated[SmsSender, Depends(get_sms)]
ChallengeDep = Annotated[SendChallenge, Depends(get_otp_challenge)]

_bearer = HTTPBearer(auto_error=False, description="an access token from POST /auth/token")
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="a third-party system's key, with scopes"
)


async def authenticate(
    session: AsyncSession, settings: Settings, request: Request, bearer: str | None
) -> Principal | None:
    # Each process's principals, kept until a NOTIFY says they changed
    # (app/identity/principals.py): no query per request in the steady state.
    cache: principals.PrincipalCache | None = request.app.state.principals
    if bearer is not None:
        return await principals.person(cache, session, settings, bearer)
    if request.headers.get("authorization"):
        raise InvalidToken("Use `Authorization: Bearer <access token>`.")
    # Read from the request, not through `_api_key`: every route still knows
    # a key (to refuse it 403 `api_key_not_allowed`, or 401 when it is not
    # one), but only those of `require_scope` declare it in the OpenAPI
    # document, so a client is offered a key only where one works.
    api_key = request.headers.get(_api_key.model.name)
    if api_key:
        return await principals.api_key(cache, session, api_key)
    return None


async def get_principal(
    session: SessionDep,
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    request: Request,
) -> Principal | None:
    token = bearer.credentials if bearer is not None else None
    return await authenticate(session, settings, request, token)


async def require_principal(
    principal: Annotated[Principal | None, Depends(get_principal)],
) -> Principal:
    if principal is None:
        raise Unauthorized("Log in first: this needs an access token or an API key.")
    return principal


async def require_person(
    principal: Annotated[Principal, Depends(require_principal)],
) -> PersonPrincipal:
    if not isinstance(principal, PersonPrincipal):
        raise Forbidden("This is for people, not API keys.", code="api_key_not_allowed")
    return principal


async def require_volunteer(
    person: Annotated[PersonPrincipal, Depends(require_person)],
) -> PersonPrincipal:
    if not person.is_volunteer:
        raise Forbidden("Only members of a team can do this.", code="not_a_volunteer")
    return person


async def require_staff(
    person: Annotated[PersonPrincipal, Depends(require_person)],
) -> PersonPrincipal:
    if not (person.is_admin or person.dispatcher_area is not None):
        raise Forbidden("Only dispatchers and admins can do this.", code="not_staff")
    return person


async def require_admin(
    person: Annotated[PersonPrincipal, Depends(require_person)],
) -> PersonPrincipal:
    if not person.is_admin:
        raise Forbidden("Only admins can do this.", code="not_admin")
    return person


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """Any person, or an API key granted `scope`: the only routes that
    declare X-API-Key, with the scope as the security requirement's role
    (OpenAPI 3.1), which the document's description repeats."""
    assert scope in api_keys.SCOPES, scope

    async def check(
        principal: Annotated[Principal, Depends(require_principal)],
        # A default, not `Annotated`: postponed annotations cannot see `scope`.
        _: str | None = Security(_api_key, scopes=[scope]),
    ) -> Principal:
        if isinstance(principal, ApiKeyPrincipal) and scope not in principal.scopes:
            raise Forbidden(f"This API key lacks the scope {scope}.", code="insufficient_scope")
        return principal

    return check


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
CurrentUser = Annotated[PersonPrincipal, Depends(require_person)]
VolunteerUser = Annotated[PersonPrincipal, Depends(require_volunteer)]
StaffUser = Annotated[PersonPrincipal, Depends(require_staff)]
AdminUser = Annotated[PersonPrincipal, Depends(require_admin)]
AreasReader = Annotated[Principal, Depends(require_scope("areas:read"))]
TeamsReader = Annotated[Principal, Depends(require_scope("teams:read"))]
