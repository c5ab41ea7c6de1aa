"""GET /dispatch/kpis against a day counted by hand, its CSV, its buckets in
Asia/Shanghai, and who may ask.

The fixture day (tests/kpis/conftest.py) is written with controlled
instants, as the API cannot set the time of a press or an accept. One test
also runs a call through the real API and reads its KPIs, so the event
shapes the fixture assumes are the ones the services write."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.areas.service import AreaIds
from app.core.config import Settings
from app.kpis.service import CSV_COLUMNS
from tests.kpis.conftest import SHANGHAI, dispatcher_of
from tests.principals import bearer, make_person, token_for
from tests.problems import assert_problem
from tests.scene import clear_duty_near, make_resident, make_team, offset

FIELDS = (
    "calls",
    "resolved",
    "accepted_within_60s_pct",
    "accept_p50_s",
    "accept_p90_s",
    "on_site_p50_s",
    "resolved_pct",
    "escalated_pct",
    "disputed_pct",
    "satisfaction_avg",
    "satisfied_pct",
    "response_rate_pct",
    "resolution_rate_pct",
)


# The grid's 12 June, by hand (C1–C6; C7 and C8 fall on other days):
#   calls 6.
#   accept seconds of the accepted: C1 20, C2 45, C3 300, C4 90, C6 60 → 5 of 6.
#   within 60 s (≤ 60): C1, C2, C6 → 3/6 = 50.0 %.
#   p50 (percentile_cont) of [20, 45, 60, 90, 300] = 60.0;
#   p90: position 0.9 × 4 = 3.6 → 90 + 0.6 × (300 − 90) = 216.0.
#   on-site seconds from the press: C1 300, C2 600, C3 900, C6 400 →
#   p50 of [300, 400, 600, 900] = 500.0.
#   resolved at least once: C1, C2, C3, C6 → 4, 4/6 = 66.7 %.
#   escalated for want of a team: C3, C5 (not C2's dispute) → 2/6 = 33.3 %.
#   disputed, of the resolved: C2 → 1/4 = 25.0 %.
#   ratings 5, 4, 2, 4 → mean 3.75; at 4–5: 3/4 = 75.0 %.
#   response rate (accepted at all): 5/6 = 83.3 %.
#   resolution rate (resolved, not disputed): C1, C3, C6 → 3/6 = 50.0 %.
GRID_DAY = {
    "calls": 6,
    "resolved": 4,
    "accepted_within_60s_pct": 50.0,
    "accept_p50_s": 60.0,
    "accept_p90_s": 216.0,
    "on_site_p50_s": 500.0,
    "resolved_pct": 66.7,
    "escalated_pct": 33.3,
    "disputed_pct": 25.0,
    "satisfaction_avg": 3.75,
    "satisfied_pct": 75.0,
    "response_rate_pct": 83.3,
    "resolution_rate_pct": 50.0,
}
# 11 June: C7 alone, accepted at 10 s and nothing more.
GRID_DAY_BEFORE = {
    "calls": 1,
    "resolved": 0,
    "accepted_within_60s_pct": 100.0,
    "accept_p50_s": 10.0,
    "accept_p90_s": 10.0,
    "on_site_p50_s": None,
    "resolved_pct": 0.0,
    "escalated_pct": 0.0,
    "disputed_pct": None,  # nothing resolved: nothing to dispute
    "satisfaction_avg": None,
    "satisfied_pct": None,
    "response_rate_pct": 100.0,
    "resolution_rate_pct": 0.0,
}
# 13 June: C8 alone, never accepted.
GRID_DAY_AFTER = {
    "calls": 1,
    "resolved": 0,
    "accepted_within_60s_pct": 0.0,
    "accept_p50_s": None,
    "accept_p90_s": None,
    "on_site_p50_s": None,
    "resolved_pct": 0.0,
    "escalated_pct": 0.0,
    "disputed_pct": None,
    "satisfaction_avg": None,
    "satisfied_pct": None,
    "response_rate_pct": 0.0,
    "resolution_rate_pct": 0.0,
}


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in FIELDS}


async def _admin(session: AsyncSession, settings: Settings) -> dict[str, str]:
    person_id = await make_person(session, "指标管理员", is_admin=True)
    return bearer(await token_for(session, settings, person_id))


async def test_a_day_counted_by_hand(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, day: dict[str, Any]
) -> None:
    where: AreaIds = day["where"]
    dispatcher = await dispatcher_of(session, settings, where.community)
    answer = await anon_client.get(
        "/api/v1/dispatch/kpis",
        params={"area_id": str(where.grid), "from": "2024-06-11", "to": "2024-06-13"},
        headers=dispatcher.headers,
    )
    assert answer.status_code == 200, answer.text
    rows = answer.json()["data"]
    assert [r["bucket_start"] for r in rows] == ["2024-06-11", "2024-06-12", "2024-06-13"]
    assert {r["area"]["id"] for r in rows} == {str(where.grid)}
    assert _figures(rows[0]) == GRID_DAY_BEFORE
    assert _figures(rows[1]) == GRID_DAY
    assert _figures(rows[2]) == GRID_DAY_AFTER


async def test_the_csv_is_the_same_rows(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, day: dict[str, Any]
) -> None:
    where: AreaIds = day["where"]
    admin = await _admin(session, settings)
    params = {"area_id": str(where.grid), "from": "2024-06-11", "to": "2024-06-13"}
    as_json = (await anon_client.get("/api/v1/dispatch/kpis", params=params, headers=admin)).json()
    answer = await anon_client.get(
        "/api/v1/dispatch/kpis", params=params, headers={**admin, "Accept": "text/csv"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(answer.text)))
    assert tuple(lines[0]) == CSV_COLUMNS
    assert lines[0][:3] == ["area_id", "area_name", "bucket_start"]
    assert len(lines) == 1 + len(as_json["data"]) == 4

    def cell(value: Any) -> str:
        return "" if value is None else str(value)

    for line, row in zip(lines[1:], as_json["data"], strict=True):
        expected = [row["area"]["id"], row["area"]["name"], row["bucket_start"]]
        expected += [cell(row[name]) for name in FIELDS]
        assert line == expected
    assert lines[2][CSV_COLUMNS.index("accept_p90_s")] == "216.0"


async def test_buckets_are_district_weeks_and_months(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, day: dict[str, Any]
) -> None:
    where: AreaIds = day["where"]
    admin = await _admin(session, settings)
    base = {"area_id": str(where.grid), "from": "2024-06-11", "to": "2024-06-13"}
    weeks = await anon_client.get(
        "/api/v1/dispatch/kpis", params={**base, "bucket": "week"}, headers=admin
    )
    assert weeks.status_code == 200, weeks.text
    # One week, starting Monday 10 June; the 8 calls of 11–13 June.
    (week,) = weeks.json()["data"]
    assert week["bucket_start"] == "2024-06-10"
    assert week["calls"] == 8
    # Accept seconds [10, 20, 45, 60, 90, 300]: the median is (45 + 60) / 2.
    assert week["accept_p50_s"] == 52.5
    months = await anon_client.get(
        "/api/v1/dispatch/kpis",
        params={**base, "from": "2024-05-31", "bucket": "month"},
        headers=admin,
    )
    assert [(r["bucket_start"], r["calls"]) for r in months.json()["data"]] == [
        ("2024-05-01", 0),
        ("2024-06-01", 8),
    ]
    # The 12th alone: C6 at its first instant is in, C7 one second before is not.
    only = await anon_client.get(
        "/api/v1/dispatch/kpis",
        params={**base, "from": "2024-06-12", "to": "2024-06-12"},
        headers=admin,
    )
    assert [r["calls"] for r in only.json()["data"]] == [6]


async def test_an_area_and_its_grids(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, day: dict[str, Any]
) -> None:
    where: AreaIds = day["where"]
    other: AreaIds = day["other"]
    dispatcher = await dispatcher_of(session, settings, where.community)
    params = {"from": "2024-06-12", "to": "2024-06-12"}
    # The community, the dispatcher's own when no area is named: C1–C6 and C9.
    whole = await anon_client.get(
        "/api/v1/dispatch/kpis", params=params, headers=dispatcher.headers
    )
    assert whole.status_code == 200, whole.text
    (row,) = whole.json()["data"]
    assert row["area"]["id"] == str(where.community)
    assert row["calls"] == 7
    # Accepted: [20, 30, 45, 60, 90, 300] → 4 of 7 within 60 s = 57.1 %.
    assert row["accepted_within_60s_pct"] == 57.1
    by_grid = await anon_client.get(
        "/api/v1/dispatch/kpis", params={**params, "by": "grid"}, headers=dispatcher.headers
    )
    rows = {r["area"]["id"]: r for r in by_grid.json()["data"]}
    grids = (
        await session.execute(
            text(
                "SELECT count(*) FROM area g JOIN area b ON b.id = g.parent_id "
                "WHERE g.level = 'grid' AND b.parent_id = :c"
            ),
            {"c": where.community},
        )
    ).scalar_one()
    assert len(rows) == grids
    assert _figures(rows[str(where.grid)]) == GRID_DAY
    assert rows[str(other.grid)]["calls"] == 1
    assert rows[str(other.grid)]["accept_p50_s"] == 30.0
    assert sum(r["calls"] for r in rows.values()) == 7


async def test_who_may_ask_and_bad_ranges(
    anon_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    day: dict[str, Any],
) -> None:
    where: AreaIds = day["where"]
    other_community = (
        await session.execute(
            text(
                "SELECT id FROM area WHERE level = 'community' AND id <> :c ORDER BY code LIMIT 1"
            ),
            {"c": where.community},
        )
    ).scalar_one()
    elsewhere = await dispatcher_of(session, settings, other_community)
    mine = await dispatcher_of(session, settings, where.community)
    url = "/api/v1/dispatch/kpis"
    grid = {"area_id": str(where.grid)}
    assert_problem(await client.get(url, params=grid), 403, "not_staff")
    assert_problem(
        await anon_client.get(url, params=grid, headers=elsewhere.headers), 403, "outside_your_area"
    )
    assert_problem(
        await anon_client.get(url, params={"area_id": str(uuid.uuid4())}, headers=mine.headers),
        404,
        "not_found",
    )
    admin = await _admin(session, settings)
    assert_problem(await anon_client.get(url, headers=admin), 422, "area_required")
    assert_problem(
        await anon_client.get(
            url, params={**grid, "from": "2024-06-12", "to": "2024-06-11"}, headers=admin
        ),
        422,
        "invalid_range",
    )
    assert_problem(
        await anon_client.get(
            url, params={**grid, "from": "2020-01-01", "to": "2024-06-11"}, headers=admin
        ),
        422,
        "range_too_long",
    )
    assert_problem(
        await anon_client.get(url, params={**grid, "bucket": "year"}, headers=admin),
        422,
        "validation_error",
    )
    # The longest range allowed is answered.
    longest = await anon_client.get(
        url,
        params={**grid, "from": "2023-06-13", "to": "2024-06-12", "bucket": "month"},
        headers=admin,
    )
    assert longest.status_code == 200, longest.text
    assert sum(r["calls"] for r in longest.json()["data"]) == 7  # C1–C7


async def test_a_call_through_the_services_is_counted(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    """Pressed, accepted, on site, resolved, rated and disputed through the
    API: the KPIs read the events the services write."""
    lat, lng = 22.77, 113.93
    await clear_duty_near(session, lat, lng, 5000)
    team = await make_team(session, settings, *offset(lat, lng, 40, 30), members=2)
    resident = await make_resident(session, settings)
    where = await areas.locate_ids(session, lat, lng)
    dispatcher = await dispatcher_of(session, settings, where.community)
    pressed = await anon_client.post(
        "/api/v1/calls",
        json={"location": {"lat": lat, "lng": lng, "accuracy_m": 8}, "category": "visit"},
        headers=resident.headers,
    )
    assert pressed.status_code == 201, pressed.text
    call_id = pressed.json()["id"]
    member = team.members[0]
    offers = (await anon_client.get("/api/v1/offers?status=open", headers=member.headers)).json()
    offer = next(o for o in offers["data"] if o["call_id"] == call_id)
    accepted = await anon_client.post(
        f"/api/v1/offers/{offer['id']}/accept", headers=member.headers
    )
    assert accepted.status_code == 200, accepted.text
    for step in ("on_site", "resolved"):
        moved = await anon_client.post(
            f"/api/v1/calls/{call_id}/progress", json={"status": step}, headers=member.headers
        )
        assert moved.status_code == 200, moved.text
    rated = await anon_client.post(
        f"/api/v1/calls/{call_id}/rating", json={"stars": 5}, headers=resident.headers
    )
    assert rated.status_code == 201, rated.text
    disputed = await anon_client.post(
        f"/api/v1/calls/{call_id}/dispute", json={"reason": "没有解决"}, headers=resident.headers
    )
    assert disputed.status_code == 200, disputed.text
    today = datetime.fromisoformat(pressed.json()["created_at"]).astimezone(SHANGHAI).date()
    answer = await anon_client.get(
        "/api/v1/dispatch/kpis",
        params={"area_id": str(where.grid), "from": str(today), "to": str(today)},
        headers=dispatcher.headers,
    )
    assert answer.status_code == 200, answer.text
    (row,) = answer.json()["data"]
    # One transaction per request, all in the test's: the steps share its
    # clock, so every duration is 0 s.
    assert _figures(row) == {
        "calls": 1,
        "resolved": 1,
        "accepted_within_60s_pct": 100.0,
        "accept_p50_s": 0.0,
        "accept_p90_s": 0.0,
        "on_site_p50_s": 0.0,
        "resolved_pct": 100.0,
        "escalated_pct": 0.0,  # the dispute's return to the community is no escalation
        "disputed_pct": 100.0,
        "satisfaction_avg": 5.0,
        "satisfied_pct": 100.0,
        "response_rate_pct": 100.0,
        "resolution_rate_pct": 0.0,
    }
