"""GET /dispatch/reports/{month}.xlsx: the workbook read back with openpyxl,
its sheets, headers and values against the fixture day
(tests/kpis/conftest.py) and what the KPI, quota and stars routes answer."""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas.service import AreaIds
from app.core.config import Settings
from app.kpis import report
from tests.kpis.conftest import LAT, LNG, SHANGHAI, dispatcher_of
from tests.principals import bearer, make_person, token_for
from tests.problems import assert_problem
from tests.scene import make_team

URL = "/api/v1/dispatch/reports/2024-06.xlsx"


async def _logged(
    session: AsyncSession, team: uuid.UUID, person: uuid.UUID, kind: str, at: datetime
) -> None:
    await session.execute(
        text(
            "INSERT INTO activity (id, person_id, team_id, kind, source, at) "
            "VALUES (:id, :p, :t, :k, 'logged', :at)"
        ),
        {"id": uuid.uuid4(), "p": person, "t": team, "k": kind, "at": at},
    )


def _sheet_rows(body: bytes, title: str) -> list[list[Any]]:
    """A sheet's rows, each without the empty cells that pad it to the
    sheet's width."""
    book = load_workbook(io.BytesIO(body), read_only=True)
    return [_trim(list(row)) for row in book[title].iter_rows(values_only=True)]


def _trim(cells: list[Any]) -> list[Any]:
    while cells and cells[-1] is None:
        cells.pop()
    return cells


async def test_the_monthly_workbook(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings, day: dict[str, Any]
) -> None:
    where: AreaIds = day["where"]
    other: AreaIds = day["other"]
    team = await make_team(session, settings, LAT, LNG, members=3, on_duty=0, name="报表队")
    full_time, part_time = team.members[0].person_id, team.members[1].person_id
    june = datetime(2024, 6, 5, 10, tzinfo=SHANGHAI)
    # The full-time member: 2 activities in June, one short of the quota of 3;
    # the part-time member 1. The team's June: 3 (one more in July is not).
    await _logged(session, team.id, full_time, "visit", june)
    await _logged(session, team.id, full_time, "safety", june + timedelta(days=1))
    await _logged(session, team.id, part_time, "event", june + timedelta(days=2))
    await _logged(session, team.id, part_time, "event", datetime(2024, 7, 1, tzinfo=SHANGHAI))
    dispatcher = await dispatcher_of(session, settings, where.community)

    answer = await anon_client.get(URL, headers=dispatcher.headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == report.XLSX
    assert "attachment" in answer.headers["content-disposition"]
    book = load_workbook(io.BytesIO(answer.content), read_only=True)
    assert book.sheetnames == [report.SHEET_KPIS, report.SHEET_ACTIVITIES, report.SHEET_STARS]

    # Sheet 1: a row per grid of the community, then the community's total,
    # the same figures as the JSON of GET /dispatch/kpis for June.
    kpis = _sheet_rows(answer.content, report.SHEET_KPIS)
    assert kpis[0] == list(report.KPI_HEADERS.values())
    assert kpis[0][:2] == ["网格 Grid", "呼叫数 Calls"]
    params = {"area_id": str(where.community), "from": "2024-06-01", "to": "2024-06-30"}
    by_grid = (
        await anon_client.get(
            "/api/v1/dispatch/kpis",
            params={**params, "bucket": "month", "by": "grid"},
            headers=dispatcher.headers,
        )
    ).json()["data"]
    whole = (
        await anon_client.get(
            "/api/v1/dispatch/kpis",
            params={**params, "bucket": "month"},
            headers=dispatcher.headers,
        )
    ).json()["data"]
    fields = [name for name in report.KPI_HEADERS if name != "area"]
    expected = [[row["area"]["name"], *(row[f] for f in fields)] for row in by_grid]
    expected.append([f"{report.TOTAL}: {whole[0]['area']['name']}", *(whole[0][f] for f in fields)])
    assert kpis[1:] == [_trim(line) for line in expected]
    names = {row["area"]["id"]: row["area"]["name"] for row in by_grid}
    by_name = {line[0]: dict(zip(fields, line[1:], strict=False)) for line in kpis[1:]}
    # By hand: the grid's June holds C1–C8 (accept seconds 10, 20, 45, 60, 90,
    # 300: median 52.5), the other grid C9, the community all nine.
    assert by_name[names[str(where.grid)]]["calls"] == 8
    assert by_name[names[str(where.grid)]]["accept_p50_s"] == 52.5
    assert by_name[names[str(other.grid)]]["calls"] == 1
    assert kpis[-1][1] == 9

    # Sheet 2: the team's June activities, then who is short of the quota.
    activities = _sheet_rows(answer.content, report.SHEET_ACTIVITIES)
    assert activities[0] == list(report.TEAM_HEADERS)
    team_line = next(line for line in activities if line[0] == "报表队")
    assert team_line[2] == 3
    header_at = activities.index(list(report.QUOTA_HEADERS))
    short = {line[0]: line for line in activities[header_at + 1 :]}
    quota = (
        await anon_client.get(
            "/api/v1/dispatch/quota", params={"month": "2024-06"}, headers=dispatcher.headers
        )
    ).json()
    assert len(short) == len(quota["data"])
    mine = short["报表队队员0"]
    assert mine[1:] == ["报表队", 2, 1]

    # Sheet 3: the month's stars as GET /stars ranks them.
    stars = _sheet_rows(answer.content, report.SHEET_STARS)
    assert stars[0] == list(report.STAR_HEADERS)
    ranked = (
        await anon_client.get(
            "/api/v1/stars",
            params={"month": "2024-06", "area_id": str(where.community)},
            headers=dispatcher.headers,
        )
    ).json()
    expected_stars = [
        [award, rank, s["display_name"], s["team"]["name"], s["score"]]
        for award, ranking in ((report.GOVERNANCE, ranked["governance"]),
                               (report.SERVICE, ranked["service"]))
        for rank, s in enumerate(ranking, start=1)
    ]  # fmt: skip
    assert stars[1:] == expected_stars
    assert any(line[2] == "报表队队员0" for line in stars[1:]), "the member's June scores"


async def test_who_may_have_the_report(
    anon_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    day: dict[str, Any],
) -> None:
    where: AreaIds = day["where"]
    assert_problem(await client.get(URL), 403, "not_staff")
    admin_id = await make_person(session, "报表管理员", is_admin=True)
    admin = bearer(await token_for(session, settings, admin_id))
    assert_problem(await anon_client.get(URL, headers=admin), 422, "area_required")
    grid_report = await anon_client.get(URL, params={"area_id": str(where.grid)}, headers=admin)
    assert grid_report.status_code == 200, grid_report.text
    kpis = _sheet_rows(grid_report.content, report.SHEET_KPIS)
    assert [line[1] for line in kpis[1:]] == [8, 8], "the grid, then the grid as the total"
    assert_problem(
        await anon_client.get("/api/v1/dispatch/reports/1999-12.xlsx", headers=admin),
        422,
        "invalid_month",
    )
    assert_problem(
        await anon_client.get("/api/v1/dispatch/reports/2024-13.xlsx", headers=admin),
        422,
        "validation_error",
    )
