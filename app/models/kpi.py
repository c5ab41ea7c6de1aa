"""The dispatch platform's KPIs (GET /dispatch/kpis): one row per area and
bucket of days, each figure defined in docs/kpis.md."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel
from pydantic import Field as PydanticField

from app.models.area import AreaRef

D = PydanticField


class KpiBucket(StrEnum):
    """How the days of the range are grouped, in the district's time zone."""

    day = "day"
    week = "week"  # Monday to Sunday
    month = "month"


class KpiGroup(StrEnum):
    """Whose rows: the area asked, or each of its grids."""

    area = "area"
    grid = "grid"


class KpiRow(BaseModel):
    area: AreaRef = D(description="the area the row counts: the one asked, or one of its grids")
    bucket_start: date = D(
        description="the bucket's first day in the district's time zone (a Monday for weeks, "
        "the 1st for months); the first and last bucket hold only the days of the range"
    )
    calls: int = D(description="calls pressed in the bucket, in the area")
    resolved: int = D(description="of those calls, how many were resolved (at least once)")
    accepted_within_60s_pct: float | None = D(
        description="% of those calls first accepted within 60 s of the press; null without calls"
    )
    accept_p50_s: float | None = D(
        description="median seconds from press to first accept, over the accepted calls "
        "(percentile_cont); null when none was accepted"
    )
    accept_p90_s: float | None = D(
        description="90th percentile of the same seconds (percentile_cont); null when none"
    )
    on_site_p50_s: float | None = D(
        description="median seconds from press to the responder first on site; null when none"
    )
    resolved_pct: float | None = D(
        description="% of the calls resolved at least once; null without calls"
    )
    escalated_pct: float | None = D(
        description="% of the calls escalated to dispatchers for want of a team (a dispute's "
        "return to the community is not counted here); null without calls"
    )
    disputed_pct: float | None = D(
        description="% of the resolved calls whose caller disputed the resolution; null when "
        "none was resolved"
    )
    satisfaction_avg: float | None = D(
        description="mean stars (1–5) of the ratings of these calls; null without ratings"
    )
    satisfied_pct: float | None = D(
        description="% of those ratings at 4 or 5 stars: the 12345 hotline's satisfaction rate "
        "(满意率); null without ratings"
    )
    response_rate_pct: float | None = D(
        description="the 12345 hotline's response rate (响应率): % of the calls accepted by a "
        "responder at all; null without calls"
    )
    resolution_rate_pct: float | None = D(
        description="the 12345 hotline's resolution rate (解决率): % of the calls resolved and "
        "not disputed; null without calls"
    )


class KpiList(BaseModel):
    data: list[KpiRow] = D(
        description="one row per area and bucket, by bucket then area code; every bucket of the "
        "range appears, with `calls: 0` and nulls when nothing happened"
    )
    # The paging shape of every list, so that clients read lists one way;
    # the range asked is the whole answer (at most KPI_MAX_DAYS days).
    next_cursor: str | None = D(description="always null: the rows of a range are one page")
