"""What runs when an event is appended is the list `SUBSCRIBERS` of
app/events/subscribers.py, in the event's transaction, before its row is
written; what they return is written by the event's own statement, which
also points the call at the event."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core import sql
from app.core.config import Settings
from app.events import log as events
from app.events import subscribers
from app.models.call import EventType
from app.notifications import alerts
from app.offers import lifecycle
from tests import statements
from tests.notifications.test_notifications import LAT, LNG, alerted, offer_of, press
from tests.scene import clear_duty_near, make_resident, make_team, offset


def test_the_alerts_rule_is_the_one_subscriber() -> None:
    assert list(subscribers.SUBSCRIBERS) == [alerts.on_event]


async def test_offer_alerts_come_from_the_registered_subscriber_in_the_events_statement(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)
    with monkeypatch.context() as patched:
        patched.setattr(subscribers, "SUBSCRIBERS", ())
        call = await press(anon_client, await make_resident(session, settings))
        offer_id = uuid.UUID((await offer_of(anon_client, team.members[0], call["id"]))["id"])
    assert await alerted(session, offer_id=offer_id) == [], "nobody subscribed, nobody alerted"

    # The same offer announced again with the registered list: its alerts,
    # written by the statement that writes the event (one round trip).
    view = await lifecycle.offer_view(session, offer_id)
    call_id = uuid.UUID(call["id"])
    event_id = await events.next_event_id(session)
    async with statements.watching(connection) as sent:
        await events.append(
            session,
            EventType.offer_created,
            call_id,
            view.model_dump(mode="json"),
            offer_id=offer_id,
            settings=settings,
            event_id=event_id,
        )
        appended = await sent.taken()
    assert len(appended) == 1, appended
    assert "INSERT INTO event" in appended[0]
    assert "INSERT INTO notification" in appended[0]
    assert "INSERT INTO push_delivery" in appended[0]
    got = await alerted(session, offer_id=offer_id)
    assert {n.person_id for n in got} == {m.person_id for m in team.members}
    assert {n.kind for n in got} == {"offer"}
    pointed = (
        await session.execute(text("SELECT last_event_id FROM call WHERE id = :c"), {"c": call_id})
    ).scalar_one()
    assert pointed == event_id, "the same statement points the call at its event"


async def test_a_subscriber_runs_in_the_events_transaction_before_its_row(
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
        offer_to: uuid.UUID | None = None,
    ) -> list[sql.Write]:
        facts = (
            await db.execute(
                text(
                    """
                    SELECT (SELECT count(*) FROM event WHERE call_id = :c) AS events,
                           (SELECT count(*) FROM notification WHERE offer_id = :o) AS alerts,
                           txid_current() AS xid
                    """
                ),
                {"c": call_id, "o": offer_id},
            )
        ).one()
        called = {"type": event_type, "call_id": call_id, "offer_id": offer_id}
        seen.append({**called, **facts._asdict()})
        return []

    monkeypatch.setattr(subscribers, "SUBSCRIBERS", (*subscribers.SUBSCRIBERS, spy))
    xid = (await session.execute(text("SELECT txid_current()"))).scalar_one()
    call = await press(anon_client, await make_resident(session, settings))
    offer_id = uuid.UUID((await offer_of(anon_client, team.members[0], call["id"]))["id"])
    events_after = (
        await session.execute(
            text("SELECT type FROM event WHERE call_id = :c ORDER BY id"), {"c": call["id"]}
        )
    ).scalars()

    # Each subscriber saw the call's events before its own: one fewer each time.
    assert [s["type"].value for s in seen] == list(events_after)
    assert [s["events"] for s in seen] == list(range(len(seen)))
    for event in seen:
        assert event["call_id"] == uuid.UUID(call["id"])
        assert event["xid"] == xid, "in the transaction of the change"
    created = next(s for s in seen if s["type"] is EventType.offer_created)
    assert created["offer_id"] == offer_id
    assert created["alerts"] == 0, "the alerts are written with the event, after"
    assert len(await alerted(session, offer_id=offer_id)) == 2

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
