"""Households looked after by party members (one-to-many pairing).

Vulnerability tags are sensitive personal data: read only through services
that check who asks (and, from the identity issue on, audit the read).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from geoalchemy2 import Geography
from sqlalchemy import ARRAY, CheckConstraint, Column, String, text
from sqlmodel import Field, SQLModel

from app.models.base import SRID, created_at_field, uuid_pk
from app.models.enums import Vulnerability, sql_array


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
