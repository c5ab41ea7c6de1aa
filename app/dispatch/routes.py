from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.calls import service as calls
from app.calls.deps import CurrentCall
from app.core.cursors import Cursor, PageLimit
from app.dispatch import assign as assignment
from app.dispatch import live_map
from app.http.deps import SessionDep, SettingsDep, StaffUser
from app.http.prefix import API_PREFIX
from app.models.call import AssignBody, CallList, CallPublic, CallStatus
from app.models.live_map import MapFeatureCollection

router = APIRouter(prefix=f"{API_PREFIX}/dispatch", tags=["dispatch"])


@router.get("/calls")
async def list_dispatch_calls(
    user: StaffUser,
    session: SessionDep,
    status: Annotated[CallStatus | None, Query(description="only calls in this state")] = None,
    limit: PageLimit = 50,
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


GEOJSON = "application/geo+json"


@router.get(
    "/map",
    response_model=MapFeatureCollection,
    responses={
        # What is sent is GeoJSON: the same schema, so its readers and checkers see it.
        200: {
            "content": {GEOJSON: {"schema": {"$ref": "#/components/schemas/MapFeatureCollection"}}}
        }
    },
)
async def get_dispatch_map(
    user: StaffUser,
    session: SessionDep,
    settings: SettingsDep,
    area_id: Annotated[
        uuid.UUID | None,
        Query(
            description="the area to draw: the dispatcher's own (the default) or one inside "
            "it; an admin any (default: the whole district)"
        ),
    ] = None,
) -> Response:
    """The live map of an area as a GeoJSON FeatureCollection (RFC 7946,
    lng-lat order): its open calls at their exact points, its teams at their
    bases (status under the team rule, on-duty and available counts) and its
    on-duty members at their latest positions, each feature with `kind`
    (`call`, `team`, `member`) in its properties. No resident's name or
    phone, no member's phone. Keep it current with the live stream (call
    events and `duty.updated`); re-read it after reconnecting
    (docs/dispatch-platform.md)."""
    area = await live_map.area_for(session, user, area_id)
    document = await live_map.feature_collection(session, settings, user, area)
    return Response(content=document, media_type=GEOJSON)
