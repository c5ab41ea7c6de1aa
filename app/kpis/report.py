"""The monthly report of an area as an XLSX workbook (GET
/dispatch/reports/{month}.xlsx): nothing is computed here, every figure is
read from the module that owns it.

1. 网格指标 Grid KPIs: `app.kpis.service.rows` for the month, one row per
   grid of the area, then the area's own row (合计 Total).
2. 活动与任务 Activities and quota: each team of the area with its
   activities of the month (`app.activities.counts`), then the full-time
   members short of the monthly quota (`app.activities.quota`).
3. 星级 Stars: the month's Governance and Service stars (`app.stars.service`).

Headers are Chinese first, English second ("呼叫数 Calls").
"""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.activities import counts, quota
from app.areas import tree
from app.core.config import Settings
from app.core.months import Month
from app.kpis import service as kpis
from app.models.area import AreaRef
from app.models.kpi import KpiBucket, KpiGroup, KpiRow
from app.models.star import Star
from app.stars import service as stars

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

SHEET_KPIS = "网格指标 Grid KPIs"
SHEET_ACTIVITIES = "活动与任务 Activities"
SHEET_STARS = "星级 Stars"

# KpiRow's fields, in order, with their headers.
KPI_HEADERS: dict[str, str] = {
    "area": "网格 Grid",
    "calls": "呼叫数 Calls",
    "resolved": "办结数 Resolved",
    "accepted_within_60s_pct": "60秒内接单率% Accepted within 60 s %",
    "accept_p50_s": "接单时长中位数(秒) Accept p50 (s)",
    "accept_p90_s": "接单时长P90(秒) Accept p90 (s)",
    "on_site_p50_s": "到场时长中位数(秒) On site p50 (s)",
    "resolved_pct": "办结率% Resolved %",
    "escalated_pct": "上报率% Escalated %",
    "disputed_pct": "异议率% Disputed %",
    "satisfaction_avg": "平均星级 Mean stars",
    "satisfied_pct": "满意率% Satisfied %",
    "response_rate_pct": "响应率% Response rate %",
    "resolution_rate_pct": "解决率% Resolution rate %",
}
TOTAL = "合计 Total"
TEAM_HEADERS = ("服务队 Team", "网格 Grid", "本月活动数 Activities this month")
QUOTA_HEADERS = ("党员 Member", "服务队 Team", "本月活动数 Activities", "差额 Short by")
STAR_HEADERS = ("奖项 Award", "名次 Rank", "党员 Member", "服务队 Team", "得分 Score")
QUOTA_TITLE = "未完成每月活动任务的专职党员 Full-time members short of the monthly quota"
GOVERNANCE = "治理之星 Governance Star"
SERVICE = "服务之星 Service Star"

# The teams whose grid lies in the area, by grid then name.
_TEAMS = text(
    f"""
    SELECT t.id, t.name, g.name AS grid_name
    FROM ({tree.grids_within(":area")}) g JOIN team t ON t.grid_id = g.id
    ORDER BY g.code, t.name, t.id
    """  # noqa: S608 - a fragment of app.areas.tree, values are bound
)


def _header(sheet: Worksheet, headers: tuple[str, ...] | list[str]) -> None:
    sheet.append(list(headers))
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)


def _kpi_line(row: KpiRow, label: str) -> list[Any]:
    values = row.model_dump(exclude={"area", "bucket_start"})
    return [label, *(values[name] for name in KPI_HEADERS if name != "area")]


async def _kpi_sheet(
    sheet: Worksheet, session: AsyncSession, settings: Settings, area: AreaRef, month: Month
) -> None:
    first, last = kpis.days_of(month)
    by_grid = await kpis.rows(
        session, settings, area.id, first, last, KpiBucket.month, KpiGroup.grid
    )
    whole = await kpis.rows(session, settings, area.id, first, last, KpiBucket.month)
    _header(sheet, list(KPI_HEADERS.values()))
    for row in by_grid:
        sheet.append(_kpi_line(row, row.area.name))
    for row in whole:
        sheet.append(_kpi_line(row, f"{TOTAL}: {row.area.name}"))


async def _activities_sheet(
    sheet: Worksheet, session: AsyncSession, settings: Settings, area: AreaRef, month: Month
) -> None:
    _header(sheet, TEAM_HEADERS)
    for team in await session.execute(_TEAMS, {"area": area.id}):
        done = await counts.team_activities_in_month(session, team.id, month, settings.zone)
        sheet.append([team.name, team.grid_name, done])
    sheet.append([])
    required = settings.monthly_activity_quota
    sheet.append([f"{QUOTA_TITLE} ({required})"])
    _header(sheet, QUOTA_HEADERS)
    for short in await quota.shortfalls(session, settings, month, area.id):
        sheet.append([short.display_name, short.team.name, short.activities, short.short_by])


def _star_lines(award: str, ranked: list[Star]) -> list[list[Any]]:
    return [
        [award, rank, star.display_name, star.team.name, star.score]
        for rank, star in enumerate(ranked, start=1)
    ]


async def _stars_sheet(
    sheet: Worksheet, session: AsyncSession, settings: Settings, area: AreaRef, month: Month
) -> None:
    ranking = await stars.rankings(session, settings, area.id, month)
    _header(sheet, STAR_HEADERS)
    for line in _star_lines(GOVERNANCE, ranking.governance) + _star_lines(SERVICE, ranking.service):
        sheet.append(line)


async def workbook(session: AsyncSession, settings: Settings, area: AreaRef, month: Month) -> bytes:
    """The area's report for `month`, as the bytes of an XLSX file."""
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = SHEET_KPIS
    await _kpi_sheet(first, session, settings, area, month)
    await _activities_sheet(book.create_sheet(SHEET_ACTIVITIES), session, settings, area, month)
    await _stars_sheet(book.create_sheet(SHEET_STARS), session, settings, area, month)
    book.properties.title = f"{area.name} {month} 月报 Monthly report"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
