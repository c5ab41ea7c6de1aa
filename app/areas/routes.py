from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.areas import service as areas
from app.core.errors import OutsideServiceArea
from app.http.deps import AreasReader, SessionDep
from app.http.prefix import API_PREFIX
from app.models.area import AreaFeatureCollection, AreaLocation
from app.models.enums import AreaLevel

router = APIRouter(prefix=f"{API_PREFIX}/areas", tags=["areas"])

Latitude = Annotated[float, Query(ge=-90, le=90, description="latitude, WGS 84")]
Longitude = Annotated[float, Query(ge=-180, le=180, description="longitude, WGS 84")]

GEOJSON = "application/geo+json"


@router.get(
    "",
    response_model=AreaFeatureCollection,
    responses={
        # What is sent is GeoJSON: the same schema, so its readers and checkers see it.
        200: {
            "content": {GEOJSON: {"schema": {"$ref": "#/components/schemas/AreaFeatureCollection"}}}
        }
    },
)
async def list_areas(
    session: SessionDep,
    _: AreasReader,
    level: Annotated[AreaLevel | None, Query(description="only areas of this level")] = None,
    parent_id: Annotated[uuid.UUID | None, Query(description="only children of this area")] = None,
) -> Response:
    """The areas as a GeoJSON FeatureCollection (RFC 7946, lng-lat order), with
    properties `id, name, code, level, parent_id`."""
    document = await areas.feature_collection(session, level, parent_id)
    return Response(content=document, media_type=GEOJSON)


@router.get("/locate")
async def locate_area(
    session: SessionDep, _: AreasReader, lat: Latitude, lng: Longitude
) -> AreaLocation:
    """The street, community, grid branch and grid that contain the point;
    404 `outside_service_area` when none does."""
    try:
        return await areas.locate(session, lat, lng)
    except OutsideServiceArea as exc:
        raise OutsideServiceArea(exc.detail, status=404) from exc
