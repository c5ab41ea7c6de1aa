"""`CurrentCall`: the call of the path, as the person asking may see it, or
404 as if it did not exist. Routes that act on one call take it instead of
a bare id, so no route can forget to ask. `CurrentLockedCall`: the same, for a
route that changes the call: locked, in the same statement (the lock every
path that changes a call takes first, `app.calls.state`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path

from app.calls import state, visibility
from app.calls.state import LockedVisibleCall
from app.calls.visibility import VisibleCall
from app.http.deps import CurrentUser, SessionDep


async def visible_call(
    call_id: Annotated[uuid.UUID, Path(description="the call's id")],
    user: CurrentUser,
    session: SessionDep,
) -> VisibleCall:
    return await visibility.require_visible(session, user, call_id)


CurrentCall = Annotated[VisibleCall, Depends(visible_call)]


async def locked_visible_call(
    call_id: Annotated[uuid.UUID, Path(description="the call's id")],
    user: CurrentUser,
    session: SessionDep,
) -> LockedVisibleCall:
    return await state.lock_visible(session, user, call_id)


CurrentLockedCall = Annotated[LockedVisibleCall, Depends(locked_visible_call)]
