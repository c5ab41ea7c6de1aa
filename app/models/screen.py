"""Public screens (党群亮服务可视屏): registered with a location and a key of
their own, with which their call button opens calls
(docs/dispatch-platform.md, "Calls from screens and other systems")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from geoalchemy2 import Geography
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel

from app.core.phones import PHONE_PATTERN
from app.models.base import SRID, created_at_field, uuid_pk
from app.models.call import CallCategory, CallStatus
from app.models.geo import Point
from app.models.phone import Phone
from app.models.text import Text


class Screen(SQLModel, table=True):
    """A screen in a public place. Its key is shown once and kept as a
    SHA-256 digest, as an API key is."""

    __tablename__ = "screen"

    id: uuid.UUID = uuid_pk()
    name: str = Field(max_length=100)
    area_id: uuid.UUID = Field(foreign_key="area.id", index=True)
    # Where the screen stands: its calls are located here.
    location: Any = Field(
        sa_column=Column(Geography("POINT", srid=SRID, spatial_index=False), nullable=False)
    )
    prefix: str = Field(max_length=16, description="the key's first characters, to tell keys apart")
    key_hash: str = Field(max_length=64, unique=True)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = created_at_field()
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


# ---- API schemas -------------------------------------------------------------------

D = PydanticField


class ScreenCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "光明社区党群服务中心大堂",
                    "area_id": "2f1c7a52-8a51-4f7e-9d0a-1b2c3d4e5f60",
                    "location": {"lat": 22.77, "lng": 113.93},
                }
            ]
        },
    )

    name: Text = D(min_length=1, max_length=100, description="where the screen is, in words")
    area_id: uuid.UUID = D(
        description="the community or street the screen belongs to (for a dispatcher, its own "
        "or one inside it)"
    )
    location: Point = D(description="where the screen stands; it must lie in the area")


class ScreenCreated(BaseModel):
    id: uuid.UUID = D(description="the screen's id: the {id} of POST /public/screens/{id}/calls")
    key: str = D(description="the screen's key, for the X-Screen-Key header; shown only this once")


class ScreenCallCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"phone": "13800000000", "category": "urgent", "note": "门口有老人摔倒"}]
        },
    )

    phone: Phone | None = D(
        default=None,
        # Stated beside the null too: a client reads the pattern of a phone here.
        json_schema_extra={"pattern": PHONE_PATTERN},
        description="the walk-up caller's phone, when they leave one: they get the acceptance "
        "and the resolution by SMS, and can log in with it later to see the call",
    )
    category: CallCategory = D(
        default=CallCategory.urgent, description="urgent help unless one of the five ones"
    )
    note: Text | None = D(
        default=None, max_length=500, description="what the caller says is wrong, if anything"
    )


class ScreenCallProgress(BaseModel):
    """What a screen may show of a call pressed at it: where it stands and
    which team is coming; nothing that names or locates anyone."""

    status: CallStatus = D(description="where the call stands")
    team: str | None = D(
        description="the name of the team whose member took the call, once one did (accepted, "
        "en route, on site or resolved); else null"
    )
