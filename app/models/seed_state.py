"""What the demo seeder last built, so that seeding again does not duplicate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field


class SeedState(SQLModel, table=True):
    __tablename__ = "seed_state"

    name: str = Field(primary_key=True, max_length=32)
    params: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    seeded_at: datetime = created_at_field()
