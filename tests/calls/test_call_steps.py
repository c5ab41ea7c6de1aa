"""What is said of a step is kept with it, and a person who plays several
parts in a call may do what any of them allows."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.principals import make_cast
from tests.scene import clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}


async def _events(
    http: httpx.AsyncClient, call_id: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    answer = await http.get(f"/api/v1/calls/{call_id}/events", headers=headers)
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def test_a_progress_note_stays_on_its_event_for_those_who_read_notes(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)
    resident = await make_resident(session, settings)
    call = (
        await anon_client.post("/api/v1/calls", json={"location": POINT}, headers=resident.headers)
    ).json()
    responder, teammate = team.members[0], team.members[1]
    offers = (await anon_client.get("/api/v1/offers", headers=responder.headers)).json()["data"]
    offer = next(o for o in offers if o["call_id"] == call["id"])
    accepted = await anon_client.post(
        f"/api/v1/offers/{offer['id']}/accept", headers=responder.headers
    )
    assert accepted.status_code == 200, accepted.text
    step = await anon_client.post(
        f"/api/v1/calls/{call['id']}/progress",
        json={"status": "en_route", "note": "五分钟到，请开门"},
        headers=responder.headers,
    )
    assert step.status_code == 200, step.text

    def en_route(events: list[dict[str, Any]]) -> dict[str, Any]:
        return next(
            e for e in events if e["type"] == "call.updated" and e["data"]["status"] == "en_route"
        )

    for reader in (resident, responder):
        seen = en_route(await _events(anon_client, call["id"], reader.headers))
        assert seen["note"] == "五分钟到，请开门"
    earlier = [e for e in await _events(anon_client, call["id"], resident.headers) if e["note"]]
    assert len(earlier) == 1, "only the step it was said of carries it"
    # A teammate was only offered the call, and that offer is closed: its
    # events only, no step, no note.
    seen_by_teammate = await _events(anon_client, call["id"], teammate.headers)
    assert {e["type"] for e in seen_by_teammate} == {"offer.created", "offer.closed"}
    assert all(e["note"] is None for e in seen_by_teammate)


async def test_an_admin_who_called_may_also_act_as_staff(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    """The admin plays caller (what they see) and staff (what they may do)."""
    cast = await make_cast(session, settings)
    admin = cast.headers["admin"]
    await clear_duty_near(session, LAT, LNG, 5000)
    pressed = await anon_client.post("/api/v1/calls", json={"location": POINT}, headers=admin)
    assert pressed.status_code == 201, pressed.text
    call = pressed.json()
    assert call["status"] == "escalated", "no team on duty nearby"

    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)
    assigned = await anon_client.post(
        f"/api/v1/dispatch/calls/{call['id']}/assign", json={"team_id": str(team.id)}, headers=admin
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "offered"
    assert assigned.json()["team"]["id"] == str(team.id)
