from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.http.deps import CurrentUser, SessionDep
from app.http.prefix import API_PREFIX
from app.models.auth import DeviceRegistration
from app.notifications import devices

router = APIRouter(prefix=f"{API_PREFIX}/me", tags=["me"])

DeviceToken = Annotated[
    str,
    Path(
        min_length=8,
        max_length=4096,
        pattern=r"^[A-Za-z0-9:_\-.]+$",
        description="the push token the phone got from FCM (never logged)",
    ),
]


@router.put(
    "/devices/{token}",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def register_device(
    token: DeviceToken, body: DeviceRegistration, user: CurrentUser, session: SessionDep
) -> Response:
    """Register this phone for push notifications; doing it again is harmless.
    With `locale`, the person's alerts are written in that language."""
    await devices.register_device(session, user, token, body.platform, body.locale)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/devices/{token}",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def delete_device(token: DeviceToken, user: CurrentUser, session: SessionDep) -> Response:
    """Stop pushing to this phone."""
    await devices.remove_device(session, user, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
