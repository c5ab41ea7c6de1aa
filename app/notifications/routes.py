from __future__ import annotations

from fastapi import APIRouter

from app.core.cursors import Cursor, PageLimit
from app.http.deps import CurrentUser, SessionDep
from app.http.prefix import API_PREFIX
from app.models.notification import NotificationList
from app.notifications import service as notifications

router = APIRouter(prefix=f"{API_PREFIX}/me/notifications", tags=["me"])


@router.get("")
async def list_notifications(
    user: CurrentUser,
    session: SessionDep,
    limit: PageLimit = 20,
    cursor: Cursor = None,
) -> NotificationList:
    """Every alert sent to the caller, newest first, whatever carried it: a
    new call near a volunteer (`offer`) and its end (`offer_closed`), a
    change of the resident's call (`call_status`), a call escalated to a
    dispatcher (`escalation`). `push` says how its push fared: `sent` when
    any of the person's devices got it, else `pending`, `withdrawn`,
    `failed`, or `none` without a device. A bad cursor → 422
    `invalid_cursor`."""
    data, next_cursor = await notifications.list_notifications(
        session, user, limit=limit, cursor=cursor
    )
    return NotificationList(data=data, next_cursor=next_cursor)
