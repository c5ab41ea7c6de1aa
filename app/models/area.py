"""Areas: street → communities → grid branches → grids, each a MultiPolygon."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from geoalchemy2 import Geometry
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import CheckConstraint, Column, Index, String
from sqlmodel import Field, SQLModel

from app.models.base import SRID, created_at_field, uuid_pk
from app.models.enums import AreaLevel, one_of
from app.models.geojson import MultiPolygon


class Area(SQLModel, table=True):
    __tablename__ = "area"
    __table_args__ = (
        CheckConstraint(one_of("level", AreaLevel), name="level"),
        # Only the street (the root) has no parent.
        CheckConstraint("(level = 'street') = (parent_id IS NULL)", name="root_is_street"),
        # And every parent is of the level above: the `area_parent_level`
        # constraint trigger (migration 7a4f2c9e1d86), which a CHECK cannot say.
        CheckConstraint("ST_IsValid(boundary)", name="boundary_valid"),
        Index("ix_area_boundary", "boundary", postgresql_using="gist"),
    )

    id: uuid.UUID = uuid_pk()
    level: AreaLevel = Field(sa_type=String(16), index=True)
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="area.id", index=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=100)
    boundary: Any = Field(
        sa_column=Column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False), nullable=False)
    )
    created_at: datetime = created_at_field()


D = PydanticField  # every property carries a description: generated clients show it


class AreaRef(BaseModel):
    id: uuid.UUID = D(description="the area's id")
    name: str = D(description="the area's name")


class AreaLocation(BaseModel):
    """The areas that contain a point, one per level."""

    street: AreaRef = D(description="the street (the root of the tree)")
    community: AreaRef = D(description="the community within the street")
    grid_branch: AreaRef = D(description="the grid branch within the community")
    grid: AreaRef = D(description="the grid within the grid branch")


class AreaProperties(BaseModel):
    id: uuid.UUID = D(description="the area's id")
    name: str = D(description="the area's name")
    code: str = D(description="the area's stable code")
    level: AreaLevel = D(description="street, community, grid branch or grid")
    parent_id: uuid.UUID | None = D(description="the area that contains it; null for the street")


class AreaFeature(BaseModel):
    # Sent always, defaults included: the spec says so (issue 12).
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    type: Literal["Feature"] = D(default="Feature", description="GeoJSON: always Feature")
    id: uuid.UUID = D(description="the area's id")
    # The boundary column holds MULTIPOLYGONs only, so that is all ST_AsGeoJSON writes.
    geometry: MultiPolygon = D(description="the area's boundary, lng-lat order")
    properties: AreaProperties = D(description="what the area is")


class AreaFeatureCollection(BaseModel):
    # Sent always, defaults included: the spec says so (issue 12).
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    type: Literal["FeatureCollection"] = D(
        default="FeatureCollection", description="GeoJSON: always FeatureCollection"
    )
    features: list[AreaFeature] = D(description="one feature per area")
