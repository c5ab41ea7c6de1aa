"""What runs when an event is appended is the list `SUBSCRIBERS` of
app/events/subscribers.py, in the event's transaction, after its row is
written and the call points at it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.events import log as events
from app.events import subscribers
from app.models.call import EventType
from app.notifications import alerts
from app.offers import lifecycle
from tests.notifications.test_notifications import LAT, LNG, alerted, offer_of, press
from tests.scene import clear_duty_near, make_resident, make_team, offset


def test_the_alerts_rule_is_the_one_subscriber() -> None:
    assert list(subscribers.SUBSCRIBERS) == [alerts.on_event]


async def test_offer_alerts_come_from_the_registered_subscriber(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)
    with monkeypatch.context() as patched:
        patched.setattr(subscribers, "SUBSCRIBERS", ())
        call = await press(anon_client, await make_resident(session, settings))
        offer_id = uuid.UUID((await offer_of(anon_client, team.members[0], call["id"]))["id"])
    assert await alerted(session, offer_id=offer_id) == [], "nobody subscribed, nobody alerted"

    # The same offer announced again with the registered list: its alerts.
    view = await lifecycle.offer_view(session, offer_id)
    call_id = uuid.UUID(call["id"])
    await events.append(
        session,
        EventType.offer_created,
        call_id,
        view.model_dump(mode="json"),
        offer_id=offer_id,
        settings=settings,
    )
    sent = await alerted(session, offer_id=offer_id)
    assert {n.person_id for n in sent} == {m.person_id for m in team.members}
    assert {n.kind for n in sent} == {"offer"}


async def test_a_subscriber_runs_in_the_events_transaction_after_its_row(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=2)
    seen: list[dict[str, Any]] = []

    async def spy(
        db: AsyncSession,
        event_type: EventType,
        call_id: uuid.UUID,
        data: dict[str, Any],
        offer_id: uuid.UUID | None,
        /,
        *,
        settings: Settings | None = None,
        call: alerts.CallBefore | None = None,
    ) -> None:
        facts = (
            await db.execute(
                text(
                    """
                    SELECT (SELECT max(id) FROM event WHERE call_id = :c) AS newest,
                           (SELECT type FROM event
                            WHERE id = (SELECT max(id) FROM event WHERE call_id = :c)) AS row_type,
                           (SELECT last_event_id FROM call WHERE id = :c) AS last_event_id,
                           (SELECT count(*) FROM notification WHERE offer_id = :o) AS alerts,
                           txid_current() AS xid
                    """
                ),
                {"c": call_id, "o": offer_id},
            )
        ).one()
        called = {"type": event_type, "call_id": call_id, "offer_id": offer_id}
        seen.append({**called, **facts._asdict()})

    monkeypatch.setattr(subscribers, "SUBSCRIBERS", (*subscribers.SUBSCRIBERS, spy))
    xid = (await session.execute(text("SELECT txid_current()"))).scalar_one()
    call = await press(anon_client, await make_resident(session, settings))
    offer_id = uuid.UUID((await offer_of(anon_client, team.members[0], call["id"]))["id"])

    assert EventType.offer_created in [s["type"] for s in seen]
    for event in seen:
        assert event["call_id"] == uuid.UUID(call["id"])
        assert event["xid"] == xid, "in the transaction of the change"
        assert event["row_type"] == event["type"].value, "its own row is written"
        assert event["last_event_id"] == event["newest"], "and the call points at it"
    created = next(s for s in seen if s["type"] is EventType.offer_created)
    assert created["offer_id"] == offer_id
    assert created["alerts"] == 2, "the subscribers before it in the list have run"

    # A subscriber that fails takes the event (and the change) with it.
    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("subscriber failed")

    monkeypatch.setattr(subscribers, "SUBSCRIBERS", (broken,))
    call_id = uuid.UUID(call["id"])
    before = (
        await session.execute(
            text("SELECT count(*) AS n, max(id) AS last FROM event WHERE call_id = :c"),
            {"c": call_id},
        )
    ).one()
    with pytest.raises(RuntimeError, match="subscriber failed"):
        async with session.begin_nested():
            await events.append(session, EventType.call_updated, call_id, {"note": "x"})
    after = (
        await session.execute(
            text("SELECT count(*) AS n, max(id) AS last FROM event WHERE call_id = :c"),
            {"c": call_id},
        )
    ).one()
    assert after == before
    last_event = (
        await session.execute(text("SELECT last_event_id FROM call WHERE id = :c"), {"c": call_id})
    ).scalar_one()
    assert last_event == before.last
