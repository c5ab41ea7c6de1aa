"""Service activities of team members: logged by the member, or written for
the responder when a call is resolved. The monthly rule (at least
`MONTHLY_ACTIVITY_QUOTA` a full-time member) and the monthly stars read
these (docs/organisation.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict
from pydantic import Field as PydanticField
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
from app.models.call import TeamRef
from app.models.enums import one_of
from app.models.text import Text


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
        CheckConstraint(one_of("kind", ActivityKind), name="kind"),
        CheckConstraint(one_of("source", ActivitySource), name="source"),
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


class QuotaReminder(SQLModel, table=True):
    """A full-time member reminded that they were short of the monthly quota:
    one row per month and person, written in the transaction of the
    reminder's notification, so nobody is reminded twice in a month however
    many processes run the job (app/activities/reminders.py)."""

    __tablename__ = "quota_reminder"
    __table_args__ = (CheckConstraint("month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'", name="month"),)

    month: str = Field(primary_key=True, max_length=7)  # YYYY-MM, district time
    person_id: uuid.UUID = Field(foreign_key="person.id", primary_key=True, ondelete="CASCADE")
    created_at: datetime = created_at_field()


# ---- API schemas -------------------------------------------------------------------

D = PydanticField  # every property carries a description: generated clients show it


class ActivityCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "team_id": "2f1c7a52-8a51-4f7e-9d0a-1b2c3d4e5f60",
                    "kind": "visit",
                    "at": "2026-11-18T15:30:00+08:00",
                    "duration_min": 45,
                    "note": "陪同老人到社康复诊",
                    "household_id": "6b0d8e61-3c2f-4a5e-9b7d-0e1f2a3b4c5d",
                },
                {
                    "team_id": "2f1c7a52-8a51-4f7e-9d0a-1b2c3d4e5f60",
                    "kind": "event",
                    "at": "2026-11-21T09:00:00+08:00",
                    "duration_min": 120,
                },
            ]
        },
    )

    team_id: uuid.UUID = D(description="the team the member served with (one of theirs)")
    kind: ActivityKind = D(description="one of the five ones, or `event`")
    at: AwareDatetime = D(
        description="when it took place, with a time zone: not in the future, and within "
        "the current month (the previous one too in the first few days of a month)"
    )
    duration_min: int = D(strict=True, ge=0, le=1440, description="how long it took, in minutes")
    note: Text | None = D(
        default=None, max_length=500, description="what the member did, in a few words"
    )
    household_id: uuid.UUID | None = D(
        default=None, description="a household paired with the member that was served, if any"
    )


class ActivityPublic(BaseModel):
    id: uuid.UUID = D(description="the activity's id")
    team_id: uuid.UUID = D(description="the team the member served with")
    person_id: uuid.UUID = D(description="the member who did it")
    kind: ActivityKind = D(description="one of the five ones, or `event`")
    at: datetime = D(description="when it took place (a call's: when it was resolved)")
    duration_min: int = D(description="how long it took, in minutes (0 when not said)")
    source: ActivitySource = D(
        description="`logged` by the member, or `call`: the member resolved a call"
    )
    call_id: uuid.UUID | None = D(description="the call it came from, for source `call`")
    household_id: uuid.UUID | None = D(description="the paired household it served, if any")
    note: str | None = D(
        description="what the member wrote; for an activity that names a household, only "
        "its author, the area's dispatchers and admins read it (else null)"
    )
    disputed: bool = D(
        description="the resident disputed the call it came from: it does not count toward "
        "the monthly quota"
    )
    created_at: datetime = D(description="when it was written down")


class ActivityList(BaseModel):
    data: list[ActivityPublic] = D(description="the page's activities, newest first by `at`")
    next_cursor: str | None = D(
        description="pass as `cursor` for the next page; null on the last page"
    )


class QuotaShortfall(BaseModel):
    person_id: uuid.UUID = D(description="the full-time member's person id")
    display_name: str = D(description="the member's name")
    team: TeamRef = D(
        description="the member's full-time team in the area (the first by name when several)"
    )
    activities: int = D(description="activities of the month that count toward the quota")
    short_by: int = D(description="how many more the quota asks for")


class QuotaReport(BaseModel):
    month: str = D(description="the month, YYYY-MM in the district's time zone")
    required: int = D(description="activities a full-time member takes part in each month")
    data: list[QuotaShortfall] = D(
        description="the full-time members of the area short of it, fewest activities first"
    )
    # The paging shape of every list, so that clients read lists one way.
    next_cursor: str | None = D(
        description="always null: an area's members short of the quota are one page"
    )


class MyMonth(BaseModel):
    """GET /me/activities: one's own month against the monthly rule."""

    month: str = D(description="the month, YYYY-MM in the district's time zone")
    required: int = D(description="activities a full-time member takes part in each month")
    full_time: bool = D(
        description="the caller is a full-time member of a team: the quota applies to them"
    )
    counted: int = D(
        description="the caller's activities of the month that count toward the quota "
        "(every team, logged or from a call, disputed ones excepted)"
    )
    short_by: int = D(description="how many more the quota asks for (0 when met or not full-time)")
    data: list[ActivityPublic] = D(
        description="a page of the caller's activities of the month, newest first by `at`"
    )
    next_cursor: str | None = D(
        description="pass as `cursor` for the next page; null on the last page"
    )
