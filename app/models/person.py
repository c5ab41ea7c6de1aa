"""People: residents, volunteers, dispatchers and admins are all persons."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, text
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, uuid_pk


class Person(SQLModel, table=True):
    __tablename__ = "person"
    __table_args__ = (
        CheckConstraint(r"phone ~ '^\+[1-9][0-9]{6,14}$'", name="phone_e164"),
        CheckConstraint("locale::text = ANY ('{zh-CN,en}'::text[])", name="locale"),
        # The disabled people: what the availability rule probes for each
        # member it reads (`app.duty.availability`), an index small enough
        # to stay in memory however many people there are.
        Index("ix_person_disabled", "id", postgresql_where=text("disabled_at IS NOT NULL")),
    )

    id: uuid.UUID = uuid_pk()
    # E.164, normalised before it is stored; never logged or shown unmasked.
    phone: str = Field(max_length=16, unique=True)
    display_name: str = Field(max_length=64)
    # The language of the person's alerts (push and in-app): zh-CN or en.
    locale: str = Field(
        default="zh-CN", max_length=16, sa_column_kwargs={"server_default": text("'zh-CN'")}
    )
    is_party_member: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    is_admin: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    disabled_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = created_at_field()
