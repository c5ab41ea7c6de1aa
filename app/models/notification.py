"""Alerts sent to people: one `notification` per alert (what the person sees
in the app, whatever carried it), and one `push_delivery` per device the
alert is pushed to (the push worker's queue, kept as the record of what was
sent)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import CheckConstraint, DateTime, Index, SmallInteger, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, uuid_pk
from app.models.enums import one_of


class NotificationKind(StrEnum):
    offer = "offer"  # a new call near a volunteer: their team is offered it
    offer_closed = "offer_closed"  # that offer was taken, lapsed or withdrawn
    call_status = "call_status"  # the resident's call changed status
    escalation = "escalation"  # a call reached the dispatchers of an area
    team_incomplete = "team_incomplete"  # a team of the area fell below the team rule
    # a full-time member is short of the monthly activity quota (once a month)
    quota_reminder = "quota_reminder"


class DeliveryStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"
    withdrawn = "withdrawn"


class Notification(SQLModel, table=True):
    """Every alert sent to a person. Texts hold no personal data."""

    __tablename__ = "notification"
    __table_args__ = (
        CheckConstraint(one_of("kind", NotificationKind), name="kind"),
        Index("ix_notification_person_id_created_at", "person_id", "created_at"),
        # Closing an offer finds who was alerted of it.
        Index(
            "ix_notification_offer_id",
            "offer_id",
            postgresql_where=text("offer_id IS NOT NULL"),
        ),
        # Deleting a team finds the alerts about it (few: only `team_incomplete`).
        Index(
            "ix_notification_team_id",
            "team_id",
            postgresql_where=text("team_id IS NOT NULL"),
        ),
    )

    id: uuid.UUID = uuid_pk()
    person_id: uuid.UUID = Field(foreign_key="person.id", ondelete="CASCADE")
    kind: str = Field(max_length=16)
    title: str = Field(max_length=100)
    body: str = Field(max_length=200)
    call_id: uuid.UUID | None = Field(default=None, foreign_key="call.id", ondelete="CASCADE")
    # No foreign key, as in `event`: offers go with their call.
    offer_id: uuid.UUID | None = Field(default=None)
    # The team an alert is about (`team_incomplete`); gone with the team.
    team_id: uuid.UUID | None = Field(default=None, foreign_key="team.id", ondelete="CASCADE")
    created_at: datetime = created_at_field()


class PushDelivery(SQLModel, table=True):
    """One push of a notification to one device. The token is copied, not
    referenced: a device row is deleted when FCM says its token is gone, and
    the record of what was sent stays."""

    __tablename__ = "push_delivery"
    __table_args__ = (
        CheckConstraint(one_of("status", DeliveryStatus), name="status"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        # The push worker's queue.
        Index(
            "ix_push_delivery_pending_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: uuid.UUID = uuid_pk()
    notification_id: uuid.UUID = Field(
        foreign_key="notification.id", ondelete="CASCADE", index=True
    )
    device_token: str = Field(max_length=4096)
    platform: str = Field(max_length=8)
    # The sender that last tried it (`log` or `fcm`); null until tried.
    backend: str | None = Field(default=None, max_length=8)
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(
        default=0, sa_type=SmallInteger, sa_column_kwargs={"server_default": text("0")}
    )
    next_attempt_at: datetime = Field(sa_type=DateTime(timezone=True))
    # A short code (`unregistered`, `quota_exceeded`, `expired`…), never a payload.
    last_error: str | None = Field(default=None, max_length=64)
    collapse_key: str | None = Field(default=None, max_length=64)
    # The time to live: a delivery not sent by then is dropped.
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    created_at: datetime = created_at_field()
    sent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class SmsKind(StrEnum):
    """The texts a walk-up caller at a screen gets (docs/dispatch-platform.md)."""

    accepted = "accepted"  # a member took the call
    resolved = "resolved"  # the call was resolved


class SmsStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class SmsOutbox(SQLModel, table=True):
    """One text to the phone of a call's resident, written in the
    transaction of the event that calls for it and sent after commit by the
    SMS worker. The phone is not copied: it is the resident's, read when
    sending. Once per call and kind."""

    __tablename__ = "sms_outbox"
    __table_args__ = (
        CheckConstraint(one_of("kind", SmsKind), name="kind"),
        CheckConstraint(one_of("status", SmsStatus), name="status"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        UniqueConstraint("call_id", "kind"),
        # The SMS worker's queue.
        Index(
            "ix_sms_outbox_pending_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: uuid.UUID = uuid_pk()
    call_id: uuid.UUID = Field(foreign_key="call.id", ondelete="CASCADE")
    kind: str = Field(max_length=16)
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(
        default=0, sa_type=SmallInteger, sa_column_kwargs={"server_default": text("0")}
    )
    next_attempt_at: datetime = Field(sa_type=DateTime(timezone=True))
    # A short code (`gateway_refused`, `no_phone`…), never the text or the phone.
    last_error: str | None = Field(default=None, max_length=64)
    created_at: datetime = created_at_field()
    sent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


# ---- API schemas -------------------------------------------------------------------


class PushSummary(StrEnum):
    """How an alert's push fared, over all the person's devices."""

    none = "none"
    pending = "pending"
    sent = "sent"
    failed = "failed"
    withdrawn = "withdrawn"


class NotificationPush(BaseModel):
    backend: str | None = PydanticField(
        description="the push backend that carried it (`fcm`, or `log` which only records); "
        "null while nothing was tried"
    )
    status: PushSummary = PydanticField(
        description="`sent` when any device got it; else `pending`, `withdrawn` (superseded "
        "before it left), `failed`; `none` when the person had no device"
    )


class NotificationPublic(BaseModel):
    id: uuid.UUID = PydanticField(description="the alert's id")
    kind: NotificationKind = PydanticField(description="what the alert is about")
    title: str = PydanticField(description="the alert's title, in the person's language")
    body: str = PydanticField(description="the alert's text, in the person's language")
    call_id: uuid.UUID | None = PydanticField(description="the call it is about, if any")
    team_id: uuid.UUID | None = PydanticField(
        description="the team it is about, if any (`team_incomplete`)"
    )
    created_at: datetime = PydanticField(description="when it was sent")
    push: NotificationPush = PydanticField(description="how its push fared")


class NotificationList(BaseModel):
    data: list[NotificationPublic] = PydanticField(description="the page's alerts, newest first")
    next_cursor: str | None = PydanticField(
        description="pass as `cursor` for the next page; null on the last page"
    )
