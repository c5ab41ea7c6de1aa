"""Races on calls and offers, with real commits and real concurrency: the app
runs on its own connection pool (and the sweeper, where one takes part, on
the test's), so simultaneous requests are simultaneous transactions in
PostgreSQL. Every scene is committed, and deleted at the end."""

from __future__ import annotations

import asyncio
import functools
import random
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.areas import service as areas
from app.core.config import Settings
from app.core.db import make_sessionmaker, session_scope
from app.dispatch.sweeper import sweep_once
from app.notifications.push.message import Outcome, PushMessage, PushResult
from app.notifications.push.worker import claim, record
from tests.conftest import make_settings
from tests.live import (
    Ledger,
    committed_person,
    committed_team,
    eventually,
    live_app,
    park,
    spots,
)
from tests.problems import assert_problem
from tests.scene import Member, offset

RADIUS_M = 400


def race_settings(database_url: str, **overrides: Any) -> Settings:
    """A small search radius, so that committed scenes a kilometre or two
    apart never see one another; one resident may open many calls."""
    values: dict[str, Any] = {
        "search_radius_m": RADIUS_M,
        "double_tap_seconds": 0,
        "double_tap_meters": 0,
        "max_open_calls_per_resident": 1000,
        **overrides,
    }
    return make_settings(database_url, **values)


async def spot(engine: AsyncEngine, ledger: Ledger, nth: int) -> tuple[float, float]:
    """The nth spot of the district, its seeded volunteers off duty."""
    lat, lng = (await spots(engine, 6, 2 * RADIUS_M + 800))[nth]
    await park(engine, ledger, lat, lng, RADIUS_M + 400)
    return lat, lng


async def press(
    http: httpx.AsyncClient,
    resident: Member,
    lat: float,
    lng: float,
    key: str | None = None,
) -> httpx.Response:
    headers = {**resident.headers, **({"Idempotency-Key": key} if key else {})}
    return await http.post(
        "/api/v1/calls", json={"location": {"lat": lat, "lng": lng}}, headers=headers
    )


async def offered(http: httpx.AsyncClient, resident: Member, lat: float, lng: float) -> str:
    response = await press(http, resident, lat, lng)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "offered"
    call_id: str = response.json()["id"]
    return call_id


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def open_offer(engine: AsyncEngine, call_id: str) -> Any:
    (offer,) = await rows(
        engine,
        "SELECT id, team_id, round FROM offer WHERE call_id = :c AND status = 'open'",
        c=call_id,
    )
    return offer


async def closed_events(engine: AsyncEngine, offer_id: uuid.UUID) -> list[str]:
    """The final status carried by each `offer.closed` event of an offer."""
    return [
        r.status
        for r in await rows(
            engine,
            "SELECT data->>'status' AS status FROM event "
            "WHERE offer_id = :o AND type = 'offer.closed' ORDER BY id",
            o=offer_id,
        )
    ]


async def call_statuses(engine: AsyncEngine, call_id: str) -> list[str]:
    return [
        r.status
        for r in await rows(
            engine,
            "SELECT data->>'status' AS status FROM event "
            "WHERE call_id = :c AND type = 'call.updated' ORDER BY id",
            c=call_id,
        )
    ]


async def finish(engine: AsyncEngine, call_id: str) -> None:
    """Take a call off the board (its responder is free again)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE offer SET status = 'withdrawn', closed_at = now() "
                "WHERE call_id = :c AND status = 'open'"
            ),
            {"c": call_id},
        )
        await conn.execute(
            text("UPDATE call SET status = 'cancelled', closed_at = now() WHERE id = :c"),
            {"c": call_id},
        )


async def test_two_members_accepting_one_offer_at_once_one_wins(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    settings = race_settings(database_url)
    lat, lng = await spot(engine, ledger, 0)
    team = await committed_team(engine, settings, ledger, *offset(lat, lng, 30, 20), members=2)
    resident = await committed_person(engine, settings, ledger)
    wins: Counter[uuid.UUID] = Counter()
    async with live_app(settings) as (_, http):
        for i in range(50):
            call_id = await offered(http, resident, lat, lng)
            offer = await open_offer(engine, call_id)
            assert offer.team_id == team.id
            members = team.members if i % 2 == 0 else team.members[::-1]
            answers = await asyncio.gather(
                *(
                    http.post(f"/api/v1/offers/{offer.id}/accept", headers=m.headers)
                    for m in members
                )
            )
            assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
            won = 0 if answers[0].status_code == 200 else 1
            winner = members[won]
            assert_problem(answers[1 - won], 409, "offer_closed")
            assert answers[won].json()["responder"]["id"] == str(winner.person_id)
            wins[winner.person_id] += 1

            (call,) = await rows(
                engine, "SELECT status, responder_id FROM call WHERE id = :c", c=call_id
            )
            assert (call.status, call.responder_id) == ("accepted", winner.person_id)
            (row,) = await rows(
                engine, "SELECT status, accepted_by FROM offer WHERE id = :o", o=offer.id
            )
            assert (row.status, row.accepted_by) == ("accepted", winner.person_id)
            assert await closed_events(engine, offer.id) == ["accepted"]
            assert (await call_statuses(engine, call_id)).count("accepted") == 1
            await finish(engine, call_id)
    assert sum(wins.values()) == 50


async def test_one_member_accepting_two_offers_at_once_gets_one(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    """The member is the only one of the team on duty: whichever call they
    get, the other is refused (busy, or its offer already withdrawn because
    nobody else of the team could take it), and nothing fails."""
    settings = race_settings(database_url)
    lat, lng = await spot(engine, ledger, 1)
    team = await committed_team(
        engine, settings, ledger, *offset(lat, lng, 30, 20), members=2, on_duty=1
    )
    member = team.members[0]
    resident = await committed_person(engine, settings, ledger)
    async with live_app(settings) as (_, http):
        for _ in range(10):
            calls = [
                await offered(http, resident, lat, lng),
                await offered(http, resident, *offset(lat, lng, 60, 0)),
            ]
            offers = [await open_offer(engine, c) for c in calls]
            answers = await asyncio.gather(
                *(
                    http.post(f"/api/v1/offers/{o.id}/accept", headers=member.headers)
                    for o in offers
                )
            )
            assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
            loser = answers[0] if answers[0].status_code == 409 else answers[1]
            assert loser.json()["code"] in {"responder_busy", "offer_closed"}
            busy = await rows(
                engine,
                "SELECT id FROM call WHERE responder_id = :p AND status = 'accepted'",
                p=member.person_id,
            )
            assert len(busy) == 1
            for call_id in calls:
                await finish(engine, call_id)


async def test_an_accept_that_finds_the_member_busy_at_the_last_moment_changes_nothing(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    """The member passes the accept's checks, then another transaction that
    made them the responder of another call commits while the accept waits
    on the index that allows one call in progress per responder: the accept
    answers 409 `responder_busy` (the index's refusal, not a 500), and
    nothing of it stands: the offer stays open for the rest of the team."""
    settings = race_settings(database_url)
    lat, lng = await spot(engine, ledger, 2)
    team = await committed_team(engine, settings, ledger, *offset(lat, lng, 30, 20), members=2)
    member = team.members[0]
    resident = await committed_person(engine, settings, ledger)
    async with live_app(settings) as (_, http):
        elsewhere = await offered(http, resident, lat, lng)
        call_id = await offered(http, resident, *offset(lat, lng, 60, 0))
        offer = await open_offer(engine, call_id)
        async with engine.connect() as other:
            busy = await other.begin()
            await other.execute(
                text(
                    "UPDATE call SET status = 'accepted', responder_id = :p, team_id = :t "
                    "WHERE id = :c"
                ),
                {"p": member.person_id, "t": team.id, "c": elsewhere},
            )
            accepting = asyncio.create_task(
                http.post(f"/api/v1/offers/{offer.id}/accept", headers=member.headers)
            )

            async def waits_on_the_index() -> bool:
                waiting = await rows(
                    engine,
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'hulian' "
                    "AND wait_event_type = 'Lock' "
                    "AND query LIKE '%moved AS (UPDATE call SET status%'",
                )
                return bool(waiting)

            await eventually(waits_on_the_index, within_s=10)
            await busy.commit()
        answer = await accepting
        assert_problem(answer, 409, "responder_busy")
        (row,) = await rows(engine, "SELECT status FROM offer WHERE id = :o", o=offer.id)
        assert row.status == "open"
        (call,) = await rows(
            engine, "SELECT status, responder_id FROM call WHERE id = :c", c=call_id
        )
        assert (call.status, call.responder_id) == ("offered", None)
        assert await closed_events(engine, offer.id) == []
        for done in (elsewhere, call_id):
            await finish(engine, done)


async def phones(http: httpx.AsyncClient, members: list[Member], prefix: str, each: int) -> None:
    """`each` Android phones per member, their tokens `<prefix>-<person hex>-<k>`."""
    for member in members:
        for k in range(each):
            registered = await http.put(
                f"/api/v1/me/devices/{prefix}-{member.person_id.hex}-{k}",
                json={"platform": "android"},
                headers=member.headers,
            )
            assert registered.status_code == 204, registered.text


async def test_a_closing_offer_and_the_push_worker_never_deadlock(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    """The push worker records what it sent of an offer's pushes, locking
    the deliveries in id order, while the accept closes the offer and
    withdraws those still pending, locking them in id order too. The
    worker is caught halfway through its locks (it holds the lower half
    of the ids a moment before recording): the accept waits on the first
    it needs and holds none the worker wants, so neither fails (locked in
    the opposite order, the two deadlock), and each delivery ends sent or
    withdrawn, never both."""
    settings = race_settings(database_url)
    lat, lng = await spot(engine, ledger, 3)
    team = await committed_team(engine, settings, ledger, *offset(lat, lng, 30, 20), members=3)
    resident = await committed_person(engine, settings, ledger)
    factory = make_sessionmaker(engine)
    async with live_app(settings) as (_, http):
        await phones(http, team.members, "race", 4)
        for _ in range(10):
            call_id = await offered(http, resident, lat, lng)
            offer = await open_offer(engine, call_id)
            async with session_scope(factory) as session:
                batch = await claim(session, "race")
            ours = [push for push in batch if push.data.get("offer_id") == str(offer.id)]
            assert len(ours) == 12, "every member's devices were pushed the offer"

            async def recorded(batch: list[PushMessage]) -> None:
                async with session_scope(factory) as session:
                    ids = sorted(push.delivery_id for push in batch)
                    await session.execute(
                        text(
                            "SELECT id FROM push_delivery WHERE id = ANY(:ids) "
                            "ORDER BY id FOR UPDATE"
                        ),
                        {"ids": ids[: len(ids) // 2]},
                    )
                    await asyncio.sleep(0.2)
                    await record(
                        session,
                        settings,
                        batch,
                        [PushResult(push.delivery_id, Outcome.sent) for push in batch],
                    )

            answers = await asyncio.gather(
                recorded(batch),
                http.post(f"/api/v1/offers/{offer.id}/accept", headers=team.members[0].headers),
            )
            assert answers[1].status_code == 200, answers[1].text
            ends = await rows(
                engine,
                "SELECT pd.status, pd.sent_at FROM push_delivery pd "
                "JOIN notification n ON n.id = pd.notification_id "
                "WHERE n.offer_id = :o AND n.kind = 'offer'",
                o=offer.id,
            )
            assert len(ends) == 12
            assert {end.status for end in ends} <= {"sent", "withdrawn"}, ends
            assert all((end.status == "sent") == (end.sent_at is not None) for end in ends)
            await finish(engine, call_id)


async def test_an_offer_claimed_while_it_closes_is_told_closed_on_every_phone(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    """The push worker claims an offer's pushes (leases them: `attempts`
    goes up) while the accept closes the offer: the closing statement waits
    for the claim's locks, then withdraws what is still pending. The claim
    committed first, so the offer may be on its way to every phone: the
    close message must go to each of them. Which phones the offer may have
    reached is read by a statement that starts after the withdrawal's wait
    (a statement sees the database as it was when it began): read in the
    same statement as the withdrawal, it would find nothing claimed and
    send no close message at all."""
    settings = race_settings(database_url)
    lat, lng = await spot(engine, ledger, 4)
    team = await committed_team(engine, settings, ledger, *offset(lat, lng, 30, 20), members=3)
    resident = await committed_person(engine, settings, ledger)
    factory = make_sessionmaker(engine)
    async with live_app(settings) as (_, http):
        await phones(http, team.members, "claimed", 2)
        call_id = await offered(http, resident, lat, lng)
        offer = await open_offer(engine, call_id)
        taker, *others = team.members
        claimed = asyncio.Event()
        accepted: asyncio.Future[httpx.Response] | None = None

        async def claim_and_hold() -> None:
            nonlocal accepted
            async with session_scope(factory) as session:
                batch = await claim(session, "race")
                assert len([p for p in batch if p.data.get("offer_id") == str(offer.id)]) == 6
                claimed.set()
                # The accept's closing statement waits for the claim's locks.
                await eventually(lambda: _has_waiting(engine, 1), within_s=10)
                assert accepted is not None
                assert not accepted.done()

        async def accept() -> httpx.Response:
            await claimed.wait()
            return await http.post(f"/api/v1/offers/{offer.id}/accept", headers=taker.headers)

        accepted = asyncio.ensure_future(accept())
        await claim_and_hold()
        answer = await accepted
        assert answer.status_code == 200, answer.text
        offered_pushes = await rows(
            engine,
            "SELECT pd.status FROM push_delivery pd JOIN notification n "
            "ON n.id = pd.notification_id WHERE n.offer_id = :o AND n.kind = 'offer'",
            o=offer.id,
        )
        assert sorted(p.status for p in offered_pushes) == ["withdrawn"] * 6
        told = await rows(
            engine,
            "SELECT n.person_id, pd.device_token FROM notification n "
            "JOIN push_delivery pd ON pd.notification_id = n.id "
            "WHERE n.offer_id = :o AND n.kind = 'offer_closed'",
            o=offer.id,
        )
        assert {(t.person_id, t.device_token) for t in told} == {
            (m.person_id, f"claimed-{m.person_id.hex}-{k}") for m in others for k in range(2)
        }
        await finish(engine, call_id)


async def test_accept_racing_the_deadline_wins_or_loses_never_both(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    """An offer whose deadline is now: a member accepts while a sweeper
    pass (another connection pool, as another process) runs. Either the
    call is accepted and the offer never expired, or the offer expired, the
    accept was refused and the call went on to the next team."""
    settings = race_settings(database_url)
    lat, lng = await spot(engine, ledger, 2)
    first = await committed_team(engine, settings, ledger, *offset(lat, lng, 30, 0), members=2)
    second = await committed_team(engine, settings, ledger, *offset(lat, lng, 150, 0), members=2)
    resident = await committed_person(engine, settings, ledger)
    sweeper = make_sessionmaker(engine)
    rng = random.Random(7)
    outcomes: Counter[str] = Counter()
    async with live_app(settings) as (_, http):
        for i in range(30):
            call_id = await offered(http, resident, lat, lng)
            offer = await open_offer(engine, call_id)
            assert offer.team_id == first.id
            lead_s = rng.uniform(-0.01, 0.03)
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE offer SET expires_at = clock_timestamp() "
                        "+ make_interval(secs => :s) WHERE id = :o"
                    ),
                    {"s": lead_s, "o": offer.id},
                )
            member = first.members[i % 2]
            accept = http.post(f"/api/v1/offers/{offer.id}/accept", headers=member.headers)
            answer, _ = await asyncio.gather(accept, sweep_once(sweeper, settings))
            # Whatever was left undecided (neither saw the deadline pass)
            # is settled by the next pass.
            await asyncio.sleep(max(lead_s, 0) + 0.01)
            await sweep_once(sweeper, settings)

            closed = await closed_events(engine, offer.id)
            (deadline,) = await rows(
                engine,
                "SELECT closed_at < expires_at AS before FROM offer WHERE id = :o",
                o=offer.id,
            )
            statuses = await call_statuses(engine, call_id)
            (call,) = await rows(
                engine, "SELECT status, responder_id, team_id FROM call WHERE id = :c", c=call_id
            )
            if answer.status_code == 200:
                outcomes["accepted"] += 1
                assert closed == ["accepted"], "accepted, and never expired"
                assert deadline.before, "accepted before the deadline"
                assert (call.status, call.responder_id) == ("accepted", member.person_id)
                assert statuses == ["searching", "offered", "accepted"]
            else:
                outcomes["expired"] += 1
                assert_problem(answer, 409, "offer_closed")
                assert closed == ["expired"], "expired once, and never accepted"
                assert not deadline.before, "expired at or after the deadline"
                assert (call.status, call.responder_id) == ("offered", None)
                assert call.team_id == second.id, "on to the next team"
                assert statuses == ["searching", "offered", "offered"]
                nxt = await open_offer(engine, call_id)
                assert (nxt.team_id, nxt.round) == (second.id, 2)
            await finish(engine, call_id)
    # The deadlines straddled the race: both endings happened.
    assert outcomes["accepted"] > 0, outcomes
    assert outcomes["expired"] > 0, outcomes


async def test_one_idempotency_key_sent_twice_at_once_makes_one_call(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    settings = race_settings(database_url)
    lat, lng = await spot(engine, ledger, 3)
    await committed_team(engine, settings, ledger, *offset(lat, lng, 30, 0), members=2)
    resident = await committed_person(engine, settings, ledger)
    seen: Counter[str] = Counter()
    async with live_app(settings) as (_, http):
        for i in range(12):
            key = f"race-{uuid.uuid4()}"
            where = offset(lat, lng, 0, 10.0 * i)
            answers = await asyncio.gather(
                press(http, resident, *where, key=key), press(http, resident, *where, key=key)
            )
            statuses = sorted(a.status_code for a in answers)
            created = [a for a in answers if a.status_code == 201]
            if statuses == [201, 409]:
                seen["in_flight"] += 1
                refused = next(a for a in answers if a.status_code == 409)
                assert_problem(refused, 409, "idempotency_key_in_flight")
            else:
                assert statuses == [201, 201], [a.text for a in answers]
                seen["replayed"] += 1
                assert created[0].json() == created[1].json()
            body = created[0].json()
            retry = await press(http, resident, *where, key=key)
            assert retry.status_code == 201
            assert retry.json() == body, "a later retry replays the same call"
            made = await rows(
                engine,
                "SELECT id FROM call WHERE resident_id = :r"
                " AND created_at > now() - interval '1 minute'"
                " AND ST_DWithin(location, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,"
                " 1, false)",
                r=resident.person_id,
                lat=where[0],
                lng=where[1],
            )
            assert [str(r.id) for r in made] == [body["id"]], "exactly one call row"
    total = await rows(engine, "SELECT id FROM call WHERE resident_id = :r", r=resident.person_id)
    assert len(total) == 12
    assert sum(seen.values()) == 12


async def test_escalation_timing_with_a_running_sweeper(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    """Two rounds of one second, then the community, then after two seconds
    the street; a dispatcher's assignment offers the call again, and when
    that team lets it lapse it comes back to the dispatchers."""
    settings = race_settings(
        database_url,
        max_offer_rounds=2,
        offer_timeout_seconds=1,
        community_escalation_seconds=2,
        run_sweeper=True,
        sweep_interval_seconds=0.2,
    )
    lat, lng = await spot(engine, ledger, 4)
    first = await committed_team(engine, settings, ledger, *offset(lat, lng, 30, 0), members=2)
    second = await committed_team(engine, settings, ledger, *offset(lat, lng, 120, 0), members=2)
    resident = await committed_person(engine, settings, ledger)
    async with AsyncSession(engine) as session:
        street = (await areas.locate_ids(session, lat, lng)).street
    dispatcher = await committed_person(engine, settings, ledger, "街道调度", dispatcher_of=street)

    async def status(call_id: str) -> tuple[str, str]:
        (row,) = await rows(
            engine, "SELECT status, escalation_level FROM call WHERE id = :c", c=call_id
        )
        return row.status, row.escalation_level

    async with live_app(settings) as (_, http):
        call_id = await offered(http, resident, lat, lng)

        async def at_street() -> bool:
            return await status(call_id) == ("escalated", "street")

        await eventually(at_street, within_s=12)
        events = await rows(
            engine,
            "SELECT type, at, offer_id, data FROM event WHERE call_id = :c ORDER BY id",
            c=call_id,
        )
        updates = [e for e in events if e.type == "call.updated"]
        assert [(u.data["status"], u.data["escalation_level"]) for u in updates] == [
            ("searching", "grid"),
            ("offered", "grid"),
            ("offered", "grid"),
            ("escalated", "community"),
            ("escalated", "street"),
        ]
        assert [u.data["team"]["id"] if u.data["team"] else None for u in updates] == [
            None,
            str(first.id),
            str(second.id),
            None,
            None,
        ]
        created = [e for e in events if e.type == "offer.created"]
        closed = [e for e in events if e.type == "offer.closed"]
        assert [e.data["team"]["id"] for e in created] == [str(first.id), str(second.id)]
        assert [e.offer_id for e in closed] == [e.offer_id for e in created]
        assert [e.data["status"] for e in closed] == ["expired", "expired"]

        second_s = timedelta(seconds=1)
        slack = timedelta(seconds=1.5)  # a sweep interval, plus a loaded machine
        # Round 1 lapses after its timeout, and round 2 starts in the same
        # transaction; round 2 lapses into the community's hands.
        assert second_s <= closed[0].at - created[0].at <= second_s + slack
        assert created[1].at == closed[0].at
        assert second_s <= closed[1].at - created[1].at <= second_s + slack
        assert updates[3].at == closed[1].at
        # The community has two seconds before the street is told.
        assert 2 * second_s <= updates[4].at - updates[3].at <= 2 * second_s + slack

        assigned = await http.post(
            f"/api/v1/dispatch/calls/{call_id}/assign",
            json={"team_id": str(first.id)},
            headers=dispatcher.headers,
        )
        assert assigned.status_code == 200, assigned.text
        assert assigned.json()["status"] == "offered"
        assert assigned.json()["team"]["id"] == str(first.id)
        offer = await open_offer(engine, call_id)
        assert (offer.team_id, offer.round) == (first.id, 3)
        (row,) = await rows(engine, "SELECT assigned_by FROM offer WHERE id = :o", o=offer.id)
        assert row.assigned_by == dispatcher.person_id

        # Nobody takes it: back to the dispatchers (the street's, still).
        await eventually(at_street, within_s=5)
        assert await closed_events(engine, offer.id) == ["expired"]
        statuses = await call_statuses(engine, call_id)
        assert statuses[-2:] == ["offered", "escalated"]
        assert (
            await rows(
                engine, "SELECT id FROM offer WHERE call_id = :c AND status = 'open'", c=call_id
            )
            == []
        )


async def test_two_members_off_duty_accepting_two_assigned_calls_at_once(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    """A dispatcher assigned two calls to a team nobody of which is on duty;
    two of its members accept one each at the same moment. Each accept sees
    that nobody else can take the other call: neither may wait for the
    other's call while holding its own."""
    settings = race_settings(database_url)
    lat, lng = await spot(engine, ledger, 5)
    team = await committed_team(
        engine, settings, ledger, *offset(lat, lng, 30, 0), members=2, on_duty=0
    )
    resident = await committed_person(engine, settings, ledger)
    async with AsyncSession(engine) as session:
        street = (await areas.locate_ids(session, lat, lng)).street
    dispatcher = await committed_person(engine, settings, ledger, "街道调度", dispatcher_of=street)
    async with live_app(settings) as (_, http):
        for _ in range(10):
            calls = []
            for where in (offset(lat, lng, 0, 0), offset(lat, lng, 0, 60)):
                response = await press(http, resident, *where)
                assert response.json()["status"] == "escalated", "nobody on duty in range"
                call_id = response.json()["id"]
                assigned = await http.post(
                    f"/api/v1/dispatch/calls/{call_id}/assign",
                    json={"team_id": str(team.id)},
                    headers=dispatcher.headers,
                )
                assert assigned.status_code == 200, assigned.text
                calls.append(call_id)
            offers = [await open_offer(engine, c) for c in calls]
            answers = await asyncio.gather(
                *(
                    http.post(f"/api/v1/offers/{o.id}/accept", headers=m.headers)
                    for o, m in zip(offers, team.members, strict=True)
                )
            )
            codes = [a.status_code for a in answers]
            assert 200 in codes, [a.text for a in answers]
            assert set(codes) <= {200, 409}, [a.text for a in answers]
            for call_id, member, answer in zip(calls, team.members, answers, strict=True):
                (row,) = await rows(
                    engine, "SELECT status, responder_id FROM call WHERE id = :c", c=call_id
                )
                if answer.status_code == 200:
                    assert (row.status, row.responder_id) == ("accepted", member.person_id)
                else:
                    # Withdrawn by the other accept (nobody on duty was left
                    # to take it): back to the dispatchers.
                    assert_problem(answer, 409, "offer_closed")
                    assert (row.status, row.responder_id) == ("escalated", None)
                await finish(engine, call_id)


async def test_one_member_declining_and_accepting_at_once_gets_one_outcome(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    """The same member sends a decline and an accept of one offer at the
    same moment (two taps): both take the call's lock, so exactly one
    stands. Either the accept came first (the call is theirs; the decline
    finds the offer taken) or the decline did (the accept is refused as
    declined, and the offer stays open for the teammate)."""
    settings = race_settings(database_url)
    lat, lng = await spot(engine, ledger, 3)
    team = await committed_team(engine, settings, ledger, *offset(lat, lng, 30, 20), members=2)
    resident = await committed_person(engine, settings, ledger)
    member = team.members[0]
    outcomes: Counter[str] = Counter()
    async with live_app(settings) as (_, http):
        for i in range(30):
            call_id = await offered(http, resident, lat, lng)
            offer = await open_offer(engine, call_id)
            decline = http.post(f"/api/v1/offers/{offer.id}/decline", headers=member.headers)
            accept = http.post(f"/api/v1/offers/{offer.id}/accept", headers=member.headers)
            pair = (decline, accept) if i % 2 == 0 else (accept, decline)
            first, second = await asyncio.gather(*pair)
            declined, accepted = (first, second) if i % 2 == 0 else (second, first)
            (call,) = await rows(
                engine, "SELECT status, responder_id FROM call WHERE id = :c", c=call_id
            )
            if accepted.status_code == 200:
                assert_problem(declined, 409, "offer_closed")
                assert (call.status, call.responder_id) == ("accepted", member.person_id)
                outcomes["accepted"] += 1
            else:
                assert declined.status_code == 200, declined.text
                assert_problem(accepted, 409, "offer_declined")
                assert (call.status, call.responder_id) == ("offered", None)
                assert (await open_offer(engine, call_id)).id == offer.id
                outcomes["declined"] += 1
            await finish(engine, call_id)
    assert sum(outcomes.values()) == 30, outcomes


async def _waiting_on_locks(engine: AsyncEngine) -> int:
    """How many backends wait for a row's lock (a tuple or a transaction)."""
    (row,) = await rows(
        engine,
        "SELECT count(*) AS n FROM pg_locks "
        "WHERE NOT granted AND locktype IN ('tuple', 'transactionid')",
    )
    return int(row.n)


async def test_a_position_sent_while_the_call_resolves_leaves_no_track(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    """The responder's phone sends a position while the call is being
    resolved. The resolve erases the track of where the responder was; the
    position, which becomes a `responder.location` event while the
    responder is on the way or on site, waits for the call's lock and then
    finds the call resolved: no event, and no position left in any of the
    call's events. Both orders: the position queued behind the resolve, and
    the resolve behind the position (whose event it then erases). The call's
    lock is held by this test while both queue, so each order is the one
    PostgreSQL grants, not a matter of timing."""
    settings = race_settings(database_url)
    lat, lng = await spot(engine, ledger, 1)
    team = await committed_team(engine, settings, ledger, *offset(lat, lng, 30, 20), members=1)
    (member,) = team.members
    resident = await committed_person(engine, settings, ledger)
    here = {"lat": lat, "lng": lng, "accuracy_m": 5}
    async with live_app(settings) as (_, http):
        for resolve_first in (True, False):
            call_id = await offered(http, resident, lat, lng)
            offer = await open_offer(engine, call_id)
            accepted = await http.post(f"/api/v1/offers/{offer.id}/accept", headers=member.headers)
            assert accepted.status_code == 200, accepted.text
            for status in ("en_route", "on_site"):
                moved = await http.post(
                    f"/api/v1/calls/{call_id}/progress",
                    json={"status": status},
                    headers=member.headers,
                )
                assert moved.status_code == 200, moved.text
            # Older than the interval between shared positions: the next one
            # becomes an event.
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE event SET at = at - interval '1 minute' "
                        "WHERE call_id = :c AND type = 'responder.location'"
                    ),
                    {"c": call_id},
                )
            resolve = functools.partial(
                http.post,
                f"/api/v1/calls/{call_id}/progress",
                json={"status": "resolved"},
                headers=member.headers,
            )
            position = functools.partial(
                http.put, "/api/v1/me/location", json=here, headers=member.headers
            )
            first, second = (resolve, position) if resolve_first else (position, resolve)
            async with engine.connect() as holder:
                await holder.execute(
                    text("SELECT 1 FROM call WHERE id = :c FOR UPDATE"), {"c": call_id}
                )
                one = asyncio.ensure_future(first())
                await eventually(lambda: _has_waiting(engine, 1), within_s=5)
                other = asyncio.ensure_future(second())
                await eventually(lambda: _has_waiting(engine, 2), within_s=5)
                await holder.commit()
            answers = {"first": await one, "second": await other}
            resolved = answers["first" if resolve_first else "second"]
            located = answers["second" if resolve_first else "first"]
            assert resolved.status_code == 200, resolved.text
            assert resolved.json()["status"] == "resolved"
            assert located.status_code == 204, located.text
            track = await rows(
                engine,
                "SELECT type FROM event WHERE call_id = :c AND (type = 'responder.location' "
                "OR jsonb_typeof(data -> 'responder' -> 'location') = 'object')",
                c=call_id,
            )
            assert track == [], f"resolve first: {resolve_first}"


async def _has_waiting(engine: AsyncEngine, n: int) -> bool:
    return await _waiting_on_locks(engine) >= n
