"""Households looked after by party members (one-to-many pairing).

Vulnerability tags (`tags` in the API, `vulnerabilities` in the table) are
sensitive personal data (PIPL: health, disability, income): read only
through `app.households`, which checks who asks
(`app.households.visibility`, the one rule) and writes an audit row for
every read in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from geoalchemy2 import Geography
from pydantic import BaseModel, ConfigDict, JsonValue
from pydantic import Field as PydanticField
from sqlalchemy import ARRAY, CheckConstraint, Column, String, text
from sqlmodel import Field, SQLModel

from app.models.area import AreaRef
from app.models.base import SRID, created_at_field, uuid_pk
from app.models.call import TeamRef
from app.models.enums import Vulnerability, sql_array
from app.models.geo import Point
from app.models.phone import PHONE_DESCRIPTION, Phone
from app.models.text import Text


class Household(SQLModel, table=True):
    __tablename__ = "household"
    __table_args__ = (
        CheckConstraint(f"vulnerabilities <@ {sql_array(Vulnerability)}", name="vulnerabilities"),
    )

    id: uuid.UUID = uuid_pk()
    address: str = Field(max_length=200)
    grid_id: uuid.UUID = Field(foreign_key="area.id", index=True)
    location: Any = Field(
        sa_column=Column(Geography("POINT", srid=SRID, spatial_index=False), nullable=False)
    )
    vulnerabilities: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(String(32)), nullable=False, server_default=text("'{}'")),
    )
    created_at: datetime = created_at_field()


class HouseholdPairing(SQLModel, table=True):
    """A party member looks after a household (3 to 5 households each)."""

    __tablename__ = "household_pairing"

    person_id: uuid.UUID = Field(foreign_key="person.id", primary_key=True, ondelete="CASCADE")
    household_id: uuid.UUID = Field(
        foreign_key="household.id", primary_key=True, ondelete="CASCADE", index=True
    )
    created_at: datetime = created_at_field()


class HouseholdResident(SQLModel, table=True):
    """A person who lives in a household. The person is the primary key: a
    resident belongs to at most one household (the one whose paired members
    their calls are offered to first)."""

    __tablename__ = "household_resident"

    person_id: uuid.UUID = Field(foreign_key="person.id", primary_key=True, ondelete="CASCADE")
    household_id: uuid.UUID = Field(foreign_key="household.id", ondelete="CASCADE", index=True)
    created_at: datetime = created_at_field()


# ---- API schemas -----------------------------------------------------------

D = PydanticField  # every property carries a description: generated clients show it

HOUSEHOLD_ID = "the household's id"
TAGS = (
    "the household's vulnerabilities (sensitive personal data): elderly, disabled, "
    "low_income, mental_health, and sick (an addition to API.md)"
)
EXAMPLE_HOUSEHOLD: dict[str, JsonValue] = {
    "address": "光明街道东周社区碧水花园3栋2单元1502室",
    "location": {"lat": 22.77, "lng": 113.93, "accuracy_m": 15},
    "tags": ["elderly", "disabled"],
    "residents": ["+8613800000000"],
}


class HouseholdCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_HOUSEHOLD]})

    address: Text = D(min_length=1, max_length=200, description="the household's address")
    location: Point = D(description="where the household lives; its grid is the one there")
    tags: list[Vulnerability] = D(min_length=1, max_length=5, description=TAGS)
    residents: list[Phone] = D(
        default_factory=list,
        max_length=20,
        description=(
            "phones of the people who live there (" + PHONE_DESCRIPTION + "); a phone nobody "
            "has yet gets a person; a person already resident of another household → 409 "
            "`already_resident`"
        ),
    )


class ResidentPublic(BaseModel):
    id: uuid.UUID = D(description="the resident's person id")
    display_name: str = D(description="the resident's name")
    phone_masked: str = D(description="the phone with its middle hidden", examples=["138****0000"])


class PairedMember(BaseModel):
    person_id: uuid.UUID = D(description="the party member's person id")
    display_name: str = D(description="the party member's name")


class HouseholdPublic(BaseModel):
    id: uuid.UUID = D(description=HOUSEHOLD_ID)
    address: str = D(description="the household's address")
    location: Point = D(description="where the household lives")
    grid: AreaRef = D(description="the grid the household lies in")
    tags: list[Vulnerability] = D(description=TAGS)
    residents: list[ResidentPublic] = D(description="who lives there, phones masked")
    paired_members: list[PairedMember] = D(description="the party members who look after it")
    created_at: datetime = D(description="when the household was recorded")


class HouseholdList(BaseModel):
    data: list[HouseholdPublic] = D(description="the households, oldest pairing first")
    next_cursor: str | None = D(description="always null: a member's households are one page")


class PairingCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"person_id": "0b7c2f6e-3d4a-4e8b-9a51-2c6d7e8f9a01"}]},
    )

    person_id: uuid.UUID = D(
        description="the party member to pair: on a team, and a party member (full-time, or "
        "recorded as one)"
    )


class PairingPublic(BaseModel):
    household_id: uuid.UUID = D(description=HOUSEHOLD_ID)
    person_id: uuid.UUID = D(description="the party member's person id")
    display_name: str = D(description="the party member's name")
    pairings_count: int = D(description="how many households the member looks after now")
    below_minimum: bool = D(
        description="true while the member looks after fewer than `minimum` households "
        "(reported, not refused)"
    )
    minimum: int = D(description="households each member should look after (the server's minimum)")
    maximum: int = D(description="households a member may look after at most (server maximum)")


class PairingShortfall(BaseModel):
    person_id: uuid.UUID = D(description="the party member's person id")
    display_name: str = D(description="the party member's name")
    team: TeamRef = D(description="a team of the member's (the first by name)")
    pairings_count: int = D(description="households the member looks after")
    short_by: int = D(description="households missing to reach `minimum`")


class PairingShortfallList(BaseModel):
    data: list[PairingShortfall] = D(description="the members short of `minimum`, fewest first")
    next_cursor: str | None = D(description="always null: the area's members are one page")


class AuditEntry(BaseModel):
    id: int = D(description="the entry's id; ids increase")
    at: datetime = D(description="when it happened")
    actor_id: uuid.UUID | None = D(description="the person who acted; null for a system job")
    action: str = D(description="what was done, e.g. `household.read`", examples=["household.read"])
    subject: str | None = D(
        description="what it was done to, `<type>:<id>`", examples=["household:<id>"]
    )
    detail: dict[str, Any] = D(description="more about it; never a phone or a household's tags")


class AuditList(BaseModel):
    data: list[AuditEntry] = D(description="the entries, newest first")
    next_cursor: str | None = D(description="the `cursor` of the next page, null on the last")
