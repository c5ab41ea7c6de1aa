from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.calls import service as calls
from app.calls.deps import CurrentCall
from app.core.cursors import PAGE_LIMIT, Cursor
from app.dispatch import assign as assignment
from app.http.deps import SessionDep, SettingsDep, StaffUser
from app.http.prefix import API_PREFIX
from app.models.call import AssignBody, CallList, CallPublic, CallStatus

router = APIRouter(prefix=f"{API_PREFIX}/dispatch", tags=["dispatch"])


@router.get("/calls")
async def list_dispatch_calls(
    user: StaffUser,
    session: SessionDep,
    status: Annotated[CallStatus | None, Query(description="only calls in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description=PAGE_LIMIT)] = 50,
    cursor: Cursor = None,
) -> CallList:
    """The calls of the dispatcher's community or street, newest first
    (`?status=escalated` for those waiting on a dispatcher)."""
    data, next_cursor = await calls.list_calls(
        session, user, status=status, limit=limit, cursor=cursor, staff_only=True
    )
    return CallList(data=data, next_cursor=next_cursor)


@router.post("/calls/{call_id}/assign")
async def assign_call(
    _: StaffUser,
    call: CurrentCall,
    body: AssignBody,
    session: SessionDep,
    settings: SettingsDep,
) -> CallPublic:
    """Offer the call to a team of the dispatcher's choice (within its area);
    if that team lets it lapse, the call comes back to the dispatchers."""
    return await assignment.assign(session, settings, call, body.team_id)
