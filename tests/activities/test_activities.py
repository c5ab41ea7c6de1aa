"""Service activities: a resolved call's, logging one, reading a team's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.activities import calls as call_activities
from app.activities.service import earliest_loggable
from app.areas import service as areas
from app.core import sql
from app.core.config import Settings
from tests.principals import Cast, bearer, make_cast, make_person, token_for
from tests.problems import assert_problem
from tests.scene import clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93


def _iso(at: datetime) -> str:
    return at.isoformat()


# ---- a resolved call is an activity of its responder ----------------------------------


@pytest.mark.parametrize(("category", "kind"), [("visit", "visit"), ("urgent", "hardship")])
async def test_a_resolved_call_is_one_activity_of_its_responder(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
    category: str,
    kind: str,
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=3)
    resident = await make_resident(session, settings)
    pressed = await anon_client.post(
        "/api/v1/calls",
        json={"location": {"lat": LAT, "lng": LNG}, "category": category},
        headers=resident.headers,
    )
    assert pressed.status_code == 201, pressed.text
    call_id = pressed.json()["id"]
    member = team.members[2]
    offers = (await anon_client.get("/api/v1/offers?status=open", headers=member.headers)).json()
    offer = next(o for o in offers["data"] if o["call_id"] == call_id)
    accepted = await anon_client.post(
        f"/api/v1/offers/{offer['id']}/accept", headers=member.headers
    )
    assert accepted.status_code == 200, accepted.text

    async def activities() -> list[Any]:
        rows = await connection.execute(
            text(
                "SELECT person_id, team_id, kind, source, call_id, at FROM activity "
                "WHERE call_id = :c"
            ),
            {"c": call_id},
        )
        return list(rows.all())

    for step in ("en_route", "on_site"):
        moved = await anon_client.post(
            f"/api/v1/calls/{call_id}/progress", json={"status": step}, headers=member.headers
        )
        assert moved.status_code == 200, moved.text
        assert await activities() == [], "not before it is resolved"
    resolved = await anon_client.post(
        f"/api/v1/calls/{call_id}/progress", json={"status": "resolved"}, headers=member.headers
    )
    assert resolved.status_code == 200, resolved.text

    (row,) = await activities()
    assert (row.person_id, row.team_id, row.kind, row.source, str(row.call_id)) == (
        member.person_id,
        team.id,
        kind,
        "call",
        call_id,
    )
    assert abs(row.at - datetime.now(UTC)) < timedelta(minutes=1)

    # Resolving again is refused, and writing it again writes nothing.
    again = await anon_client.post(
        f"/api/v1/calls/{call_id}/progress", json={"status": "resolved"}, headers=member.headers
    )
    assert_problem(again, 409, "invalid_transition")
    await sql.execute_writes(session, [call_activities.resolved(uuid.UUID(call_id))])
    assert len(await activities()) == 1

    # The team's list shows it, as the API writes an Activity.
    listed = await anon_client.get(f"/api/v1/teams/{team.id}/activities", headers=member.headers)
    assert listed.status_code == 200, listed.text
    (shown,) = [a for a in listed.json()["data"] if a["call_id"] == call_id]
    assert shown["source"] == "call"
    assert shown["kind"] == kind
    assert shown["person_id"] == str(member.person_id)
    assert shown["household_id"] is None


# ---- logging one ---------------------------------------------------------------------


@pytest.fixture
async def cast(session: AsyncSession, settings: Settings) -> Cast:
    return await make_cast(session, settings)


async def _household(session: AsyncSession, paired_with: uuid.UUID | None) -> uuid.UUID:
    grid = (await areas.locate_ids(session, LAT, LNG)).grid
    household_id = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO household (id, address, grid_id, location, vulnerabilities)
            VALUES (:id, '测试路1号', :grid,
                    ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography, '{elderly}')
            """
        ),
        {"id": household_id, "grid": grid, "lat": LAT, "lng": LNG},
    )
    if paired_with is not None:
        await session.execute(
            text("INSERT INTO household_pairing (person_id, household_id) VALUES (:p, :h)"),
            {"p": paired_with, "h": household_id},
        )
    return household_id


def _body(team_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    return {
        "team_id": str(team_id),
        "kind": "visit",
        "at": _iso(datetime.now(UTC) - timedelta(minutes=30)),
        "duration_min": 45,
        **overrides,
    }


async def test_a_member_logs_an_activity(
    anon_client: httpx.AsyncClient, session: AsyncSession, cast: Cast
) -> None:
    household = await _household(session, cast.person_ids["volunteer_x"])
    at = datetime.now(UTC) - timedelta(minutes=30)
    created = await anon_client.post(
        "/api/v1/activities",
        json=_body(cast.team_x, at=_iso(at), note="陪同复诊", household_id=str(household)),
        headers=cast.headers["volunteer_x"],
    )
    assert created.status_code == 201, created.text
    activity = created.json()
    assert activity["team_id"] == str(cast.team_x)
    assert activity["person_id"] == str(cast.person_ids["volunteer_x"])
    assert activity["kind"] == "visit"
    assert activity["source"] == "logged"
    assert activity["call_id"] is None
    assert activity["household_id"] == str(household)
    assert activity["duration_min"] == 45
    assert activity["note"] == "陪同复诊"
    assert activity["disputed"] is False
    assert datetime.fromisoformat(activity["at"]) == at
    stored = (
        await session.execute(
            text("SELECT person_id, source FROM activity WHERE id = :id"), {"id": activity["id"]}
        )
    ).one()
    assert stored == (cast.person_ids["volunteer_x"], "logged")

    event = await anon_client.post(
        "/api/v1/activities",
        json=_body(cast.team_x, kind="event", duration_min=0),
        headers=cast.headers["volunteer_x"],
    )
    assert event.status_code == 201, event.text
    assert event.json()["kind"] == "event"


async def test_logging_refuses_what_it_should(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, cast: Cast
) -> None:
    member = cast.headers["volunteer_x"]
    now = datetime.now(UTC)

    async def post(headers: dict[str, str], **overrides: Any) -> httpx.Response:
        return await anon_client.post(
            "/api/v1/activities", json=_body(cast.team_x, **overrides), headers=headers
        )

    for who in ("volunteer_y", "resident_a", "dispatcher_c1", "admin"):
        assert_problem(await post(cast.headers[who]), 403, "not_a_member")
    assert_problem(
        await anon_client.post("/api/v1/activities", json=_body(uuid.uuid4()), headers=member),
        403,
        "not_a_member",
    )
    assert_problem(
        await post(member, at=_iso(now + timedelta(minutes=30))), 422, "activity_in_future"
    )
    # A phone's clock a little ahead is no future.
    assert (await post(member, at=_iso(now + timedelta(minutes=2)))).status_code == 201
    earliest = earliest_loggable(settings, now)
    assert (await post(member, at=_iso(earliest + timedelta(minutes=1)))).status_code == 201
    assert_problem(
        await post(member, at=_iso(earliest - timedelta(minutes=1))), 422, "activity_too_old"
    )
    not_mine = await _household(session, cast.person_ids["volunteer_y"])
    assert_problem(await post(member, household_id=str(not_mine)), 422, "household_not_paired")
    assert_problem(await post(member, household_id=str(uuid.uuid4())), 422, "household_not_paired")
    for bad in (
        {"kind": "call"},
        {"kind": "urgent"},
        {"duration_min": -1},
        {"duration_min": 1441},
        {"at": "2026-11-18T15:30:00"},  # no time zone
        {"note": "x" * 501},
        {"surprise": True},
    ):
        assert_problem(await post(member, **bad), 422, "validation_error")
    logged = (
        await session.execute(
            text("SELECT count(*) FROM activity WHERE person_id = :p"),
            {"p": cast.person_ids["volunteer_x"]},
        )
    ).scalar_one()
    assert logged == 2, "only the two accepted ones"


@pytest.mark.parametrize(
    ("now", "earliest"),
    [
        # 2 December in Shanghai: November may still be logged.
        ("2026-12-02T10:00:00+00:00", "2026-10-31T16:00:00+00:00"),
        # 4 December: only December.
        ("2026-12-04T10:00:00+00:00", "2026-11-30T16:00:00+00:00"),
        # 1 January at 01:00 in Shanghai, still 31 December in UTC.
        ("2026-12-31T17:00:00+00:00", "2026-11-30T16:00:00+00:00"),
    ],
)
def test_the_earliest_time_an_activity_may_be_logged_at(
    settings: Settings, now: str, earliest: str
) -> None:
    assert settings.timezone == "Asia/Shanghai"
    assert settings.activity_late_days == 3
    assert earliest_loggable(settings, datetime.fromisoformat(now)) == datetime.fromisoformat(
        earliest
    )


# ---- reading a team's activities ------------------------------------------------------


async def _insert(
    session: AsyncSession, person: uuid.UUID, team: uuid.UUID, at: datetime, **extra: Any
) -> uuid.UUID:
    activity_id = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO activity (id, person_id, team_id, kind, at, note, household_id)
            VALUES (:id, :p, :t, 'visit', :at, :note, :h)
            """
        ),
        {
            "id": activity_id,
            "p": person,
            "t": team,
            "at": at,
            "note": extra.get("note"),
            "h": extra.get("household"),
        },
    )
    return activity_id


async def test_a_team_s_activities_page_newest_first_by_month(
    anon_client: httpx.AsyncClient, session: AsyncSession, cast: Cast
) -> None:
    # A fixed past month of team X, which nothing else writes to.
    start = datetime.fromisoformat("2025-03-01T00:00:00+08:00")
    me = cast.person_ids["volunteer_x"]
    made = [
        await _insert(session, me, cast.team_x, start + timedelta(days=3 * i)) for i in range(5)
    ]
    # Two at the same instant: the id breaks the tie, nothing is lost or doubled.
    made.append(await _insert(session, me, cast.team_x, start + timedelta(days=6)))
    await _insert(session, me, cast.team_x, start - timedelta(seconds=1))  # February
    await _insert(session, me, cast.team_y, start + timedelta(days=1))  # another team

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"month": "2025-03", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await anon_client.get(
            f"/api/v1/teams/{cast.team_x}/activities",
            params=params,
            headers=cast.headers["volunteer_x"],
        )
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["data"]) <= 2
        seen += [a["id"] for a in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(str(a) for a in made)
    ats = []
    for activity_id in seen:
        at = (
            await session.execute(
                text("SELECT at FROM activity WHERE id = :id"), {"id": activity_id}
            )
        ).scalar_one()
        ats.append(at)
    assert ats == sorted(ats, reverse=True), "newest first"

    february = await anon_client.get(
        f"/api/v1/teams/{cast.team_x}/activities",
        params={"month": "2025-02"},
        headers=cast.headers["volunteer_x"],
    )
    assert [a["at"] for a in february.json()["data"]] == ["2025-02-28T15:59:59Z"]

    bad_cursor = await anon_client.get(
        f"/api/v1/teams/{cast.team_x}/activities",
        params={"cursor": "bm90LWEtY3Vyc29y"},
        headers=cast.headers["volunteer_x"],
    )
    assert_problem(bad_cursor, 422, "invalid_cursor")
    for month, code in (("2025-13", "validation_error"), ("1999-12", "invalid_month")):
        refused = await anon_client.get(
            f"/api/v1/teams/{cast.team_x}/activities",
            params={"month": month},
            headers=cast.headers["volunteer_x"],
        )
        assert_problem(refused, 422, code)


async def test_who_reads_a_team_s_activities_and_their_notes(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, cast: Cast
) -> None:
    me = cast.person_ids["volunteer_x"]
    household = await _household(session, me)
    at = datetime.now(UTC) - timedelta(minutes=5)
    plain = await _insert(session, me, cast.team_x, at, note="清理楼道杂物")
    private = await _insert(
        session,
        me,
        cast.team_x,
        at - timedelta(minutes=1),
        note="老人血压偏高",
        household=household,
    )
    teammate = await make_person(session, "队友")
    await session.execute(
        text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, 'part_time')"),
        {"t": cast.team_x, "p": teammate},
    )
    headers = {**cast.headers, "teammate": bearer(await token_for(session, settings, teammate))}

    expected = {
        "volunteer_x": 200,
        "teammate": 200,
        "dispatcher_c1": 200,
        "admin": 200,
        "volunteer_y": 403,
        "resident_a": 403,
        "dispatcher_c2": 403,
        "anonymous": 401,
        "api_key": 403,
    }
    for who, status in expected.items():
        answer = await anon_client.get(
            f"/api/v1/teams/{cast.team_x}/activities", headers=headers[who]
        )
        assert answer.status_code == status, (who, answer.text)
        if status == 403 and who != "api_key":
            assert_problem(answer, 403, "not_allowed")
        if status != 200:
            assert "清理楼道杂物" not in answer.text
            assert "血压" not in answer.text
            continue
        notes = {a["id"]: a["note"] for a in answer.json()["data"]}
        assert notes[str(plain)] == "清理楼道杂物"
        # A household's note: its author and staff only.
        shown = who in ("volunteer_x", "dispatcher_c1", "admin")
        assert notes[str(private)] == ("老人血压偏高" if shown else None), who

    unknown = await anon_client.get(
        f"/api/v1/teams/{uuid.uuid4()}/activities", headers=cast.headers["admin"]
    )
    assert_problem(unknown, 404, "not_found")


# ---- one's own month against the quota ------------------------------------------------


async def test_a_member_reads_their_own_month_against_the_quota(
    anon_client: httpx.AsyncClient, session: AsyncSession, cast: Cast
) -> None:
    start = datetime.fromisoformat("2025-04-01T00:00:00+08:00")
    me = cast.person_ids["volunteer_x"]
    other = cast.person_ids["volunteer_y"]
    mine = [await _insert(session, me, cast.team_x, start + timedelta(days=i)) for i in range(2)]
    # With another team of theirs, it counts too; a disputed one does not.
    await session.execute(
        text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, 'full_time')"),
        {"t": cast.team_y, "p": me},
    )
    mine.append(await _insert(session, me, cast.team_y, start + timedelta(days=5)))
    disputed = await _insert(session, me, cast.team_x, start + timedelta(days=6), note="私事")
    await session.execute(
        text("UPDATE activity SET disputed = true WHERE id = :id"), {"id": disputed}
    )
    await _insert(session, other, cast.team_y, start + timedelta(days=2))  # not mine
    await _insert(session, me, cast.team_x, start - timedelta(seconds=1))  # March

    answer = await anon_client.get(
        "/api/v1/me/activities",
        params={"month": "2025-04", "limit": 3},
        headers=cast.headers["volunteer_x"],
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["month"] == "2025-04"
    assert body["required"] == 3
    assert body["full_time"] is True
    assert body["counted"] == 3
    assert body["short_by"] == 0
    assert [a["id"] for a in body["data"]] == [
        str(disputed),
        *(str(a) for a in reversed(mine[1:])),
    ]
    assert body["data"][0]["note"] == "私事", "one's own notes are shown"
    rest = await anon_client.get(
        "/api/v1/me/activities",
        params={"month": "2025-04", "limit": 3, "cursor": body["next_cursor"]},
        headers=cast.headers["volunteer_x"],
    )
    assert [a["id"] for a in rest.json()["data"]] == [str(mine[0])]
    assert rest.json()["next_cursor"] is None

    # Volunteer Y is part-time: the rule does not bind them, short_by stays 0.
    theirs = await anon_client.get(
        "/api/v1/me/activities", params={"month": "2025-04"}, headers=cast.headers["volunteer_y"]
    )
    assert theirs.json()["full_time"] is False
    assert theirs.json()["counted"] == 1
    assert theirs.json()["short_by"] == 0

    # A full-time member short of it: X in March has one.
    march = await anon_client.get(
        "/api/v1/me/activities", params={"month": "2025-03"}, headers=cast.headers["volunteer_x"]
    )
    assert (march.json()["counted"], march.json()["short_by"]) == (1, 2)
    refused = await anon_client.get(
        "/api/v1/me/activities", params={"month": "1999-12"}, headers=cast.headers["volunteer_x"]
    )
    assert_problem(refused, 422, "invalid_month")
