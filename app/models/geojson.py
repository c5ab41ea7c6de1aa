"""GeoJSON geometries as the API serves them (RFC 7946): positions in
longitude-latitude order, WGS 84 degrees."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# [longitude, latitude] (RFC 7946 §3.1.1): PostGIS writes no altitude for our 2D areas.
Position = Annotated[
    list[float], Field(min_length=2, max_length=2, description="[longitude, latitude]")
]
# A closed ring: its first and last positions are the same (RFC 7946 §3.1.6).
LinearRing = Annotated[list[Position], Field(min_length=4)]
# The exterior ring first, then any holes.
PolygonCoordinates = Annotated[list[LinearRing], Field(min_length=1)]


class _Geometry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Polygon(_Geometry):
    """A GeoJSON Polygon (RFC 7946 §3.1.6)."""

    type: Literal["Polygon"] = Field(description="GeoJSON: always Polygon")
    coordinates: PolygonCoordinates = Field(description="the exterior ring, then any holes")


class MultiPolygon(_Geometry):
    """A GeoJSON MultiPolygon (RFC 7946 §3.1.7)."""

    type: Literal["MultiPolygon"] = Field(description="GeoJSON: always MultiPolygon")
    coordinates: list[PolygonCoordinates] = Field(description="the polygons' rings")
