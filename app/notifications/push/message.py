"""What a push sender is given and what it answers, whatever the backend."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class PushMessage:
    """One push to one device. Nothing personal: texts are fixed phrases of
    the alert's kind and category, `data` holds ids, the kind and the
    category."""

    delivery_id: uuid.UUID
    token: str
    platform: str
    kind: str
    title: str
    body: str
    data: dict[str, str]
    collapse_key: str | None
    ttl_seconds: int
    # True: a visible alert, delivered at once (Android high priority, APNs
    # priority 10, time-sensitive). False: a silent data message that the app
    # handles (an offer withdrawn).
    urgent: bool = True


class Outcome(StrEnum):
    sent = "sent"
    retry = "retry"  # 429 and 5xx: try again later, no sooner than `retry_after`
    # UNREGISTERED or SENDER_ID_MISMATCH: the device's token is gone, forget it.
    token_gone = "token_gone"  # noqa: S105 - an outcome, not a secret
    failed = "failed"  # 400 and anything else that will not get better by waiting


@dataclass(frozen=True)
class PushResult:
    delivery_id: uuid.UUID
    outcome: Outcome
    # A short code (`unregistered`, `quota_exceeded`, `unavailable`…), never a payload.
    error: str | None = None
    retry_after: float | None = field(default=None)


class PushSender(Protocol):
    """Sends a batch (at most 500) of pushes; one result per message, in order.
    A sender never raises for one message's failure."""

    name: str

    async def send(self, batch: list[PushMessage]) -> list[PushResult]: ...

    async def close(self) -> None: ...
