"""What runs when an event is appended: the whole list is `SUBSCRIBERS`.

`events.append` calls every subscriber in this order in the event's
transaction, then sends one statement that writes the event row, points
`call.last_event_id` at it and writes what the subscribers returned
(`sql.Write`s: one round trip for the event and its alerts); the NOTIFY
follows on commit. A subscriber may read and lock (before the event's row
exists, and for `offer.created` before the offer's, written by the same
statement: nothing it reads depends on them); its writes commit or roll back
with the event, so nothing it decides (a notification, a push) exists for
a change that did not happen; an error in one fails the change.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import sql
from app.core.config import Settings
from app.models.call import EventType
from app.notifications import alerts


class Subscriber(Protocol):
    async def __call__(
        self,
        session: AsyncSession,
        event_type: EventType,
        call_id: uuid.UUID,
        data: dict[str, Any],
        offer_id: uuid.UUID | None,
        /,
        *,
        settings: Settings | None = None,
        call: alerts.CallBefore | None = None,
        offer_to: uuid.UUID | None = None,
    ) -> list[sql.Write]: ...


SUBSCRIBERS: tuple[Subscriber, ...] = (
    # Who is alerted: in-app notifications and push deliveries.
    alerts.on_event,
)
