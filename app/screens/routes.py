from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response, Security, status
from fastapi.security import APIKeyHeader

from app.http.deps import SessionDep, SettingsDep, StaffUser
from app.http.prefix import API_PREFIX
from app.models.call import CallPublic
from app.models.screen import (
    ScreenCallCreate,
    ScreenCallProgress,
    ScreenCreate,
    ScreenCreated,
)
from app.screens import service as screens

ScreenId = Annotated[uuid.UUID, Path(description="the screen's id")]

_screen_key = APIKeyHeader(
    name="X-Screen-Key",
    scheme_name="ScreenKey",
    auto_error=False,
    description="a public screen's own key, from POST /admin/screens",
)
CallId = Annotated[uuid.UUID, Path(description="the call's id, as the press answered it")]
ScreenKey = Annotated[str | None, Security(_screen_key)]

admin_router = APIRouter(prefix=f"{API_PREFIX}/admin", tags=["admin"])
public_router = APIRouter(prefix=f"{API_PREFIX}/public", tags=["screens"])


@admin_router.post("/screens", status_code=status.HTTP_201_CREATED)
async def create_screen(body: ScreenCreate, user: StaffUser, session: SessionDep) -> ScreenCreated:
    """Register a public screen at a location in an area (admin, or a
    dispatcher in its area: else 403 `outside_your_area`). Answers its id and
    its own key, shown only this once. A location outside the area → 422
    `location_outside_area`; outside every area → 422
    `outside_service_area`."""
    return await screens.create(session, user, body)


@admin_router.delete("/screens/{screen_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_screen(screen_id: ScreenId, user: StaffUser, session: SessionDep) -> Response:
    """Revoke a screen's key: its next press is refused, in every server
    process. A screen outside a dispatcher's area, or revoked already → 404."""
    await screens.revoke(session, user, screen_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@public_router.post(
    "/screens/{screen_id}/calls",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": CallPublic, "description": "a double tap: the call opened moments ago"}
    },
)
async def create_screen_call(
    screen_id: ScreenId,
    body: ScreenCallCreate,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    screen_key: ScreenKey = None,
) -> CallPublic:
    """The one-tap party-member call (党员一键呼叫) of a public screen: a call
    located at the screen, dispatched like any press. No access token: the
    screen's key in `X-Screen-Key` (wrong or revoked → 401
    `invalid_screen_key`). A phone, when left, gets the acceptance and the
    resolution by SMS. A second press at the same screen seconds after the
    first answers the first call (200); more presses in an hour than a screen
    is allowed → 429 `rate_limited` with Retry-After."""
    opened = await screens.press(session, settings, screen_id, screen_key, body)
    if not opened.created:
        response.status_code = status.HTTP_200_OK
    return opened.call


@public_router.get("/screens/{screen_id}/calls/{call_id}")
async def get_screen_call(
    screen_id: ScreenId,
    call_id: CallId,
    session: SessionDep,
    settings: SettingsDep,
    screen_key: ScreenKey = None,
) -> ScreenCallProgress:
    """How a call pressed at this screen stands, for the screen to tell the
    walk-up caller: its status and, once a member took it, the team's name;
    nothing that names or locates a person. The screen's key in
    `X-Screen-Key` (wrong or revoked → 401 `invalid_screen_key`). Only calls
    pressed at this screen, and only for a while after the press (15 minutes
    by default): any other → 404."""
    return await screens.follow(session, settings, screen_id, screen_key, call_id)
