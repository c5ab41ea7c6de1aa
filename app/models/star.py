"""The monthly Governance Star (治理之星) and Service Star (服务之星) of an
area: frozen rankings of closed months, and the API's shapes
(docs/organisation.md, "Monthly stars")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import CheckConstraint, Column, DateTime, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field
from app.models.call import TeamRef

D = PydanticField


class StarRanking(SQLModel, table=True):
    """A closed month's stars of an area, computed once: later edits (an
    activity logged into that month, a late dispute, new weights) do not
    change them."""

    __tablename__ = "star_ranking"
    __table_args__ = (CheckConstraint("month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'", name="month"),)

    area_id: uuid.UUID = Field(foreign_key="area.id", primary_key=True, ondelete="CASCADE")
    month: str = Field(sa_type=String(7), primary_key=True)
    computed_at: datetime = created_at_field()
    # The answer as it was computed (StarRankings, without `frozen`).
    body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    # When the month closed (its end plus STARS_FREEZE_AFTER_HOURS): kept to
    # say so, not read back to decide.
    closed_at: datetime = Field(sa_type=DateTime(timezone=True))


class StarPart(BaseModel):
    """One line of a score: `value` × `weight` = `points`."""

    value: int = D(description="what was counted: a number of calls or activities, or stars")
    weight: int = D(description="the points each unit is worth (a setting, STAR_WEIGHT_*)")
    points: int = D(description="value × weight")


class Star(BaseModel):
    person_id: uuid.UUID = D(description="the member's person id")
    display_name: str = D(description="the member's name")
    team: TeamRef = D(description="the member's team in the area")
    score: int = D(description="the sum of the breakdown's points")
    breakdown: dict[str, StarPart] = D(
        description="each part of the score by name (e.g. resolved_calls, ratings, disputes): "
        "what was counted, its weight and its points, so the score can be explained"
    )


class StarRankings(BaseModel):
    month: str = D(description="the month, YYYY-MM in the district's time zone")
    area_id: uuid.UUID = D(description="the area ranked")
    governance: list[Star] = D(
        description="the Governance Star (治理之星) ranking, best first: governance work"
    )
    service: list[Star] = D(
        description="the Service Star (服务之星) ranking, best first: serving residents"
    )
    frozen: bool = D(
        description="true for a closed month, computed once and kept; false for a month "
        "still counted live"
    )
    computed_at: datetime = D(description="when this ranking was computed")
