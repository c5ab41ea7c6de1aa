"""Service activities of team members: logged by the member, or written for
the responder when a call is resolved. The monthly rule (at least
`MONTHLY_ACTIVITY_QUOTA` a full-time member) and the monthly stars read
these (docs/organisation.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, uuid_pk
from app.models.enums import sql_in


class ActivityKind(StrEnum):
    """The "five ones" of the brief (a call's categories but `urgent`), and
    `event`: a community event the member served at."""

    visit = "visit"
    affairs = "affairs"
    mediation = "mediation"
    hardship = "hardship"
    safety = "safety"
    event = "event"


class ActivitySource(StrEnum):
    logged = "logged"  # the member wrote it down
    call = "call"  # the member resolved a call


class Activity(SQLModel, table=True):
    __tablename__ = "activity"
    __table_args__ = (
        CheckConstraint(f"kind IN {sql_in(ActivityKind)}", name="kind"),
        CheckConstraint(f"source IN {sql_in(ActivitySource)}", name="source"),
        # A call's activity names its call; a logged one never does.
        CheckConstraint("(source = 'call') = (call_id IS NOT NULL)", name="source_call"),
        CheckConstraint("duration_min BETWEEN 0 AND 1440", name="duration_min"),
        Index("ix_activity_person_id_at", "person_id", "at"),
        # A call is an activity of each member who resolved it: its responder,
        # and after a dispute whoever resolves it again.
        UniqueConstraint("call_id", "person_id"),
        Index("ix_activity_team_id_at", "team_id", "at"),
    )

    id: uuid.UUID = uuid_pk()
    person_id: uuid.UUID = Field(foreign_key="person.id", ondelete="CASCADE")
    team_id: uuid.UUID = Field(foreign_key="team.id")
    kind: ActivityKind = Field(sa_type=String(16))
    source: ActivitySource = Field(
        default=ActivitySource.logged,
        sa_type=String(8),
        sa_column_kwargs={"server_default": text("'logged'")},
    )
    # When it took place (for a call: when it was resolved).
    at: datetime = Field(sa_type=DateTime(timezone=True))
    duration_min: int = Field(
        default=0, sa_type=SmallInteger, sa_column_kwargs={"server_default": text("0")}
    )
    note: str | None = Field(default=None, max_length=500)
    call_id: uuid.UUID | None = Field(default=None, foreign_key="call.id")
    household_id: uuid.UUID | None = Field(
        default=None, foreign_key="household.id", ondelete="SET NULL", index=True
    )
    # The caller disputed the call this activity came from (POST /calls/{id}/dispute).
    disputed: bool = Field(
        default=False, sa_type=Boolean, sa_column_kwargs={"server_default": text("false")}
    )
    created_at: datetime = created_at_field()
