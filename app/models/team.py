"""Teams ("Red Xiao Er" service teams), their members, and members' duty state."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from geoalchemy2 import Geography
from pydantic import BaseModel, ConfigDict, JsonValue
from pydantic import Field as PydanticField
from sqlalchemy import ARRAY, CheckConstraint, Column, DateTime, Float, Index, String, text
from sqlmodel import Field, SQLModel

from app.models.area import AreaRef
from app.models.base import SRID, created_at_field, uuid_pk
from app.models.enums import Affiliation, MemberKind, MemberRole, one_of, sql_array
from app.models.geo import Point
from app.models.phone import PHONE_DESCRIPTION, Phone
from app.models.text import Text


class Team(SQLModel, table=True):
    __tablename__ = "team"
    __table_args__ = (Index("ix_team_base", "base", postgresql_using="gist"),)

    id: uuid.UUID = uuid_pk()
    name: str = Field(max_length=100)
    grid_id: uuid.UUID = Field(foreign_key="area.id", index=True)
    # The team's base (its building): what /teams/nearby measures to.
    base: Any = Field(
        sa_column=Column(Geography("POINT", srid=SRID, spatial_index=False), nullable=False)
    )
    service_content: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()


class TeamMember(SQLModel, table=True):
    __tablename__ = "team_member"
    __table_args__ = (
        CheckConstraint(one_of("kind", MemberKind), name="kind"),
        CheckConstraint(f"roles <@ {sql_array(MemberRole)}", name="roles"),
        CheckConstraint(
            f"affiliation IS NULL OR {one_of('affiliation', Affiliation)}", name="affiliation"
        ),
        # Dispatch asks the teams of the members its KNN scan found: with the
        # team in the index that is an index-only lookup, never a heap page
        # per member (docs/benchmarks.md, "Nearest team at scale").
        Index("ix_team_member_person_id", "person_id", postgresql_include=["team_id"]),
    )

    team_id: uuid.UUID = Field(foreign_key="team.id", primary_key=True, ondelete="CASCADE")
    person_id: uuid.UUID = Field(foreign_key="person.id", primary_key=True, ondelete="CASCADE")
    kind: MemberKind = Field(sa_type=String(16))
    roles: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(String(32)), nullable=False, server_default=text("'{}'")),
    )
    affiliation: Affiliation | None = Field(default=None, sa_type=String(32))
    joined_at: datetime = created_at_field()


class Duty(SQLModel, table=True):
    """A member's duty state: only the latest position is kept, never a track."""

    __tablename__ = "duty"
    __table_args__ = (
        CheckConstraint(
            "NOT on_duty OR (location IS NOT NULL AND since IS NOT NULL)", name="on_duty_located"
        ),
        CheckConstraint("accuracy_m IS NULL OR accuracy_m >= 0", name="accuracy_non_negative"),
        # Dispatch's KNN runs on this partial index; queries must say `on_duty = true`.
        Index(
            "ix_duty_location_on_duty",
            "location",
            postgresql_using="gist",
            postgresql_where=text("on_duty"),
        ),
    )

    person_id: uuid.UUID = Field(foreign_key="person.id", primary_key=True, ondelete="CASCADE")
    on_duty: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    since: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    location: Any = Field(
        default=None,
        sa_column=Column(Geography("POINT", srid=SRID, spatial_index=False), nullable=True),
    )
    accuracy_m: float | None = Field(default=None, sa_type=Float)
    located_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


D = PydanticField  # every property carries a description: generated clients show it

TEAM_ID = "the team's id"
EXAMPLE_POINT: dict[str, JsonValue] = {"lat": 22.77, "lng": 113.93, "accuracy_m": 15}


class NearbyTeam(BaseModel):
    id: uuid.UUID = D(description=TEAM_ID)
    name: str = D(description="the team's name")
    grid: AreaRef = D(description="the grid the team belongs to")
    distance_m: float = Field(
        description="metres from the point to the team's base (never to a member)"
    )
    on_duty_count: int = Field(description="members of the team on duty now")
    service_content: str | None = D(description="what the team offers, in its own words")


class NearbyTeamList(BaseModel):
    data: list[NearbyTeam] = D(description="the teams, nearest first")
    # The paging shape of every list, so that clients read lists one way;
    # the nearest `limit` teams are the whole answer.
    next_cursor: str | None = D(description="always null: the nearest teams are one page")


# ---- duty and administration ---------------------------------------------------


class DutyUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"on_duty": True, "location": EXAMPLE_POINT}]},
    )

    on_duty: bool = D(
        strict=True, description="true to go on duty, false to go off (the position is dropped)"
    )
    location: Point | None = D(default=None, description="needed when going on duty")


class DutyState(BaseModel):
    on_duty: bool = D(description="whether the member is on duty")
    since: datetime | None = D(description="when the member went on duty; null while off duty")
    location: Point | None = D(description="the last position; none while off duty")


class TeamCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "红小二服务队", "base": EXAMPLE_POINT, "service_content": "助老、调解"}
            ]
        },
    )

    name: Text = D(min_length=1, max_length=100, description="the team's name")
    base: Point = D(description="the team's building; its grid is the one that contains it")
    service_content: Text | None = D(
        default=None, max_length=500, description="what the team offers, in its own words"
    )


class TeamPublic(BaseModel):
    id: uuid.UUID = D(description=TEAM_ID)
    name: str = D(description="the team's name")
    grid: AreaRef = D(description="the grid that contains its base")
    base: Point = D(description="the team's building")
    service_content: str | None = D(description="what the team offers, in its own words")
    created_at: datetime = D(description="when the team was created")


class PersonPublic(BaseModel):
    id: uuid.UUID = D(description="the person's id")
    display_name: str = D(description="the person's name")
    phone_masked: str = D(description="the phone with its middle hidden", examples=["138****0000"])


class MemberCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "phone": "+8613800000000",
                    "display_name": "张三",
                    "kind": "part_time",
                    "roles": ["liaison"],
                }
            ]
        },
    )

    phone: Phone = D(description=PHONE_DESCRIPTION, examples=["+8613800000000"])
    display_name: Text = D(
        min_length=1, max_length=64, description="the name shown until the person sets their own"
    )
    kind: MemberKind = D(description="full-time (the grid's party member) or part-time")
    roles: list[MemberRole] = D(
        default_factory=list, max_length=5, description="what the member does in the team"
    )


class MemberPublic(BaseModel):
    team_id: uuid.UUID = D(description=TEAM_ID)
    person: PersonPublic = D(description="the member")
    kind: MemberKind = D(description="full-time or part-time")
    roles: list[MemberRole] = D(description="what the member does in the team")


# ---- the team rule and the roster (API.md 1.1) -------------------------------------


class TeamStatus(StrEnum):
    """What the team rule (`app.teams.rules`) says of a team."""

    active = "active"  # enough members and full-time members: offered calls
    incomplete = "incomplete"  # too few: offered nothing until completed


class RosterMember(BaseModel):
    id: uuid.UUID = D(description="the member's person id")
    display_name: str = D(description="the member's name")
    kind: MemberKind = D(description="full-time (the grid's party member) or part-time")
    roles: list[MemberRole] = D(description="what the member does in the team")
    on_duty: bool = D(description="whether the member is on duty now")


class TeamProfile(BaseModel):
    """A team as anyone logged in may see it: no phone of anyone."""

    id: uuid.UUID = D(description=TEAM_ID)
    name: str = D(description="the team's name")
    grid: AreaRef = D(description="the grid that contains its base")
    base: Point = D(description="the team's building")
    service_content: str | None = D(description="what the team offers, in its own words")
    status: TeamStatus = D(
        description="`active` when it has enough members and full-time members under the "
        "team rule (3 and 1 by default; disabled people do not count), else `incomplete`; "
        "only active teams are offered calls"
    )
    members: list[RosterMember] = D(
        description="the members who count (not disabled), full-time first, then by name"
    )
    on_duty_count: int = D(description="members of the team on duty now")
    activities_this_month: int = D(
        description="the team's service activities this month (in the district's time zone)"
    )


class MemberUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"kind": "full_time", "roles": ["liaison", "mediator"]}, {"roles": []}]
        },
    )

    kind: MemberKind | None = D(
        default=None, description="full-time or part-time; left out: unchanged"
    )
    roles: list[MemberRole] | None = D(
        default=None,
        max_length=5,
        description="the member's roles, all of them (a role named twice counts once); "
        "left out: unchanged",
    )


class MemberChanged(MemberPublic):
    team_status: TeamStatus = D(description="the team's status after the change")


class TeamSummary(BaseModel):
    id: uuid.UUID = D(description=TEAM_ID)
    name: str = D(description="the team's name")
    grid: AreaRef = D(description="the grid that contains its base")
    status: TeamStatus = D(description="what the team rule says of it now")
    members: int = D(description="members who count (not disabled)")
    full_time_members: int = D(description="full-time members who count (not disabled)")
    on_duty_count: int = D(description="members on duty now")
    created_at: datetime = D(description="when the team was created")


class TeamList(BaseModel):
    data: list[TeamSummary] = D(description="the page's teams, newest first")
    next_cursor: str | None = D(
        description="pass as `cursor` for the next page; null on the last page"
    )
