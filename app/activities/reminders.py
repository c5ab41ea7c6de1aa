"""The monthly quota reminder: from day QUOTA_REMINDER_DAY of a month (in
the district's time zone) each full-time member still short of the quota
(`app.activities.quota`, the one rule) gets one in-app notification,
`quota_reminder`, in their locale and naming nothing but the rule.

Every server process runs `QuotaReminders` (RUN_QUOTA_REMINDERS). A pass
takes a transaction-scoped try-lock on the month (`Lock.quota_reminders`):
another process already at it is skipped over at once, as the sweeper's
`SKIP LOCKED` skips a claimed row, rather than waited for. Under the lock
the short members are inserted into `quota_reminder (month, person_id)`
`ON CONFLICT DO NOTHING`, and only those inserted are notified, in the
same transaction: a member is reminded once a month whatever the number of
processes, passes or restarts; a pass that fails leaves nothing behind and
the next one does it. Passes go on for the rest of the month, so a day the
service was down is caught up, and a member who becomes full-time or falls
short (a dispute) after the day is reminded then, once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.activities import quota
from app.core import locks
from app.core.background import PollingLoop
from app.core.config import Settings
from app.core.db import session_scope
from app.core.months import Month
from app.models.notification import NotificationKind
from app.notifications import alerts

log = logging.getLogger("hulian.quota_reminders")

# A reminder is worth delivering to a phone for a day.
REMINDER_TTL = timedelta(days=1)

_RECORD = text(
    """
    INSERT INTO quota_reminder (month, person_id)
    SELECT :month, unnest(CAST(:people AS uuid[]))
    ON CONFLICT DO NOTHING
    RETURNING person_id
    """
)


def due_month(settings: Settings, now: datetime) -> Month | None:
    """The month whose reminders are due at `now`, if any."""
    if now.astimezone(settings.zone).day < settings.quota_reminder_day:
        return None
    return Month.of(now, settings.zone)


async def remind(session: AsyncSession, settings: Settings, now: datetime) -> int | None:
    """One pass in the caller's transaction: the number of members reminded
    now; None when another process holds the month (skipped)."""
    month = due_month(settings, now)
    if month is None:
        return 0
    if not await locks.try_xact_lock(session, locks.Lock.quota_reminders, str(month)):
        return None
    short = await quota.shortfalls(session, settings, month, None)
    if not short:
        return 0
    people = [member.person_id for member in short]
    reminded = list(
        (await session.execute(_RECORD, {"month": str(month), "people": people})).scalars()
    )
    await alerts.notify_people(
        session,
        reminded,
        alerts.Alert(
            NotificationKind.quota_reminder,
            "quota_reminder",
            "",
            call_id=None,
            offer_id=None,
            expires_at=None,
            ttl=REMINDER_TTL,
            collapse=f"quota-{month}",
        ),
    )
    if reminded:
        # A count only: who was reminded is in `quota_reminder`, not in logs.
        log.info("quota reminders sent", extra={"month": str(month), "count": len(reminded)})
    return len(reminded)


async def remind_once(
    factory: async_sessionmaker[AsyncSession], settings: Settings, now: datetime | None = None
) -> int | None:
    """A pass in its own transaction (committed)."""
    async with session_scope(factory) as session:
        return await remind(session, settings, now or datetime.now(UTC))


class QuotaReminders(PollingLoop):
    name = "hulian-quota-reminders"

    def __init__(self, factory: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        # A pass does the whole month at once: never "more is due" at once.
        super().__init__(settings.quota_reminder_interval_seconds, batch=2**31)
        self._factory = factory
        self._settings = settings

    async def run_pass(self) -> int:
        return await remind_once(self._factory, self._settings) or 0
