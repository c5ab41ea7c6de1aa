"""A progress step and a cancel move the call and read the snapshot it
leaves in one statement (`state.transition`); their
`call.updated` must still be what reading the call back gives, carry what
was said of the step, and the resolve must still record the responder's
activity and forget the track."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.calls.test_press_event_data import assert_last_update_is_the_snapshot
from tests.notifications.test_notifications import accept, offer_of, press, step
from tests.scene import clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.776, 113.936
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}


async def _note_of_last_update(session: AsyncSession, call_id: str) -> str | None:
    note: str | None = (
        await session.execute(
            text(
                "SELECT note FROM event WHERE call_id = :c AND type = 'call.updated' "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"c": call_id},
        )
    ).scalar_one()
    return note


async def test_each_step_publishes_what_reading_it_back_gives(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=2)
    responder = team.members[0]
    call = await press(anon_client, await make_resident(session, settings), POINT)
    offer = await offer_of(anon_client, responder, call["id"])
    await accept(anon_client, responder, offer["id"])
    for status in ("en_route", "on_site", "resolved"):
        moved = await step(anon_client, responder, call["id"], status, note=f"{status} 备注")
        data = await assert_last_update_is_the_snapshot(session, call["id"])
        assert data["status"] == status
        assert moved["status"] == status
        assert moved["last_event_id"] == data["last_event_id"]
        assert await _note_of_last_update(session, call["id"]) == f"{status} 备注"
    recorded = (
        await session.execute(
            text("SELECT person_id, team_id FROM activity WHERE call_id = :c"), {"c": call["id"]}
        )
    ).all()
    assert [(r.person_id, r.team_id) for r in recorded] == [(responder.person_id, team.id)]


async def test_a_cancel_publishes_what_reading_it_back_gives(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    await make_team(session, settings, *offset(LAT, LNG, 40, 30))
    resident = await make_resident(session, settings)
    call = await press(anon_client, resident, POINT)
    cancelled = await anon_client.post(
        f"/api/v1/calls/{call['id']}/cancel",
        json={"reason": "已经好了"},
        headers=resident.headers,
    )
    assert cancelled.status_code == 200, cancelled.text
    data = await assert_last_update_is_the_snapshot(session, call["id"])
    assert data["status"] == "cancelled"
    # The offer was withdrawn, and said so, before the call's move.
    closed = (
        await session.execute(
            text(
                "SELECT o.status, e.id FROM offer o JOIN event e ON e.offer_id = o.id "
                "WHERE o.call_id = :c AND e.type = 'offer.closed'"
            ),
            {"c": call["id"]},
        )
    ).one()
    assert closed.status == "withdrawn"
    assert closed.id < data["last_event_id"]
    assert await _note_of_last_update(session, call["id"]) == "已经好了"
