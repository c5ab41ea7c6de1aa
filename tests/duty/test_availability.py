"""Who is an available member (app/duty/availability.py): on duty, with a
fresh position, not disabled, not responding to a call. Dispatch (the
nearest teams), `team_has_takers` (does an offer still have someone to take
it) and the offer alerts must agree on it, and disabling a person must take
them out of all three at once (API.md: "the person is off duty and offered
nothing")."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.areas import service as areas
from app.calls.state import lock_call
from app.core.config import Settings
from app.dispatch import policy as dispatch
from app.offers import lifecycle
from app.teams import rules as team_rule
from tests.principals import bearer, make_person, token_for
from tests.scene import Member, SceneTeam, clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}


async def press(http: httpx.AsyncClient, who: Member) -> dict[str, Any]:
    answer = await http.post(
        "/api/v1/calls", json={"location": POINT, "category": "urgent"}, headers=who.headers
    )
    assert answer.status_code == 201, answer.text
    call: dict[str, Any] = answer.json()
    return call


async def admin_headers(session: AsyncSession, settings: Settings) -> dict[str, str]:
    admin = await make_person(session, "管理员", is_admin=True)
    return bearer(await token_for(session, settings, admin))


async def disable(http: httpx.AsyncClient, admin: dict[str, str], person_id: uuid.UUID) -> None:
    answer = await http.post(f"/api/v1/admin/persons/{person_id}/disable", headers=admin)
    assert answer.status_code in (200, 204), answer.text


async def offers_to(session: AsyncSession, team_id: uuid.UUID) -> list[Any]:
    rows = await session.execute(
        text("SELECT id, call_id, status FROM offer WHERE team_id = :t ORDER BY created_at, id"),
        {"t": team_id},
    )
    return list(rows.all())


async def offer_alerts(session: AsyncSession, people: list[uuid.UUID]) -> list[Any]:
    rows = await session.execute(
        text(
            "SELECT person_id, offer_id FROM notification "
            "WHERE kind = 'offer' AND person_id = ANY(CAST(:p AS uuid[]))"
        ),
        {"p": people},
    )
    return list(rows.all())


@pytest.fixture
async def near_and_far(session: AsyncSession, settings: Settings) -> tuple[SceneTeam, SceneTeam]:
    """A near team whose only on-duty member is its first, and a farther team."""
    await clear_duty_near(session, LAT, LNG, 5000)
    near = await make_team(
        session, settings, *offset(LAT, LNG, 40, 30), members=2, on_duty=1, name="近队"
    )
    far = await make_team(session, settings, *offset(LAT, LNG, 900, 0), members=1, name="远队")
    return near, far


async def test_a_team_whose_only_on_duty_member_is_disabled_is_not_offered_a_press(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    near_and_far: tuple[SceneTeam, SceneTeam],
) -> None:
    near, far = near_and_far
    admin = await admin_headers(session, settings)
    await disable(anon_client, admin, near.members[0].person_id)

    call = await press(anon_client, await make_resident(session, settings))
    assert call["status"] == "offered"
    assert call["team"]["id"] == str(far.id), "the next team, not the disabled member's"
    assert await offers_to(session, near.id) == []
    assert await offer_alerts(session, [m.person_id for m in near.members]) == []
    assert {a.person_id for a in await offer_alerts(session, [far.members[0].person_id])} == {
        far.members[0].person_id
    }

    duty = (
        await session.execute(
            text("SELECT on_duty, location, accuracy_m, located_at FROM duty WHERE person_id = :p"),
            {"p": near.members[0].person_id},
        )
    ).one()
    assert duty == (False, None, None, None), "off duty, the position dropped"

    # With nobody left in range, the call escalates at once, not after a lapse.
    await disable(anon_client, admin, far.members[0].person_id)
    lonely = await press(anon_client, await make_resident(session, settings))
    assert lonely["status"] == "escalated"
    assert lonely["escalation_level"] == "community"

    # Going back on duty is refused: the person's sessions ended with the disabling.
    back = await anon_client.put(
        "/api/v1/me/duty",
        json={"on_duty": True, "location": POINT},
        headers=near.members[0].headers,
    )
    assert back.status_code == 401, back.text


async def test_disabling_releases_an_open_offer_only_that_person_could_take(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    near_and_far: tuple[SceneTeam, SceneTeam],
) -> None:
    near, far = near_and_far
    call = await press(anon_client, await make_resident(session, settings))
    assert call["team"]["id"] == str(near.id)
    [offer] = await offers_to(session, near.id)
    assert offer.status == "open"

    await disable(anon_client, await admin_headers(session, settings), near.members[0].person_id)

    [offer] = await offers_to(session, near.id)
    assert offer.status == "withdrawn", "nobody else of the team could take it"
    status, team = (
        await session.execute(text("SELECT status, team_id FROM call WHERE id = :id"), call)
    ).one()
    assert (status, team) == ("offered", far.id), "the call moved on without waiting"


async def test_a_member_with_a_stale_position_is_not_alerted(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=2)
    fresh, stale = team.members
    await session.execute(
        text("UPDATE duty SET located_at = now() - CAST(:age AS interval) WHERE person_id = :p"),
        {
            "p": stale.person_id,
            "age": timedelta(seconds=settings.duty_position_max_age_seconds + 60),
        },
    )
    call = await press(anon_client, await make_resident(session, settings))
    assert call["team"]["id"] == str(team.id), "offered: the fresh member counts"
    alerted = {a.person_id for a in await offer_alerts(session, [fresh.person_id, stale.person_id])}
    assert alerted == {fresh.person_id}, "dispatch does not count a stale position; nor do alerts"


# ---- one cast, three users of the rule ---------------------------------------------------

# How a member stands, and whether that member is available.
CAST: dict[str, bool] = {
    "fresh": True,
    "fresh_after_a_resolved_call": True,
    "stale": False,
    "never_located": False,
    "off_duty": False,
    # Disabled while still on duty: what a disabling racing a request that
    # puts the person back on duty could leave behind.
    "disabled_on_duty": False,
    "accepted": False,
    "en_route": False,
    "on_site": False,
}


async def stand(
    session: AsyncSession,
    settings: Settings,
    state: str,
    person_id: uuid.UUID,
    lat: float,
    lng: float,
    area: Any,
    resident: uuid.UUID,
) -> None:
    max_age = settings.duty_position_max_age_seconds
    age = {"stale": max_age + 120, "never_located": None}.get(state, 30)
    await session.execute(
        text(
            """
            INSERT INTO duty (person_id, on_duty, since, location, accuracy_m, located_at)
            VALUES (:p, :on, now() - interval '1 hour',
                    ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography, 10,
                    now() - make_interval(secs => CAST(:age AS float8)))
            """
        ),
        {"p": person_id, "on": state != "off_duty", "lat": lat, "lng": lng, "age": age},
    )
    if state == "disabled_on_duty":
        await session.execute(
            text("UPDATE person SET disabled_at = now() WHERE id = :p"), {"p": person_id}
        )
    call_status = {
        "fresh_after_a_resolved_call": "resolved",
        "accepted": "accepted",
        "en_route": "en_route",
        "on_site": "on_site",
    }.get(state)
    if call_status is not None:
        await insert_call(session, area, resident, lat, lng, call_status, responder=person_id)


async def insert_call(
    session: AsyncSession,
    area: Any,
    resident: uuid.UUID,
    lat: float,
    lng: float,
    status: str,
    *,
    responder: uuid.UUID | None = None,
) -> uuid.UUID:
    call_id = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO call (id, resident_id, status, category, location, grid_id, community_id,
                              street_id, escalation_level, rounds, responder_id)
            VALUES (:id, :r, :s, 'urgent', ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                    :g, :c, :st, 'grid', 1, :who)
            """
        ),
        {
            "id": call_id,
            "r": resident,
            "s": status,
            "lat": lat,
            "lng": lng,
            "g": area.grid,
            "c": area.community,
            "st": area.street,
            "who": responder,
        },
    )
    return call_id


async def test_dispatch_takers_and_alerts_agree_on_who_is_available(
    session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    area = await areas.locate_ids(session, LAT, LNG)
    resident = await make_person(session, "居民")
    # One single-member team per state, each a little farther than the last.
    team_of: dict[str, SceneTeam] = {}
    for n, state in enumerate(CAST):
        lat, lng = offset(LAT, LNG, 100.0 + 50 * n, 0)
        team = await make_team(session, settings, lat, lng, members=1, on_duty=0, name=state)
        await stand(session, settings, state, team.members[0].person_id, lat, lng, area, resident)
        team_of[state] = team
    expected = {state for state, available in CAST.items() if available}

    nearest = await dispatch.nearest_teams(
        session, settings, LAT, LNG, skip=[], want=len(CAST) + 10
    )
    by_dispatch = {
        state for state, team in team_of.items() if team.id in {c.team_id for c in nearest}
    }

    # Every team is offered a call (as a dispatcher's assign would): the
    # offer's alerts and `team_has_takers` both judge its one member.
    call_id = await insert_call(session, area, resident, LAT, LNG, "offered")
    call = await lock_call(session, call_id)
    assert call is not None
    by_takers: set[str] = set()
    by_alerts: set[str] = set()
    for state, team in team_of.items():
        made_to = lifecycle.Team(team.id, state)
        offer_id = await lifecycle.create_offer(session, settings, call, made_to, 100.0, 1)
        if await dispatch.team_has_takers(session, settings, offer_id):
            by_takers.add(state)
        alerted = (
            await session.execute(
                text("SELECT person_id FROM notification WHERE offer_id = :o AND kind = 'offer'"),
                {"o": offer_id},
            )
        ).scalars()
        if team.members[0].person_id in set(alerted):
            by_alerts.add(state)

    assert {"nearest teams": by_dispatch, "team_has_takers": by_takers, "alerts": by_alerts} == {
        "nearest teams": expected,
        "team_has_takers": expected,
        "alerts": expected,
    }


# ---- the plan ----------------------------------------------------------------------------


async def test_the_nearest_teams_query_still_scans_the_partial_index(
    connection: AsyncConnection, settings: Settings
) -> None:
    # Enough on-duty positions that a sequential scan would be a real choice.
    await connection.execute(
        text(
            """
            WITH p AS (
                INSERT INTO person (id, phone, display_name)
                SELECT gen_random_uuid(), '+86100' || CAST(80000000 + i AS text), '压测'
                FROM generate_series(1, 20000) AS i
                RETURNING id)
            INSERT INTO duty (person_id, on_duty, since, location, accuracy_m, located_at)
            SELECT id, true, now(),
                   ST_SetSRID(ST_MakePoint(113.88 + random() * 0.1, 22.73 + random() * 0.08),
                              4326)::geography, 10, now()
            FROM p
            """
        )
    )
    # And a surge's worth of them busy on calls: the busy check must stay one
    # probe of `uq_call_responder_active` per member read, not an anti join
    # that reads every call in progress for each (and loses the KNN order).
    area = await areas.locate_ids(AsyncSession(bind=connection), LAT, LNG)
    await connection.execute(
        text(
            """
            INSERT INTO call (id, resident_id, status, category, location, grid_id,
                              community_id, street_id, escalation_level, rounds, responder_id)
            SELECT gen_random_uuid(), d.person_id, 'on_site', 'urgent', d.location, :g, :c, :st,
                   'grid', 1, d.person_id
            FROM duty d JOIN person p ON p.id = d.person_id AND p.display_name = '压测'
            LIMIT 3000
            """
        ),
        {"g": area.grid, "c": area.community, "st": area.street},
    )
    for table in ("duty", "person", "call"):
        await connection.execute(text(f"ANALYZE {table}"))
    plan = (
        (
            await connection.execute(
                text("EXPLAIN " + dispatch._NEAREST_TEAMS.text),
                {
                    "lat": LAT,
                    "lng": LNG,
                    "radius_m": float(settings.search_radius_m),
                    "max_age": timedelta(seconds=settings.duty_position_max_age_seconds),
                    "k": 64,
                    "skip": [],
                    "want": 1,
                    **team_rule.params(settings),
                },
            )
        )
        .scalars()
        .all()
    )
    plan_text = "\n".join(plan)
    assert "ix_duty_location_on_duty" in plan_text, plan_text
    assert "Seq Scan on duty" not in plan_text, plan_text
    # The KNN order comes from the index: no sort of every member in range.
    assert "Order By: (location <-> " in plan_text, plan_text
    assert "Anti Join" not in plan_text, plan_text
    assert "uq_call_responder_active" in plan_text, plan_text
