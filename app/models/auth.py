"""Identity: one-time codes, sessions with rotating refresh tokens, API keys,
dispatchers' areas, devices, rate-limit hits and the append-only audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, uuid_pk
from app.models.enums import AreaLevel, MemberKind
from app.models.phone import PHONE_DESCRIPTION, PHONE_EXAMPLE, Phone
from app.models.text import Text


class Role(StrEnum):
    """What a person may do; everyone logged in is a resident."""

    resident = "resident"
    volunteer = "volunteer"
    dispatcher = "dispatcher"
    admin = "admin"


class DevicePlatform(StrEnum):
    android = "android"
    ios = "ios"
    web = "web"


class Locale(StrEnum):
    """The language a person's alerts are written in."""

    zh_cn = "zh-CN"
    en = "en"


def _tz(nullable: bool = True) -> Any:
    return Field(default=None, sa_type=DateTime(timezone=True), nullable=nullable)


class OtpCode(SQLModel, table=True):
    """A one-time login code. Only an HMAC of the code is kept."""

    __tablename__ = "otp_code"
    __table_args__ = (
        Index("ix_otp_code_phone_created_at", "phone", "created_at"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    )

    id: uuid.UUID = uuid_pk()
    phone: str = Field(max_length=16)
    code_hash: str = Field(max_length=64)
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    # Set when the code is used, replaced by a newer one, or tried too often.
    closed_at: datetime | None = _tz()


class AuthSession(SQLModel, table=True):
    """A login: the chain of refresh tokens that descends from one OTP check.
    Revoking it ends every token of the chain at once."""

    __tablename__ = "auth_session"

    id: uuid.UUID = uuid_pk()
    person_id: uuid.UUID = Field(foreign_key="person.id", ondelete="CASCADE", index=True)
    created_at: datetime = created_at_field()
    revoked_at: datetime | None = _tz()
    revoke_reason: str | None = Field(default=None, max_length=32)


class RefreshToken(SQLModel, table=True):
    """One link of a session's chain; `id` is the token's `jti`."""

    __tablename__ = "refresh_token"

    id: uuid.UUID = uuid_pk()
    session_id: uuid.UUID = Field(foreign_key="auth_session.id", ondelete="CASCADE", index=True)
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    used_at: datetime | None = _tz()


class ApiKey(SQLModel, table=True):
    """A third-party system's key: shown once, kept as a SHA-256 digest."""

    __tablename__ = "api_key"

    id: uuid.UUID = uuid_pk()
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16, description="the key's first characters, to tell keys apart")
    key_hash: str = Field(max_length=64, unique=True)
    scopes: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(String(32)), nullable=False, server_default=text("'{}'")),
    )
    created_at: datetime = created_at_field()
    revoked_at: datetime | None = _tz()


class Dispatcher(SQLModel, table=True):
    """A person who dispatches within one community or the street."""

    __tablename__ = "dispatcher"

    person_id: uuid.UUID = Field(foreign_key="person.id", primary_key=True, ondelete="CASCADE")
    area_id: uuid.UUID = Field(foreign_key="area.id", index=True)
    created_at: datetime = created_at_field()


class Device(SQLModel, table=True):
    """A phone's push token (FCM registration token)."""

    __tablename__ = "device"
    __table_args__ = (
        CheckConstraint("platform::text = ANY ('{android,ios,web}'::text[])", name="platform"),
    )

    token: str = Field(primary_key=True, max_length=4096)
    person_id: uuid.UUID = Field(foreign_key="person.id", ondelete="CASCADE", index=True)
    platform: str = Field(max_length=8)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class RateLimitHit(SQLModel, table=True):
    """One counted request of a rate-limited bucket (`otp:phone:…`, `otp:ip:…`).
    Kept in PostgreSQL so limits hold across processes and restarts."""

    __tablename__ = "rate_limit_hit"
    __table_args__ = (Index("ix_rate_limit_hit_bucket_at", "bucket", "at"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    bucket: str = Field(max_length=128)
    at: datetime = created_at_field()


class AuditLog(SQLModel, table=True):
    """Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE, whatever the
    role. `actor_person_id` has no foreign key on purpose: deleting a person
    must not rewrite the record of what that person did."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_actor_person_id_at", "actor_person_id", "at"),
        # GET /admin/audit?subject=…: one subject's entries, newest first.
        Index("ix_audit_log_target", "target_type", "target_id", "at", "id"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    at: datetime = created_at_field()
    action: str = Field(max_length=64, index=True)
    actor_person_id: uuid.UUID | None = None
    actor_api_key_id: uuid.UUID | None = None
    target_type: str | None = Field(default=None, max_length=32)
    target_id: str | None = Field(default=None, max_length=64)
    ip: str | None = Field(default=None, sa_column=Column(INET, nullable=True))
    request_id: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )


# ---- API schemas -----------------------------------------------------------

D = PydanticField  # every property carries a description: generated clients show it


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OtpRequest(_Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"phone": PHONE_EXAMPLE}]})

    phone: Phone = D(description=PHONE_DESCRIPTION, examples=[PHONE_EXAMPLE])


class OtpSent(BaseModel):
    expires_in: int = D(description="seconds the code stays valid")
    resend_after: int = D(description="seconds before another code may be asked for")
    debug_code: str | None = D(
        default=None,
        description="the code itself, only with the console SMS backend outside production",
    )


class TokenRequest(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"phone": PHONE_EXAMPLE, "code": "123456"}]}
    )

    phone: Phone = D(description=PHONE_DESCRIPTION, examples=[PHONE_EXAMPLE])
    code: str = D(
        min_length=1, max_length=16, description="the code the SMS gave", examples=["123456"]
    )


class RefreshRequest(_Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"refresh_token": "eyJhbGciOi..."}]})

    refresh_token: str = D(
        min_length=1, max_length=4096, description="the refresh token of the last token pair"
    )


class TeamMembership(BaseModel):
    id: uuid.UUID = D(description="the team's id")
    name: str = D(description="the team's name")
    kind: MemberKind = D(description="full-time or part-time on that team")


class DispatcherArea(BaseModel):
    id: uuid.UUID = D(description="the area's id")
    name: str = D(description="the area's name")
    level: AreaLevel = D(description="community or street")


class User(BaseModel):
    # Sent always, defaults included: the spec says so (issue 12).
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: uuid.UUID = D(description="the person's id")
    display_name: str = D(description="the person's name")
    phone_masked: str = D(description="the phone with its middle hidden", examples=["138****0000"])
    roles: list[Role] = D(description="what the person may do")
    teams: list[TeamMembership] = D(description="the teams the person is a member of")
    dispatcher_area: DispatcherArea | None = D(
        default=None, description="the community or street a dispatcher acts within"
    )


class TokenPair(BaseModel):
    # Sent always, defaults included: the spec says so (issue 12).
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    access_token: str = D(description="send as `Authorization: Bearer <access_token>`")
    refresh_token: str = D(description="for POST /auth/refresh, once")
    token_type: Literal["bearer"] = D(default="bearer", description="always bearer")
    expires_in: int = D(description="seconds the access token stays valid")
    user: User = D(description="who logged in")


class DeviceRegistration(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"platform": "android", "locale": "zh-CN"}]}
    )

    platform: DevicePlatform = D(description="the phone's system")
    locale: Locale | None = D(
        default=None, description="the phone's language: alerts to its person are written in it"
    )


class DispatcherCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "phone": PHONE_EXAMPLE,
                    "display_name": "李调度",
                    "area_id": "2f1c7a52-8a51-4f7e-9d0a-1b2c3d4e5f60",
                }
            ]
        }
    )

    phone: Phone = D(description=PHONE_DESCRIPTION, examples=[PHONE_EXAMPLE])
    display_name: Text = D(
        min_length=1, max_length=64, description="the name shown until the person sets their own"
    )
    area_id: uuid.UUID = D(description="a community or the street")


class DispatcherPublic(BaseModel):
    person_id: uuid.UUID = D(description="the dispatcher's person id")
    display_name: str = D(description="the dispatcher's name")
    phone_masked: str = D(description="the phone with its middle hidden")
    area: DispatcherArea = D(description="the community or street they dispatch within")


class PersonDisabled(BaseModel):
    id: uuid.UUID = D(description="the person's id")
    disabled_at: datetime = D(description="when the person was disabled")
