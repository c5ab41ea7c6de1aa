"""`CurrentCall`: the call of the path, as the person asking may see it, or
404 as if it did not exist. Routes that act on one call take it instead of
a bare id, so no route can forget to ask."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path

from app.calls import visibility
from app.calls.visibility import VisibleCall
from app.http.deps import CurrentUser, SessionDep


async def visible_call(
    call_id: Annotated[uuid.UUID, Path(description="the call's id")],
    user: CurrentUser,
    session: SessionDep,
) -> VisibleCall:
    return await visibility.require_visible(session, user, call_id)


CurrentCall = Annotated[VisibleCall, Depends(visible_call)]
