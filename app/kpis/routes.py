"""The dispatch platform's KPIs and monthly report (API.md 1.1, "The dispatch
platform"); docs/kpis.md defines each figure."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.core.months import Month
from app.http.deps import SessionDep, SettingsDep, StaffUser
from app.http.prefix import API_PREFIX
from app.kpis import report
from app.kpis import service as kpis
from app.models.kpi import KpiBucket, KpiGroup, KpiList

router = APIRouter(prefix=f"{API_PREFIX}/dispatch", tags=["dispatch"])

CSV = "text/csv"

AreaQuery = Annotated[
    uuid.UUID | None,
    Query(
        description="a street, community, grid branch or grid within the dispatcher's area; "
        "the dispatcher's own area when left out (an admin must name one)"
    ),
]


@router.get(
    "/kpis",
    response_model=KpiList,
    responses={
        200: {
            "content": {
                CSV: {
                    "schema": {
                        "type": "string",
                        "description": "with `Accept: text/csv`: the same rows as CSV, a header "
                        "row first (area_id, area_name, then the fields of a row in order); "
                        "an empty cell for null",
                    }
                }
            }
        }
    },
)
async def list_kpis(
    request: Request,
    user: StaffUser,
    session: SessionDep,
    settings: SettingsDep,
    area_id: AreaQuery = None,
    from_: Annotated[
        date | None,
        Query(
            alias="from",
            description="the first day counted (YYYY-MM-DD, district time); the first of the "
            "month of `to` when left out",
        ),
    ] = None,
    to: Annotated[
        date | None,
        Query(description="the last day counted, included; today (district time) when left out"),
    ] = None,
    bucket: Annotated[
        KpiBucket, Query(description="a row per day, week (Monday to Sunday) or month")
    ] = KpiBucket.day,
    by: Annotated[
        KpiGroup,
        Query(description="`area`: rows of the area asked; `grid`: a row per grid inside it"),
    ] = KpiGroup.area,
) -> Response | KpiList:
    """The dispatch KPIs of an area by day, week or month, computed from the
    event log (docs/kpis.md defines each): calls, accepted within 60 s,
    time to accept and to on-site, resolved, escalated and disputed shares,
    satisfaction, and the 12345 hotline's response and resolution rates.
    Every bucket of the range is a row, empty ones with `calls: 0` and
    nulls. With `Accept: text/csv` the same rows as CSV. For the area's
    dispatchers (and those of the areas it lies in) and admins: another area
    403 `outside_your_area`, an unknown one 404; `to` before `from` 422
    `invalid_range`, more than 366 days (as built; a deployment may allow
    more or fewer) 422 `range_too_long`."""
    area = await kpis.area_for(session, user, area_id)
    last = to or datetime.now(UTC).astimezone(settings.zone).date()
    first = from_ or last.replace(day=1)
    data = await kpis.rows(session, settings, area.id, first, last, bucket, by)
    if CSV in request.headers.get("accept", ""):
        return Response(kpis.to_csv(data), media_type=f"{CSV}; charset=utf-8")
    return KpiList(data=data, next_cursor=None)


@router.get(
    "/reports/{month}.xlsx",
    response_class=Response,
    responses={
        200: {
            "content": {report.XLSX: {"schema": {"type": "string", "format": "binary"}}},
            "description": "the workbook",
        }
    },
)
async def get_monthly_report(
    user: StaffUser,
    session: SessionDep,
    settings: SettingsDep,
    month: Annotated[
        str,
        Path(
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            description="the month, YYYY-MM in the district's time zone",
            examples=["2026-11"],
        ),
    ],
    area_id: AreaQuery = None,
) -> Response:
    """The monthly report of the dispatcher's community or street (an admin
    names the area) as an XLSX workbook: sheet 1 the month's KPIs by grid
    and for the whole area, sheet 2 each team's activities and the
    full-time members short of the monthly quota, sheet 3 the month's
    Governance and Service stars. Headers in Chinese, then English. Another
    area 403 `outside_your_area`; a month before 2000-01 422
    `invalid_month`."""
    picked = Month.parse(month)
    area = await kpis.area_for(session, user, area_id)
    body = await report.workbook(session, settings, area, picked)
    filename = f"hulian-report-{picked}.xlsx"
    return Response(
        body,
        media_type=report.XLSX,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
