"""The SMS worker: sends the texts of `sms_outbox` to walk-up callers at
public screens (docs/dispatch-platform.md), in every server process.

Like the push worker, one pass in short transactions: **claim** due rows
with `FOR UPDATE SKIP LOCKED` and lease them (`attempts + 1`,
`next_attempt_at = now() + LEASE`), commit; **send** each outside any
transaction; **record** `sent`, or `pending` again after a backoff, or
`failed` after SMS_MAX_ATTEMPTS. The phone is read from the call's
resident when claiming, never stored in the outbox, never logged unmasked.
A text fails on its own: the call it is about was committed long before.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.background import PollingLoop
from app.core.config import Settings
from app.core.db import session_scope
from app.identity.sms import SmsSender
from app.models.notification import SmsKind

log = logging.getLogger("hulian.sms")

BATCH = 50
LEASE = timedelta(minutes=2)
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 600.0

_CLAIM = text(
    """
    WITH due AS (
        SELECT s.id FROM sms_outbox s
        WHERE s.status = 'pending' AND s.next_attempt_at <= now()
        ORDER BY s.next_attempt_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE sms_outbox s
    SET attempts = s.attempts + 1, next_attempt_at = now() + CAST(:lease AS interval)
    FROM due, call c LEFT JOIN person p ON p.id = c.resident_id
    WHERE s.id = due.id AND c.id = s.call_id
    RETURNING s.id, s.kind, p.phone
    """
)
_RECORD = text(
    """
    UPDATE sms_outbox SET
        status = CASE WHEN :sent THEN 'sent'
                      WHEN attempts < :max_attempts AND :retry THEN 'pending'
                      ELSE 'failed' END,
        sent_at = CASE WHEN :sent THEN now() ELSE sent_at END,
        last_error = :error,
        next_attempt_at = CASE WHEN :sent THEN next_attempt_at
            ELSE now() + make_interval(secs => least(
                :backoff_max, :backoff_base * power(2, greatest(attempts - 1, 0))))
            END
    WHERE id = :id AND status = 'pending'
    """
)


@dataclass(frozen=True)
class Text:
    id: uuid.UUID
    kind: SmsKind
    phone: str | None


def message_of(settings: Settings, kind: SmsKind) -> str:
    return (
        settings.sms_call_accepted_text
        if kind is SmsKind.accepted
        else settings.sms_call_resolved_text
    )


async def claim(session: AsyncSession, batch: int = BATCH) -> list[Text]:
    rows = (await session.execute(_CLAIM, {"batch": batch, "lease": LEASE})).all()
    return [Text(row.id, SmsKind(row.kind), row.phone) for row in rows]


async def _record(
    session: AsyncSession, settings: Settings, item: Text, error: str | None, *, retry: bool
) -> None:
    await session.execute(
        _RECORD,
        {
            "id": item.id,
            "sent": error is None,
            "retry": retry,
            "error": error,
            "max_attempts": settings.sms_max_attempts,
            "backoff_base": BACKOFF_BASE_SECONDS,
            "backoff_max": BACKOFF_MAX_SECONDS,
        },
    )


async def _send_batch(
    settings: Settings, sender: SmsSender, batch: list[Text]
) -> list[tuple[Text, str | None, bool]]:
    """Send each claimed text: (the text, an error code or None, retry?)."""
    outcomes: list[tuple[Text, str | None, bool]] = []
    for item in batch:
        if item.phone is None:
            outcomes.append((item, "no_phone", False))  # the person is gone
            continue
        try:
            await sender.send_text(item.phone, message_of(settings, item.kind), item.kind.value)
        except Exception as exc:  # a sender that failed: try again later
            log.warning("sms not sent", extra={"error": type(exc).__name__})
            outcomes.append((item, "send_failed", True))
        else:
            outcomes.append((item, None, False))
    return outcomes


async def send_in_session(session: AsyncSession, settings: Settings, sender: SmsSender) -> int:
    """One pass inside one session (tests, on their rolled-back transaction)."""
    batch = await claim(session)
    for item, error, retry in await _send_batch(settings, sender, batch):
        await _record(session, settings, item, error, retry=retry)
    return len(batch)


async def send_once(
    factory: async_sessionmaker[AsyncSession], settings: Settings, sender: SmsSender
) -> int:
    """One pass: claim and commit, send outside any transaction, record and
    commit. The number of texts sent or tried."""
    async with session_scope(factory) as session:
        batch = await claim(session)
    outcomes = await _send_batch(settings, sender, batch)
    if outcomes:
        async with session_scope(factory) as session:
            for item, error, retry in outcomes:
                await _record(session, settings, item, error, retry=retry)
    return len(batch)


class SmsWorker(PollingLoop):
    """Runs `send_once` every SMS_INTERVAL_SECONDS, until stopped."""

    name = "hulian-sms-worker"

    def __init__(
        self, factory: async_sessionmaker[AsyncSession], settings: Settings, sender: SmsSender
    ) -> None:
        super().__init__(settings.sms_interval_seconds, BATCH)
        self._factory = factory
        self._settings = settings
        self._sender = sender

    async def run_pass(self) -> int:
        return await send_once(self._factory, self._settings, self._sender)
