"""The live stream's messages besides events (docs/live.md): what the client
sends, and what the socket answers. The AsyncAPI document
(app/events/asyncapi.py) is generated from these and the event models."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models.call import EVENT_ID_MAX
from app.models.live_map import DutyMember


class LiveErrorCode(StrEnum):
    unknown_message = "unknown_message"
    bad_resume = "bad_resume"


class _Message(BaseModel):
    # `type` is always sent, default or not: the schema says so.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class Ping(_Message):
    """Answered by a `pong`."""

    type: Literal["ping"]


class Resume(_Message):
    """Every event after `after` the person may see, oldest first, then the live
    stream; events this socket already sent are not sent again."""

    type: Literal["resume"]
    after: int = Field(ge=0, le=EVENT_ID_MAX, description="the last event id the client has")


class Pong(_Message):
    """The answer to a `ping`."""

    type: Literal["pong"] = "pong"


class Heartbeat(_Message):
    """Sent every WS_HEARTBEAT_SECONDS (25 s)."""

    type: Literal["heartbeat"] = "heartbeat"
    at: datetime


class LiveError(_Message):
    """A client message the socket did not understand; the socket stays open.
    `bad_resume`: a `resume` without a whole `after` from 0 to 2^63-1;
    `unknown_message`: anything else."""

    type: Literal["error"] = "error"
    code: LiveErrorCode


class DutyUpdated(_Message):
    """A member of the dispatcher's area went on or off duty or moved (dispatchers
    and admins only; no event id, not replayed by `resume`: re-read GET
    /dispatch/map after reconnecting). Moves come at most every
    DUTY_EVENT_THROTTLE_SECONDS per member, the latest position at the window's
    end; going on or off duty at once."""

    type: Literal["duty.updated"] = "duty.updated"
    at: datetime = Field(description="when it was sent")
    data: DutyMember = Field(description="the member's duty as the map shows it")


PONG = Pong().model_dump(mode="json")


def error(code: LiveErrorCode) -> dict[str, str]:
    return LiveError(code=code).model_dump(mode="json")
