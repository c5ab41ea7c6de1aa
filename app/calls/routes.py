from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from app.calls import service as calls
from app.calls.deps import CurrentCall, CurrentLockedCall
from app.calls.plain_routes import PressRoute, ProgressRoute
from app.core.cursors import PAGE_LIMIT, Cursor, PageLimit
from app.core.errors import Unprocessable
from app.http.deps import CurrentUser, SessionDep, SettingsDep
from app.http.prefix import API_PREFIX
from app.models.call import (
    EVENT_ID_MAX,
    CallCancel,
    CallCreate,
    CallList,
    CallProgress,
    CallPublic,
    CallStatus,
    DisputeCreate,
    EventList,
    RatingCreate,
    RatingPublic,
)

# An events cursor is an event id (the next page starts after it).
EVENT_CURSOR_PATTERN = r"^[0-9]{1,19}$"

router = APIRouter(prefix=f"{API_PREFIX}/calls", tags=["calls"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="the same key and body again answer the same call, not a second one",
    ),
]


async def create_call(
    body: CallCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> CallPublic:
    """The one-tap button: open a call at the resident's position. It is
    offered at once to the nearest on-duty team. The same Idempotency-Key and
    body again answer the same call; with another body, 422
    `idempotency_key_reused`; while the first is in flight, 409
    `idempotency_key_in_flight`. Outside every area: 422
    `outside_service_area`; more than 3 open calls: 429
    `too_many_open_calls`."""
    opened = await calls.open_call(
        session, settings, calls.Origin.of_resident(user), body, idempotency_key
    )
    if not opened.created:
        response.status_code = status.HTTP_200_OK
    return opened.call


# The press: a plain one is answered without the dependency solver
# (app/calls/plain_routes.py); the declaration is the route's, as any other.
router.add_api_route(
    "",
    create_call,
    methods=["POST"],
    status_code=status.HTTP_201_CREATED,
    response_model=CallPublic,
    responses={
        200: {"model": CallPublic, "description": "a double tap: the call opened moments ago"}
    },
    route_class_override=PressRoute,
)


@router.get("")
async def list_calls(
    user: CurrentUser,
    session: SessionDep,
    status_filter: Annotated[
        CallStatus | None, Query(alias="status", description="only calls in this state")
    ] = None,
    limit: PageLimit = 20,
    cursor: Cursor = None,
) -> CallList:
    """The calls the caller may see, newest first."""
    data, next_cursor = await calls.list_calls(
        session, user, status=status_filter, limit=limit, cursor=cursor
    )
    return CallList(data=data, next_cursor=next_cursor)


@router.get("/{call_id}")
async def get_call(call: CurrentCall, session: SessionDep) -> CallPublic:
    """One call; one the caller may not see answers 404."""
    return await calls.read_call(session, call)


@router.post("/{call_id}/cancel")
async def cancel_call(
    call: CurrentLockedCall, session: SessionDep, body: CallCancel | None = None
) -> CallPublic:
    """Cancel (the resident who called, or a dispatcher); open offers are withdrawn."""
    return await calls.cancel(session, call, body or CallCancel())


async def report_progress(
    call: CurrentLockedCall, body: CallProgress, session: SessionDep
) -> CallPublic:
    """en_route, on_site, resolved (the responder or a dispatcher); out of
    order → 409 `invalid_transition`. A `note` stays on the step's event."""
    return await calls.progress(session, call, body)


# A plain step skips the dependency solver (app/calls/plain_routes.py).
router.add_api_route(
    "/{call_id}/progress", report_progress, methods=["POST"], route_class_override=ProgressRoute
)


@router.post(
    "/{call_id}/rating",
    status_code=status.HTTP_201_CREATED,
)
async def rate_call(
    call: CurrentLockedCall, body: RatingCreate, session: SessionDep
) -> RatingPublic:
    """Rate a resolved call, once (the resident who called); again → 409 `already_rated`."""
    return await calls.rate(session, call, body)


@router.post("/{call_id}/dispute")
async def dispute_call(
    call: CurrentLockedCall, body: DisputeCreate, session: SessionDep, settings: SettingsDep
) -> CallPublic:
    """Dispute a resolved call (the resident who called, once, within
    DISPUTE_WINDOW_HOURS of its resolution): it goes back to the community's
    dispatchers, `escalated` with `disputed: true`, and the reason stays on
    its event. Later → 409 `dispute_window_closed`; again → 409
    `already_disputed`; not resolved → 409 `invalid_transition`; someone
    else who sees the call → 403 `not_the_caller`."""
    return await calls.dispute(session, settings, call, body)


@router.get("/{call_id}/events")
async def list_call_events(
    call: CurrentCall,
    session: SessionDep,
    after: Annotated[int | None, Query(ge=0, le=EVENT_ID_MAX, description="an event id")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description=PAGE_LIMIT)] = 100,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200,
            description="the `next_cursor` of the previous page (an event id)",
            # Checked by `_events_after`, which answers `invalid_cursor` as
            # every list does; stated here for clients.
            json_schema_extra={"pattern": EVENT_CURSOR_PATTERN},
        ),
    ] = None,
) -> EventList:
    """The call's events the caller may see, oldest first: the same objects
    the live stream carries. The next page: `cursor` (as every list), or
    `after` an event id; given both, they must name the same event (422
    `invalid_cursor`)."""
    after = _events_after(after, cursor)
    data, next_cursor = await calls.list_events(session, call, after, limit)
    return EventList(data=data, next_cursor=next_cursor)


def _events_after(after: int | None, cursor: str | None) -> int | None:
    """An events cursor is the id of the last event seen, as `after` takes it."""
    if cursor is None:
        return after
    if not (re.fullmatch(EVENT_CURSOR_PATTERN, cursor) and int(cursor) <= EVENT_ID_MAX):
        raise Unprocessable("The cursor is not valid.", code="invalid_cursor")
    if after is not None and after != int(cursor):
        raise Unprocessable("`cursor` and `after` name different events.", code="invalid_cursor")
    return int(cursor)
