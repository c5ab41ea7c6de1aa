"""What a call's people see once their part in it is over, and what a closed
call keeps (docs/privacy.md): the responder sees the exact point and the
notes until the sweeper releases them, a team whose offer closed learns only
that, and a call closed RETENTION_DAYS ago keeps no exact point, no note.

Time passes by moving `closed_at` back in the test's transaction and running
the sweeper's job once."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.areas import service as areas
from app.calls import retention, state
from app.calls import visibility as call_view
from app.core.config import Settings
from app.models.call import CallCategory, CallStatus
from tests.live import Ledger, committed_person, delete_committed
from tests.scene import (
    Member,
    SceneTeam,
    clear_duty_near,
    make_resident,
    make_team,
    offset,
    tx_now,
)

LAT, LNG = offset(22.77, 113.93, 123, 77)  # not on the ~100 m grid
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8.0}
ROUNDED = call_view.rounded(POINT)


async def _events(http: httpx.AsyncClient, call_id: str, who: Member) -> list[dict[str, Any]]:
    answer = await http.get(f"/api/v1/calls/{call_id}/events", headers=who.headers)
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def _call(http: httpx.AsyncClient, call_id: str, who: Member) -> dict[str, Any]:
    answer = await http.get(f"/api/v1/calls/{call_id}", headers=who.headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _scene(session: AsyncSession, settings: Settings) -> tuple[SceneTeam, Member]:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=2)
    return team, await make_resident(session, settings)


async def _press(
    http: httpx.AsyncClient, resident: Member, point: dict[str, Any], note: str
) -> str:
    pressed = await http.post(
        "/api/v1/calls", json={"location": point, "note": note}, headers=resident.headers
    )
    assert pressed.status_code == 201, pressed.text
    call_id: str = pressed.json()["id"]
    return call_id


async def _offer_of(http: httpx.AsyncClient, member: Member, call_id: str) -> str:
    offers = (await http.get("/api/v1/offers", headers=member.headers)).json()["data"]
    offer_id: str = next(o["id"] for o in offers if o["call_id"] == call_id)
    return offer_id


async def _served(
    http: httpx.AsyncClient,
    team: SceneTeam,
    resident: Member,
    point: dict[str, Any],
    *,
    decline: bool = False,
) -> str:
    """A call pressed with a note, (declined with a reason by the second
    member,) taken by the first, each step said with a note, resolved and
    rated with a comment."""
    call_id = await _press(http, resident, point, "门铃坏了，请敲门")
    responder = team.members[0]
    offer = await _offer_of(http, responder, call_id)
    if decline:
        declined = await http.post(
            f"/api/v1/offers/{offer}/decline",
            json={"reason": "我在医院陪护家人"},
            headers=team.members[1].headers,
        )
        assert declined.status_code == 200, declined.text
    accepted = await http.post(f"/api/v1/offers/{offer}/accept", headers=responder.headers)
    assert accepted.status_code == 200, accepted.text
    for step, note in (("en_route", "五分钟到"), ("on_site", None), ("resolved", "已陪老人就医")):
        moved = await http.post(
            f"/api/v1/calls/{call_id}/progress",
            json={"status": step, "note": note},
            headers=responder.headers,
        )
        assert moved.status_code == 200, moved.text
    rated = await http.post(
        f"/api/v1/calls/{call_id}/rating",
        json={"stars": 4, "comment": "儿子不在家，多亏了你们"},
        headers=resident.headers,
    )
    assert rated.status_code == 201, rated.text
    return call_id


async def _closed_ago(session: AsyncSession, call_id: str, ago: timedelta) -> None:
    await session.execute(
        text("UPDATE call SET closed_at = now() - CAST(:ago AS interval) WHERE id = :id"),
        {"ago": ago, "id": call_id},
    )


async def test_the_responder_sees_the_exact_point_and_the_notes_until_released(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    team, resident = await _scene(session, settings)
    call_id = await _served(anon_client, team, resident, POINT)
    responder = team.members[0]

    def said(events: list[dict[str, Any]]) -> list[str]:
        return [e["note"] for e in events if e["note"] is not None]

    async def looks() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return await _call(anon_client, call_id, responder), await _events(
            anon_client, call_id, responder
        )

    seen, events = await looks()
    assert seen["location"] == POINT
    assert seen["note"] == "门铃坏了，请敲门"
    assert said(events) == ["五分钟到", "已陪老人就医"]

    # Closed 23 hours ago: still the responder's to read.
    await _closed_ago(session, call_id, timedelta(hours=23))
    await retention.release_responders(session, settings)
    seen, events = await looks()
    assert seen["location"] == POINT
    assert said(events) == ["五分钟到", "已陪老人就医"]

    # 25 hours: what a team sees, and no note.
    await _closed_ago(session, call_id, timedelta(hours=25))
    assert await retention.release_responders(session, settings) >= 1
    seen, events = await looks()
    assert seen["location"] == ROUNDED
    assert seen["note"] is None
    assert seen["responder"]["id"] == str(responder.person_id), "still theirs: their record"
    assert seen["team"]["id"] == str(team.id)
    assert said(events) == []
    updates = [e for e in events if e["type"] == "call.updated"]
    assert [e["data"]["status"] for e in updates][-1] == "resolved"
    assert all(e["data"]["location"] == ROUNDED for e in updates)
    assert all(e["data"]["note"] is None for e in updates)
    listed = (await anon_client.get("/api/v1/calls", headers=responder.headers)).json()["data"]
    assert [c["location"] for c in listed if c["id"] == call_id] == [ROUNDED]
    # The caller and the dispatchers are not concerned.
    assert (await _call(anon_client, call_id, resident))["location"] == POINT
    assert said(await _events(anon_client, call_id, resident)) == ["五分钟到", "已陪老人就医"]


async def test_a_team_whose_offer_closed_learns_only_that(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    team, resident = await _scene(session, settings)
    responder, teammate = team.members
    call_id = await _press(anon_client, resident, POINT, "门铃坏了，请敲门")
    while_open = await _events(anon_client, call_id, teammate)
    assert "call.updated" in {e["type"] for e in while_open}
    assert (await _call(anon_client, call_id, teammate))["team"]["id"] == str(team.id)

    offer = await _offer_of(anon_client, responder, call_id)
    accepted = await anon_client.post(f"/api/v1/offers/{offer}/accept", headers=responder.headers)
    assert accepted.status_code == 200, accepted.text
    await anon_client.post(
        f"/api/v1/calls/{call_id}/progress", json={"status": "en_route"}, headers=responder.headers
    )

    events = await _events(anon_client, call_id, teammate)
    assert [(e["type"], e["data"]["id"]) for e in events] == [
        ("offer.created", offer),
        ("offer.closed", offer),
    ]
    assert events[1]["data"]["status"] == "accepted"
    seen = await _call(anon_client, call_id, teammate)
    assert seen["location"] == ROUNDED
    assert seen["note"] is None
    assert seen["responder"] is None
    assert seen["team"] is None
    assert seen["status"] == "en_route"


async def _state(session: AsyncSession, call_id: str) -> dict[str, Any]:
    """Everything kept of a call that could be personal, as plain data."""
    call = (
        await session.execute(
            text(
                """
                SELECT ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lng,
                       accuracy_m, note, cancel_reason, status,
                       responder_released_at IS NOT NULL AS released,
                       anonymised_at IS NOT NULL AS anonymised
                FROM call WHERE id = :id
                """
            ),
            {"id": call_id},
        )
    ).one()
    events = (
        await session.execute(
            text("SELECT id, type, data, note FROM event WHERE call_id = :id ORDER BY id"),
            {"id": call_id},
        )
    ).all()
    rating = (
        await session.execute(
            text("SELECT stars, comment FROM rating WHERE call_id = :id"), {"id": call_id}
        )
    ).first()
    declines = (
        await session.execute(
            text(
                "SELECT d.reason FROM offer_decline d JOIN offer o ON o.id = d.offer_id "
                "WHERE o.call_id = :id"
            ),
            {"id": call_id},
        )
    ).scalars()
    return {
        "call": dict(call._mapping),
        "events": [dict(e._mapping) for e in events],
        "rating": dict(rating._mapping) if rating is not None else None,
        "declines": list(declines),
    }


async def test_a_call_closed_longer_than_the_retention_keeps_no_exact_point_nor_notes(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    team, resident = await _scene(session, settings)
    old = await _served(anon_client, team, resident, POINT, decline=True)
    near = {**POINT, "lat": LAT + 0.004}
    recent = await _served(anon_client, team, resident, near, decline=True)
    cancelled = await _press(anon_client, resident, {**POINT, "lng": LNG + 0.004}, "我摔倒了")
    withdrawn = await anon_client.post(
        f"/api/v1/calls/{cancelled}/cancel", json={"reason": "女儿回来了"}, headers=resident.headers
    )
    assert withdrawn.status_code == 200, withdrawn.text
    # Left from before tracks were forgotten when a call ends: a position of
    # the responder, as an event and inside a snapshot.
    for call_id in (old, recent):
        await session.execute(
            text(
                "INSERT INTO event (call_id, type, data) VALUES "
                "(:c, 'responder.location', CAST(:p AS jsonb))"
            ),
            {"c": call_id, "p": json.dumps(POINT)},
        )
        await session.execute(
            text(
                """
                UPDATE event SET data = jsonb_set(data, '{responder,location}', CAST(:p AS jsonb))
                WHERE id = (SELECT max(id) FROM event
                            WHERE call_id = :c AND type = 'call.updated'
                              AND data -> 'responder' IS NOT NULL
                              AND data -> 'responder' != 'null'::jsonb)
                """
            ),
            {"c": call_id, "p": json.dumps(POINT)},
        )
    await _closed_ago(session, old, timedelta(days=181))
    await _closed_ago(session, cancelled, timedelta(days=200))
    await _closed_ago(session, recent, timedelta(days=179))
    before = await _state(session, recent)
    assert before["rating"]["comment"]
    assert before["declines"] == ["我在医院陪护家人"]
    assert any(e["type"] == "responder.location" for e in before["events"])

    assert await retention.anonymise_closed(session, settings) >= 2

    gone = await _state(session, old)
    call = gone["call"]
    assert (call["lat"], call["lng"], call["accuracy_m"]) == (
        ROUNDED["lat"],
        ROUNDED["lng"],
        ROUNDED["accuracy_m"],
    ), "rounded as visibility rounds"
    assert call["note"] is None
    assert call["status"] == "resolved"
    assert call["released"]
    assert call["anonymised"]
    assert gone["rating"] == {"stars": 4, "comment": None}, "the stars stay"
    assert gone["declines"] == [None]
    kinds = [e["type"] for e in gone["events"]]
    assert "responder.location" not in kinds
    assert "call.updated" in kinds
    assert "offer.closed" in kinds
    assert all(e["note"] is None for e in gone["events"])
    for event in gone["events"]:
        if event["type"] == "call.updated":
            assert event["data"]["location"] == ROUNDED
            assert event["data"]["note"] is None
            assert event["data"]["responder"] is None or (
                event["data"]["responder"]["location"] is None
            )
    # The snapshots still read as calls, and the caller sees what is left.
    mine = await _call(anon_client, old, resident)
    assert mine["location"] == ROUNDED
    assert mine["note"] is None
    history = await _events(anon_client, old, resident)
    assert [e["data"]["status"] for e in history][-1] == "resolved"
    assert not any(json.dumps(e, ensure_ascii=False).count("门铃") for e in history)

    cancelled_state = await _state(session, cancelled)
    assert cancelled_state["call"]["cancel_reason"] is None
    assert cancelled_state["call"]["note"] is None
    assert all(e["note"] is None for e in cancelled_state["events"])

    assert await _state(session, recent) == before, "179 days: untouched"

    await retention.release_responders(session, settings)  # the recent call's responder
    once = {call_id: await _state(session, call_id) for call_id in (old, cancelled, recent)}
    await retention.anonymise_closed(session, settings)
    await retention.release_responders(session, settings)
    again = {call_id: await _state(session, call_id) for call_id in (old, cancelled, recent)}
    assert again == once, "a second run changes nothing"


async def _committed_call(engine: AsyncEngine, resident: uuid.UUID) -> uuid.UUID:
    """A call cancelled 200 days ago, with a note, committed."""
    call_id = uuid.uuid4()
    async with AsyncSession(engine) as session:
        where = await areas.locate_ids(session, LAT, LNG)
        await state.insert(
            session,
            call_id,
            resident=resident,
            category=CallCategory.urgent,
            note="我摔倒了",
            lat=LAT,
            lng=LNG,
            accuracy=8.0,
            grid=where.grid,
            grid_name=where.grid_name,
            at=await tx_now(session),
            community=where.community,
            street=where.street,
        )
        call = await state.lock_call(session, call_id)
        assert call is not None
        await state.transition(session, call, CallStatus.cancelled)
        await _closed_ago(session, str(call_id), timedelta(days=200))
        await session.commit()
    return call_id


async def test_the_jobs_skip_a_call_another_transaction_holds(
    engine: AsyncEngine, settings: Settings
) -> None:
    ledger = Ledger()
    try:
        resident = await committed_person(engine, settings, ledger)
        held, free = [await _committed_call(engine, resident.person_id) for _ in range(2)]

        async def stamps(call_id: uuid.UUID) -> tuple[bool, bool, str | None]:
            async with engine.connect() as conn:
                row = (
                    await conn.execute(
                        text(
                            "SELECT responder_released_at IS NOT NULL, "
                            "anonymised_at IS NOT NULL, note FROM call WHERE id = :id"
                        ),
                        {"id": call_id},
                    )
                ).one()
            return row[0], row[1], row[2]

        async def run_jobs() -> None:
            async with AsyncSession(engine) as session:
                # Never waits for the held row: SKIP LOCKED.
                await asyncio.wait_for(retention.release_responders(session, settings), 5)
                await asyncio.wait_for(retention.anonymise_closed(session, settings), 5)
                await session.commit()

        async with engine.connect() as holder:
            transaction = await holder.begin()
            await holder.execute(
                text("SELECT id FROM call WHERE id = :id FOR UPDATE"), {"id": held}
            )
            await run_jobs()
            assert await stamps(free) == (True, True, None)
            assert await stamps(held) == (False, False, "我摔倒了"), "held: left for next time"
            await transaction.rollback()
        await run_jobs()
        assert await stamps(held) == (True, True, None)
    finally:
        async with engine.begin() as conn:
            await delete_committed(conn, ledger.persons, ledger.teams)


async def test_each_job_finds_its_calls_through_its_partial_index(session: AsyncSession) -> None:
    # The tables are small here: forbid the sequential scan to see that the
    # partial index can serve the query (its predicate is implied).
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    for statement, index in (
        (retention._RELEASE, "ix_call_closed_at_unreleased"),
        (retention._DUE_FOR_ANONYMISING, "ix_call_closed_at_not_anonymised"),
    ):
        plan = "\n".join(
            (
                await session.execute(
                    text("EXPLAIN " + statement.text), {"after": timedelta(days=180), "batch": 50}
                )
            ).scalars()
        )
        assert index in plan, plan
