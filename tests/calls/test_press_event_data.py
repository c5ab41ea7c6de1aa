"""A press's first move (`offered`, or `escalated` when no team is in
range) is published from what the press knows of the call it made
(`app.calls.state.Born`): the `call.updated` is written by the move's own
statement, nothing read back. It must still be the snapshot that reading
the call back gives, pointing at its own event, and the press's answer
must say the same."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import visibility
from app.core.config import Settings
from tests.notifications.test_notifications import alerted
from tests.scene import clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.772, 113.932
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}


async def assert_last_update_is_the_snapshot(
    session: AsyncSession, call_id: str | uuid.UUID, answered: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The call's newest `call.updated` against the call read back (and the
    press's answer, as far as the caller sees it); its data."""
    event = (
        await session.execute(
            text(
                """
                SELECT e.id, e.data, c.last_event_id FROM event e JOIN call c ON c.id = e.call_id
                WHERE e.call_id = :c AND e.type = 'call.updated' ORDER BY e.id DESC LIMIT 1
                """
            ),
            {"c": call_id},
        )
    ).one()
    snapshot = (await visibility.snapshot(session, uuid.UUID(str(call_id)))).model_dump(mode="json")
    assert event.data == snapshot
    assert event.data["last_event_id"] == event.id == event.last_event_id
    if answered is not None:
        for key in ("status", "team", "escalation_level", "updated_at", "last_event_id"):
            assert answered[key] == snapshot[key], key
    data: dict[str, Any] = event.data
    return data


async def test_an_offered_press_publishes_what_reading_it_back_gives(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), name="丙队")
    resident = await make_resident(session, settings)
    pressed = await anon_client.post(
        "/api/v1/calls",
        json={"location": POINT, "category": "affairs", "note": "门口"},
        headers=resident.headers,
    )
    assert pressed.status_code == 201, pressed.text
    call = pressed.json()
    data = await assert_last_update_is_the_snapshot(session, call["id"], call)
    assert data["status"] == "offered"
    assert data["team"] == {"id": str(team.id), "name": "丙队"}
    # The caller was told, as by any other move (the alert came with it).
    told = await alerted(
        session, call_id=uuid.UUID(call["id"]), person_id=resident.person_id, kind="call_status"
    )
    assert len(told) == 1


async def test_an_escalated_press_publishes_what_reading_it_back_gives(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    await make_team(session, settings, *offset(LAT, LNG, 40, 30), on_duty=0)
    resident = await make_resident(session, settings)
    pressed = await anon_client.post(
        "/api/v1/calls", json={"location": POINT}, headers=resident.headers
    )
    assert pressed.status_code == 201, pressed.text
    call = pressed.json()
    data = await assert_last_update_is_the_snapshot(session, call["id"], call)
    assert data["status"] == "escalated"
    assert data["escalation_level"] == "community"
    assert data["team"] is None
