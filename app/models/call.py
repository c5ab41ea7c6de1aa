"""Calls (a resident's one-tap request), offers to teams, the event log,
ratings, service activities and idempotency keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from geoalchemy2 import Geography
from pydantic import BaseModel, ConfigDict, RootModel
from pydantic import Field as PydanticField
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Identity,
    Index,
    SmallInteger,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.core.config import Settings
from app.models.area import AreaRef
from app.models.base import SRID, created_at_field, uuid_pk
from app.models.enums import none_of, one_of, sql_values
from app.models.geo import Point
from app.models.text import Text


class CallStatus(StrEnum):
    searching = "searching"
    offered = "offered"
    accepted = "accepted"
    en_route = "en_route"
    on_site = "on_site"
    resolved = "resolved"
    cancelled = "cancelled"
    escalated = "escalated"


class CallCategory(StrEnum):
    urgent = "urgent"
    visit = "visit"
    affairs = "affairs"
    mediation = "mediation"
    hardship = "hardship"
    safety = "safety"


class EscalationLevel(StrEnum):
    grid = "grid"
    community = "community"
    street = "street"


class OfferStatus(StrEnum):
    open = "open"
    accepted = "accepted"
    declined = "declined"
    expired = "expired"
    withdrawn = "withdrawn"


class ProgressStatus(StrEnum):
    """The steps a responder reports, in order."""

    en_route = "en_route"
    on_site = "on_site"
    resolved = "resolved"


class EventType(StrEnum):
    call_updated = "call.updated"
    offer_created = "offer.created"
    offer_closed = "offer.closed"
    responder_location = "responder.location"


# A responder is busy while a call of theirs is in one of these states.
ACTIVE_RESPONSE = (CallStatus.accepted, CallStatus.en_route, CallStatus.on_site)
OPEN_CALL = (
    CallStatus.searching,
    CallStatus.offered,
    CallStatus.escalated,
    *ACTIVE_RESPONSE,
)


class Call(SQLModel, table=True):
    __tablename__ = "call"
    __table_args__ = (
        CheckConstraint(one_of("status", CallStatus), name="status"),
        CheckConstraint(one_of("category", CallCategory), name="category"),
        CheckConstraint(one_of("escalation_level", EscalationLevel), name="escalation_level"),
        CheckConstraint(
            f"responder_id IS NOT NULL OR {none_of('status', ACTIVE_RESPONSE)}",
            name="active_has_responder",
        ),
        Index("ix_call_resident_id_created_at", "resident_id", "created_at"),
        Index("ix_call_community_id_created_at", "community_id", "created_at"),
        # A member responds to one call at a time: the database settles two
        # accepts by one member at once.
        Index(
            "uq_call_responder_active",
            "responder_id",
            unique=True,
            postgresql_where=text(f"status IN {sql_values(ACTIVE_RESPONSE)}"),
        ),
        # The open calls of an area (the live map, GET /dispatch/map): a few
        # rows however long the history of closed calls grows.
        Index(
            "ix_call_open_grid_id",
            "grid_id",
            postgresql_where=text(f"status IN {sql_values(OPEN_CALL)}"),
        ),
        # The sweeper's work: escalated calls waiting to rise to the street.
        Index(
            "ix_call_escalated_at",
            "escalated_at",
            postgresql_where=text("status = 'escalated' AND escalation_level = 'community'"),
        ),
        # Only a closed call loses its responder's access or its details.
        CheckConstraint(
            "closed_at IS NOT NULL OR (responder_released_at IS NULL AND anonymised_at IS NULL)",
            name="forgotten_once_closed",
        ),
        # The retention jobs' work (app/calls/retention.py): closed calls whose
        # responder still has access, and those not yet anonymised.
        Index(
            "ix_call_closed_at_unreleased",
            "closed_at",
            postgresql_where=text("responder_released_at IS NULL"),
        ),
        Index(
            "ix_call_closed_at_not_anonymised",
            "closed_at",
            postgresql_where=text("anonymised_at IS NULL"),
        ),
        # A reason is only ever the reason of a dispute (anonymising keeps the
        # time and drops the reason).
        CheckConstraint(
            "dispute_reason IS NULL OR disputed_at IS NOT NULL", name="dispute_reason_disputed"
        ),
        # Someone is behind every call: a resident, a screen or an API key
        # (docs/dispatch-platform.md, "Calls from screens and other systems");
        # a call has at most one origin.
        CheckConstraint(
            "resident_id IS NOT NULL OR screen_id IS NOT NULL OR api_key_id IS NOT NULL",
            name="has_caller",
        ),
        CheckConstraint("screen_id IS NULL OR api_key_id IS NULL", name="one_origin"),
        # The double-tap guard of a screen and of a key: their recent calls.
        Index(
            "ix_call_screen_id_created_at",
            "screen_id",
            "created_at",
            postgresql_where=text("screen_id IS NOT NULL"),
        ),
        Index(
            "ix_call_api_key_id_created_at",
            "api_key_id",
            "created_at",
            postgresql_where=text("api_key_id IS NOT NULL"),
        ),
    )

    id: uuid.UUID = uuid_pk()
    # Null for a call from a screen without a phone, or from another system.
    resident_id: uuid.UUID | None = Field(default=None, foreign_key="person.id")
    # The origin of a call no logged-in resident pressed (at most one).
    screen_id: uuid.UUID | None = Field(default=None, foreign_key="screen.id")
    api_key_id: uuid.UUID | None = Field(default=None, foreign_key="api_key.id")
    status: str = Field(max_length=16)
    category: str = Field(max_length=16)
    note: str | None = Field(default=None, max_length=500)
    location: Any = Field(
        sa_column=Column(Geography("POINT", srid=SRID, spatial_index=False), nullable=False)
    )
    accuracy_m: float | None = Field(default=None, sa_type=Float)
    grid_id: uuid.UUID = Field(foreign_key="area.id")
    community_id: uuid.UUID = Field(foreign_key="area.id")
    street_id: uuid.UUID = Field(foreign_key="area.id")
    team_id: uuid.UUID | None = Field(default=None, foreign_key="team.id")
    responder_id: uuid.UUID | None = Field(default=None, foreign_key="person.id")
    escalation_level: str = Field(default="grid", max_length=16)
    rounds: int = Field(default=0, sa_type=SmallInteger)
    escalated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    closed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    cancel_reason: str | None = Field(default=None, max_length=200)
    # RESPONDER_ACCESS_HOURS after closing: the responder sees what a team does.
    responder_released_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # RETENTION_DAYS after closing: point rounded, notes gone (docs/privacy.md).
    anonymised_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # The caller disputed the resolution (POST /calls/{id}/dispute): once a call.
    disputed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    dispute_reason: str | None = Field(default=None, max_length=500)
    last_event_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class Offer(SQLModel, table=True):
    __tablename__ = "offer"
    __table_args__ = (
        CheckConstraint(one_of("status", OfferStatus), name="status"),
        # The sweeper's work: open offers by deadline.
        Index("ix_offer_open_expires_at", "expires_at", postgresql_where=text("status = 'open'")),
        Index("ix_offer_team_id_status", "team_id", "status"),
    )

    id: uuid.UUID = uuid_pk()
    call_id: uuid.UUID = Field(foreign_key="call.id", index=True, ondelete="CASCADE")
    team_id: uuid.UUID = Field(foreign_key="team.id")
    status: str = Field(default="open", max_length=16)
    round: int = Field(sa_type=SmallInteger)
    distance_m: float = Field(sa_type=Float)
    # Set when a dispatcher chose the team: if it lapses, the call goes back
    # to the dispatchers rather than on to the next team.
    assigned_by: uuid.UUID | None = Field(default=None, foreign_key="person.id")
    accepted_by: uuid.UUID | None = Field(default=None, foreign_key="person.id")
    # Set for a paired offer (`app.dispatch.policy.paired_round`): made to one
    # member of the team, who alone is alerted and may take it.
    person_id: uuid.UUID | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    closed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class OfferDecline(SQLModel, table=True):
    __tablename__ = "offer_decline"

    offer_id: uuid.UUID = Field(foreign_key="offer.id", primary_key=True, ondelete="CASCADE")
    person_id: uuid.UUID = Field(foreign_key="person.id", primary_key=True, ondelete="CASCADE")
    reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at_field()


# Event ids are bigint: a larger `after` (HTTP or WebSocket) is no event id,
# and as a query parameter it would overflow in the driver.
EVENT_ID_MAX = 2**63 - 1


class Event(SQLModel, table=True):
    """The append-only log of everything that happens to calls and offers.
    Ids increase; live streams and `resume` read from here."""

    __tablename__ = "event"
    __table_args__ = (
        CheckConstraint(one_of("type", EventType), name="type"),
        Index("ix_event_call_id_id", "call_id", "id"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    call_id: uuid.UUID = Field(foreign_key="call.id", ondelete="CASCADE")
    offer_id: uuid.UUID | None = Field(default=None)
    type: str = Field(max_length=32)
    at: datetime = created_at_field()
    data: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    # What was said of a step: a progress `note`, a cancel `reason`.
    note: str | None = Field(default=None, max_length=500)


class Rating(SQLModel, table=True):
    __tablename__ = "rating"
    __table_args__ = (CheckConstraint("stars BETWEEN 1 AND 5", name="stars"),)

    call_id: uuid.UUID = Field(foreign_key="call.id", primary_key=True, ondelete="CASCADE")
    resident_id: uuid.UUID = Field(foreign_key="person.id")
    responder_id: uuid.UUID | None = Field(default=None, foreign_key="person.id", index=True)
    stars: int = Field(sa_type=SmallInteger)
    comment: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()


class IdempotencyKey(SQLModel, table=True):
    """What POST /calls answered for a person's Idempotency-Key, kept 24 h."""

    __tablename__ = "idempotency_key"
    __table_args__ = (Index("ix_idempotency_key_expires_at", "expires_at"),)

    person_id: uuid.UUID = Field(foreign_key="person.id", primary_key=True, ondelete="CASCADE")
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    response_status: int = Field(sa_type=SmallInteger)
    response_body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))


# ---- API schemas -------------------------------------------------------------------

D = PydanticField  # every property carries a description: generated clients show it

CALL_ID = "the call's id"
NEXT_CURSOR = "pass as `cursor` for the next page; null on the last page"
# A deployment's value, stated as built; the service reads its own settings.
_RESPONDER_ACCESS_HOURS = Settings.model_fields["responder_access_hours"].default


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "location": {"lat": 22.77, "lng": 113.93, "accuracy_m": 15},
                    "category": "urgent",
                    "note": "3号楼2单元，老人摔倒",
                }
            ]
        }
    )

    location: Point = D(description="where the resident is, from the phone's GPS")
    category: CallCategory = D(
        default=CallCategory.urgent, description="urgent help unless one of the five ones"
    )
    note: Text | None = D(
        default=None, max_length=500, description="what the resident says is wrong, if anything"
    )


class CallCancel(_Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "已经解决了"}]})

    reason: Text | None = D(default=None, max_length=200, description="why, in a few words")


class CallProgress(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "on_site", "note": "已到达"}]}
    )

    status: ProgressStatus = D(description="the step reached: en_route, on_site, then resolved")
    note: Text | None = D(
        default=None, max_length=500, description="what the responder says of the step"
    )


class RatingCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"stars": 5, "comment": "来得很快，谢谢"}]}
    )

    stars: int = D(strict=True, ge=1, le=5, description="1 (poor) to 5 (excellent)")
    comment: Text | None = D(default=None, max_length=500, description="a few words, if any")


class DisputeCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "志愿者没有来，问题没有解决"}]}
    )

    reason: Text = D(
        min_length=1,
        max_length=500,
        description="why the resident says the call was not resolved (seen by the call's "
        "dispatchers and its responder; removed when the call is anonymised)",
    )


class OfferDeclineBody(_Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "不在附近"}]})

    reason: Text | None = D(
        default=None, max_length=200, description="why, in a few words (seen by dispatchers)"
    )


class AssignBody(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"team_id": "2f1c7a52-8a51-4f7e-9d0a-1b2c3d4e5f60"}]}
    )

    team_id: uuid.UUID = D(
        description="the team to offer the call to, within the dispatcher's area"
    )


class TeamRef(BaseModel):
    id: uuid.UUID = D(description="the team's id")
    name: str = D(description="the team's name")


class Responder(BaseModel):
    id: uuid.UUID = D(description="the responder's person id")
    display_name: str = D(description="the responder's name")
    phone_masked: str = D(description="the responder's phone with its middle hidden")
    location: Point | None = D(
        description="only for the resident who called, only while en route or on site"
    )


class CallPublic(BaseModel):
    id: uuid.UUID = D(description=CALL_ID)
    status: CallStatus = D(description="where the call stands")
    category: CallCategory = D(description="the kind of help asked for")
    note: str | None = D(description="the resident's note; null once the call is anonymised")
    location: Point = D(
        description="exact for the caller, the responder and dispatchers; rounded to about 100 m "
        "for a team that has only been offered the call, and for the responder once the call "
        f"has been closed for {_RESPONDER_ACCESS_HOURS} hours"
    )
    grid: AreaRef | None = D(description="the grid the call is in")
    team: TeamRef | None = D(description="the team that took the call, or was assigned it")
    responder: Responder | None = D(description="the member who took the call")
    escalation_level: EscalationLevel = D(
        description="the dispatchers it has reached: grid (none yet), community or street"
    )
    disputed: bool = D(
        description="the resident who called disputed its resolution (POST "
        "/calls/{id}/dispute): it went back to the community's dispatchers",
    )
    created_at: datetime = D(description="when the call was opened")
    updated_at: datetime = D(description="when the call last changed")
    last_event_id: int | None = D(
        description="the id of its latest event: `after` for its event list or a socket's `resume`"
    )


class OfferPublic(BaseModel):
    id: uuid.UUID = D(description="the offer's id")
    call_id: uuid.UUID = D(description=CALL_ID)
    team: TeamRef = D(description="the team offered the call")
    status: OfferStatus = D(
        description="open until accepted, declined by all, expired or withdrawn"
    )
    category: CallCategory = D(description="the kind of help asked for")
    distance_m: float = D(description="metres from the team's base to the call")
    expires_at: datetime = D(description="when the offer lapses and the call moves on")
    approx_location: Point = D(description="the call's position rounded to about 100 m")


class _EventBase(BaseModel):
    """What every event carries; `data` follows `type` (the subclasses)."""

    id: int = D(description="the event's id; ids increase")
    type: EventType = D(description="what happened")
    call_id: uuid.UUID = D(description=CALL_ID)
    at: datetime = D(description="when it happened")
    data: object = D(description="what changed, by event type")
    # Always sent, null or not.
    note: str | None = D(
        description="what was said of this step: the `note` of POST /calls/{id}/progress, "
        "the `reason` of POST /calls/{id}/cancel; not shown to a team that was only offered "
        "the call",
    )


class CallUpdatedEvent(_EventBase):
    """The call changed: `data` is the call as this person may see it."""

    type: Literal[EventType.call_updated] = D(description="what happened")
    data: CallPublic = D(description="the call as this person may see it")


class OfferCreatedEvent(_EventBase):
    """The call was offered to a team: `data` is the offer."""

    type: Literal[EventType.offer_created] = D(description="what happened")
    data: OfferPublic = D(description="the offer")


class OfferClosedEvent(_EventBase):
    """An offer was taken, declined, withdrawn or lapsed: `data` is the offer."""

    type: Literal[EventType.offer_closed] = D(description="what happened")
    data: OfferPublic = D(description="the offer, closed")


class ResponderLocationEvent(_EventBase):
    """Where the responder is (the caller's alone, while en route or on site)."""

    type: Literal[EventType.responder_location] = D(description="what happened")
    data: Point = D(description="where the responder is")


# One per EventType (tests/events/test_asyncapi.py checks none is missing).
EVENT_MODELS: tuple[type[_EventBase], ...] = (
    CallUpdatedEvent,
    OfferCreatedEvent,
    OfferClosedEvent,
    ResponderLocationEvent,
)


class EventPublic(
    RootModel[
        Annotated[
            CallUpdatedEvent | OfferCreatedEvent | OfferClosedEvent | ResponderLocationEvent,
            PydanticField(discriminator="type"),
        ]
    ]
):
    """An event of a call, the same on the live stream (/asyncapi.json): `{"id", "type",
    "call_id", "at", "data", "note"}`, the shape of `data` chosen by `type`."""


class CallList(BaseModel):
    data: list[CallPublic] = D(description="the page's calls, newest first")
    next_cursor: str | None = D(description=NEXT_CURSOR)


class OfferList(BaseModel):
    data: list[OfferPublic] = D(description="the page's offers, newest first")
    next_cursor: str | None = D(description=NEXT_CURSOR)


class EventList(BaseModel):
    data: list[EventPublic] = D(description="the page's events, oldest first")
    next_cursor: str | None = D(
        description="the last event's id, for `cursor` (or `after`); null on the last page"
    )


class RatingPublic(BaseModel):
    call_id: uuid.UUID = D(description=CALL_ID)
    stars: int = D(description="1 (poor) to 5 (excellent)")
    comment: str | None = D(description="the resident's words, if any")
    created_at: datetime = D(description="when it was rated")
