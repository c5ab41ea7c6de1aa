"""The push worker: sends pending deliveries, in every server process.

One pass, each step in its own short transaction:

1. **Claim** up to 500 due deliveries (FCM's limit per `send_each`) with
   `FOR UPDATE SKIP LOCKED`, so two processes never take the same row, and
   lease them: `attempts + 1` and `next_attempt_at = now() + LEASE`. The
   same transaction drops deliveries past their time to live (`failed`,
   `expired`). It commits at once: no lock is held while sending.
2. **Send** the batch outside any transaction.
3. **Record** each result: `sent`; UNREGISTERED or SENDER_ID_MISMATCH → the
   device row is deleted (its token is gone) and the delivery `failed`;
   429 and 5xx → `pending` again after an exponential backoff, and no sooner
   than Retry-After when FCM gives one; 400 and other lasting errors →
   `failed`; after PUSH_MAX_ATTEMPTS attempts → `failed`. A delivery
   withdrawn while in flight stays `withdrawn`.

Delivery is at least once. A process that dies between claiming and
recording loses nothing: the lease runs out and any process sends the
delivery again (FCM may then get it twice; the collapse key makes a
repeat replace rather than stack). In normal operation a delivery is sent
once: the lease (LEASE) is far longer than a send may take (the sender's
HTTP timeout).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.background import PollingLoop
from app.core.config import Settings
from app.core.db import session_scope
from app.models.notification import NotificationKind
from app.notifications.push.message import Outcome, PushMessage, PushResult, PushSender

log = logging.getLogger("hulian.push")

BATCH = 500
LEASE = timedelta(minutes=2)
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0

_EXPIRE = text(
    """
    UPDATE push_delivery SET status = 'failed', last_error = 'expired'
    WHERE id IN (SELECT id FROM push_delivery
                 WHERE status = 'pending' AND next_attempt_at <= now() AND expires_at <= now()
                 ORDER BY next_attempt_at
                 LIMIT :batch
                 FOR UPDATE SKIP LOCKED)
    """
)
_CLAIM = text(
    """
    WITH due AS (
        SELECT pd.id, n.id AS notification_id, n.kind, n.title, n.body, n.call_id, n.offer_id,
               n.team_id, c.category
        FROM push_delivery pd
        JOIN notification n ON n.id = pd.notification_id
        LEFT JOIN call c ON c.id = n.call_id
        WHERE pd.status = 'pending' AND pd.next_attempt_at <= now() AND pd.expires_at > now()
        ORDER BY pd.next_attempt_at
        LIMIT :batch
        FOR UPDATE OF pd SKIP LOCKED
    )
    UPDATE push_delivery p
    SET attempts = p.attempts + 1,
        next_attempt_at = now() + CAST(:lease AS interval),
        backend = :backend
    FROM due
    WHERE p.id = due.id
    RETURNING p.id, p.device_token, p.platform, p.collapse_key,
              greatest(0, floor(extract(epoch FROM p.expires_at - now())))::int AS ttl,
              due.notification_id, due.kind, due.title, due.body, due.call_id, due.offer_id,
              due.team_id, due.category
    """
)
# Only rows still pending: one withdrawn while in flight stays withdrawn. A
# retry waits BACKOFF_BASE_SECONDS·2^(attempts−1) (at most
# BACKOFF_MAX_SECONDS, plus up to 20 % jitter), and never less than the
# Retry-After FCM gave.
_RECORD = text(
    """
    UPDATE push_delivery p SET
        status = CASE WHEN u.outcome = 'sent' THEN 'sent'
                      WHEN u.outcome = 'retry' AND p.attempts < :max_attempts THEN 'pending'
                      ELSE 'failed' END,
        sent_at = CASE WHEN u.outcome = 'sent' THEN now() ELSE p.sent_at END,
        last_error = u.error,
        next_attempt_at = CASE
            WHEN u.outcome = 'retry' THEN now() + make_interval(secs => greatest(
                coalesce(u.retry_after, 0),
                least(:backoff_max, :backoff_base * power(2, greatest(p.attempts - 1, 0)))
                    * (1 + random() * 0.2)))
            ELSE p.next_attempt_at END
    FROM unnest(CAST(:ids AS uuid[]), CAST(:outcomes AS varchar[]),
                CAST(:errors AS varchar[]), CAST(:retry_after AS float8[]))
         AS u(id, outcome, error, retry_after)
    WHERE p.id = u.id AND p.status = 'pending'
    """
)
# In id order, as `alerts` withdraws an offer's deliveries: no deadlock.
_LOCK_RECORDED = text(
    "SELECT id FROM push_delivery WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR UPDATE"
)
_FORGET_DEVICES = text("DELETE FROM device WHERE token = ANY(CAST(:tokens AS varchar[]))")
# Other deliveries to a token FCM no longer knows will not fare better. Rows
# locked elsewhere are skipped (they are being withdrawn or sent; sent, they
# fail on their own), so this never waits while holding the batch's locks.
_FAIL_GONE = text(
    """
    UPDATE push_delivery SET status = 'failed', last_error = 'unregistered'
    WHERE id IN (SELECT id FROM push_delivery
                 WHERE status = 'pending' AND device_token = ANY(CAST(:tokens AS varchar[]))
                 FOR UPDATE SKIP LOCKED)
    """
)


def payload(row: Any) -> dict[str, str]:
    """The data of a push: the kind, ids and the category; strings only."""
    data = {"kind": row.kind, "notification_id": str(row.notification_id)}
    if row.call_id is not None:
        data["call_id"] = str(row.call_id)
    if row.offer_id is not None:
        data["offer_id"] = str(row.offer_id)
    if row.team_id is not None:
        data["team_id"] = str(row.team_id)
    if row.category is not None:
        data["category"] = row.category
    return data


async def expire_due(session: AsyncSession, batch: int = BATCH) -> int:
    """Drop due deliveries whose time to live has passed; the number dropped."""
    result = await session.execute(_EXPIRE, {"batch": batch})
    return int(getattr(result, "rowcount", 0) or 0)


async def claim(
    session: AsyncSession, backend: str, batch: int = BATCH, lease: timedelta = LEASE
) -> list[PushMessage]:
    """Lease up to `batch` due deliveries to this process and build their pushes."""
    rows = (
        await session.execute(_CLAIM, {"batch": batch, "lease": lease, "backend": backend})
    ).all()
    return [
        PushMessage(
            delivery_id=row.id,
            token=row.device_token,
            platform=row.platform,
            kind=row.kind,
            title=row.title,
            body=row.body,
            data=payload(row),
            collapse_key=row.collapse_key,
            ttl_seconds=row.ttl,
            urgent=row.kind != NotificationKind.offer_closed.value,
        )
        for row in rows
    ]


async def record(
    session: AsyncSession, settings: Settings, batch: list[PushMessage], results: list[PushResult]
) -> None:
    """Store what the sender answered for a claimed batch."""
    if not results:
        return
    tokens = {push.delivery_id: push.token for push in batch}
    await session.execute(_LOCK_RECORDED, {"ids": [r.delivery_id for r in results]})
    await session.execute(
        _RECORD,
        {
            "ids": [r.delivery_id for r in results],
            "outcomes": [
                Outcome.failed.value if r.outcome is Outcome.token_gone else r.outcome.value
                for r in results
            ],
            "errors": [r.error for r in results],
            "retry_after": [r.retry_after for r in results],
            "max_attempts": settings.push_max_attempts,
            "backoff_base": BACKOFF_BASE_SECONDS,
            "backoff_max": BACKOFF_MAX_SECONDS,
        },
    )
    gone = sorted({tokens[r.delivery_id] for r in results if r.outcome is Outcome.token_gone})
    if gone:
        await session.execute(_FORGET_DEVICES, {"tokens": gone})
        await session.execute(_FAIL_GONE, {"tokens": gone})
    sent = sum(r.outcome is Outcome.sent for r in results)
    if sent < len(results):
        log.info(
            "push results",
            extra={
                "sent": sent,
                "retry": sum(r.outcome is Outcome.retry for r in results),
                "failed": sum(r.outcome is Outcome.failed for r in results),
                "tokens_gone": len(gone),
            },
        )


async def push_in_session(session: AsyncSession, settings: Settings, sender: PushSender) -> int:
    """One pass inside one session (tests, on their rolled-back transaction)."""
    await expire_due(session)
    batch = await claim(session, sender.name)
    if batch:
        await record(session, settings, batch, await sender.send(batch))
    return len(batch)


async def push_once(
    factory: async_sessionmaker[AsyncSession], settings: Settings, sender: PushSender
) -> int:
    """One pass: claim and commit, send outside any transaction, record and
    commit. The number of deliveries sent or tried."""
    async with session_scope(factory) as session:
        await expire_due(session)
        batch = await claim(session, sender.name)
    if not batch:
        return 0
    try:
        results = await sender.send(batch)
    except Exception:
        # A sender must answer per message; if it raised, the lease runs out
        # and the batch is tried again.
        log.exception("push: sender failed")
        return len(batch)
    async with session_scope(factory) as session:
        await record(session, settings, batch, results)
    return len(batch)


class PushWorker(PollingLoop):
    """Runs `push_once` every PUSH_INTERVAL_SECONDS (at once again while
    there is more due), until stopped; stopping closes the sender."""

    name = "hulian-push-worker"

    def __init__(
        self, factory: async_sessionmaker[AsyncSession], settings: Settings, sender: PushSender
    ) -> None:
        super().__init__(settings.push_interval_seconds, BATCH)
        self._factory = factory
        self._settings = settings
        self._sender = sender

    @property
    def sender(self) -> PushSender:
        return self._sender

    async def run_pass(self) -> int:
        return await push_once(self._factory, self._settings, self._sender)

    async def stop(self) -> None:
        await super().stop()
        await self._sender.close()
