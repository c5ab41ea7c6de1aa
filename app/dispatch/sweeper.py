"""Due work, claimed from the database by every server process.

Offer deadlines are rows, not timers: each process runs `Sweeper`, which
claims calls whose open offer has lapsed with `FOR UPDATE SKIP LOCKED` (two
processes never take the same call; a call being accepted right now is
skipped and looked at again next time), closes the offer and moves the call
on, all in one transaction. A killed process loses nothing: its due work is
still due, and any other process (or itself, restarted) does it at once.
The sweeper also raises calls from the community's dispatchers to the
street's, forgets expired idempotency keys and rate-limit hits, and runs
the retention jobs of closed calls (app/calls/retention.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.calls import retention, state
from app.core.background import PollingLoop
from app.core.config import Settings
from app.core.db import session_scope
from app.dispatch import policy as dispatch
from app.models.call import EscalationLevel, OfferStatus
from app.offers import lifecycle

log = logging.getLogger("hulian.sweeper")
BATCH = 50

# Lapsed offers, with their calls locked and read as `LockedCall` reads
# them (two lapsed offers of one call share its row: the first one closed
# finds the second still open and leaves the call as it was, so the row
# still holds when the second is closed).
_DUE_OFFERS = text(
    f"""
    SELECT o.id AS offer_id, {state.LOCKED_COLUMNS}
    FROM offer o JOIN call c ON c.id = o.call_id
    WHERE o.status = 'open' AND o.expires_at <= now()
    ORDER BY o.expires_at
    LIMIT :batch
    FOR UPDATE OF c SKIP LOCKED
    """  # noqa: S608 - a constant fragment, values are bound
)
_DUE_ESCALATIONS = text(
    """
    SELECT id FROM call
    WHERE status = 'escalated' AND escalation_level = 'community'
      AND escalated_at <= now() - CAST(:after AS interval)
    ORDER BY escalated_at
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
    """
)


async def expire_offers(session: AsyncSession, settings: Settings) -> int:
    """Close lapsed offers and move their calls on; the number closed."""
    due = (await session.execute(_DUE_OFFERS, {"batch": BATCH})).all()
    done = 0
    for row in due:
        closed = await lifecycle.close_offer(session, row.offer_id, OfferStatus.expired)
        if closed is None:
            continue
        done += 1
        await dispatch.move_on(session, settings, state.LockedCall.from_row(row), closed)
    return done


async def escalate_to_street(session: AsyncSession, settings: Settings) -> int:
    due = (
        (
            await session.execute(
                _DUE_ESCALATIONS,
                {"after": timedelta(seconds=settings.community_escalation_seconds), "batch": BATCH},
            )
        )
        .scalars()
        .all()
    )
    for call_id in due:
        call = await state.lock_call(session, call_id)  # held already: FOR UPDATE above
        if call is not None:
            await dispatch.escalate(session, call, EscalationLevel.street, "no dispatcher action")
    return len(due)


async def forget_expired(session: AsyncSession) -> None:
    await session.execute(text("DELETE FROM idempotency_key WHERE expires_at <= now()"))
    await session.execute(text("DELETE FROM rate_limit_hit WHERE at <= now() - interval '1 hour'"))


# The retention jobs run every this many passes (about a minute), each for
# at most this many batches a run: a backlog (the first run on old data)
# drains over a few runs without holding up the offers' deadlines.
RETENTION_EVERY = 60
RETENTION_BATCHES = 10


async def retire_closed_calls(factory: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """Release responders and anonymise old calls, a batch per transaction;
    the number of calls changed."""
    done = 0
    for job in (retention.release_responders, retention.anonymise_closed):
        for _ in range(RETENTION_BATCHES):
            async with session_scope(factory) as session:
                changed = await job(session, settings)
            done += changed
            if changed < retention.BATCH:
                break
    return done


async def sweep_once(factory: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """One pass; each kind of work in its own transaction. Work done."""
    async with session_scope(factory) as session:
        expired = await expire_offers(session, settings)
    async with session_scope(factory) as session:
        raised = await escalate_to_street(session, settings)
    return expired + raised


class Sweeper(PollingLoop):
    name = "hulian-sweeper"

    def __init__(self, factory: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        super().__init__(settings.sweep_interval_seconds, BATCH)
        self._factory = factory
        self._settings = settings

    async def run_pass(self) -> int:
        if self.passes % 600 == 599:
            async with session_scope(self._factory) as session:
                await forget_expired(session)
        if self.passes % RETENTION_EVERY == RETENTION_EVERY - 1:
            await retire_closed_calls(self._factory, self._settings)
        return await sweep_once(self._factory, self._settings)
