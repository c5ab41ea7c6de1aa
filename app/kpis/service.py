"""The dispatch platform's KPIs, computed by PostgreSQL from the event log in
one statement per request. docs/kpis.md defines every figure; this is the
one place that computes them (the API, its CSV and the monthly workbook all
read `rows`).

A bucket holds the calls pressed in it (`call.created_at`, in the
district's time zone); what became of each call is read from its
`call.updated` events, whose `data` is the call's snapshot as it then stood
(its `status`, and `disputed` once the caller disputed it), and from its
rating and `disputed_at`.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import tree
from app.core.config import Settings
from app.core.errors import Forbidden, NotFound, Unprocessable
from app.core.months import Month
from app.identity.auth import PersonPrincipal
from app.models.area import AreaRef
from app.models.call import CallStatus, EventType
from app.models.kpi import KpiBucket, KpiGroup, KpiRow
from app.stars import service as stars

# "Accepted within 60 s" (the field's name says it: no setting).
FAST_ACCEPT_SECONDS = 60
SATISFIED_STARS = 4

_S = CallStatus
# Rounded in SQL: percentages and seconds to 0.1, the mean of stars to 0.01.
_PCT = "CAST(round(100.0 * ({part}) / nullif({whole}, 0), 1) AS float8)"


def _pct(part: str, whole: str) -> str:
    return _PCT.format(part=part, whole=whole)


# `:by` 'area': one group, the area asked; 'grid': each grid inside it.
# Every group × every bucket of the range is answered, empty ones too.
_ROWS = text(
    f"""
    WITH groups AS (
        SELECT a.id, a.name, a.code FROM area a
        WHERE CAST(:by AS text) = 'area' AND a.id = CAST(:area AS uuid)
        UNION ALL
        SELECT g.id, g.name, g.code FROM ({tree.grids_within(":area")}) g
        WHERE CAST(:by AS text) = 'grid'
    ),
    buckets AS (
        SELECT CAST(s AS date) AS bucket_start
        FROM generate_series(date_trunc(CAST(:unit AS text), CAST(:first AS timestamp)),
                             CAST(:last AS timestamp), CAST(CAST(:step AS text) AS interval)) s
    ),
    calls AS (
        SELECT CASE WHEN CAST(:by AS text) = 'grid' THEN c.grid_id
                    ELSE CAST(:area AS uuid) END AS group_id,
               CAST(date_trunc(CAST(:unit AS text), c.created_at AT TIME ZONE CAST(:tz AS text))
                    AS date) AS bucket_start,
               extract(epoch FROM ev.accepted_at - c.created_at) AS accept_s,
               extract(epoch FROM ev.on_site_at - c.created_at) AS on_site_s,
               ev.resolved, ev.escalated, c.disputed_at IS NOT NULL AS disputed, r.stars
        FROM call c
        JOIN area g ON g.id = c.grid_id
        LEFT JOIN rating r ON r.call_id = c.id
        CROSS JOIN LATERAL (
            SELECT min(e.at) FILTER (WHERE e.data->>'status' = '{_S.accepted.value}')
                     AS accepted_at,
                   min(e.at) FILTER (WHERE e.data->>'status' = '{_S.on_site.value}')
                     AS on_site_at,
                   coalesce(bool_or(e.data->>'status' = '{_S.resolved.value}'), false)
                     AS resolved,
                   coalesce(bool_or(e.data->>'status' = '{_S.escalated.value}'
                       AND NOT coalesce(CAST(e.data->>'disputed' AS boolean), false)), false)
                     AS escalated
            FROM event e
            WHERE e.call_id = c.id AND e.type = '{EventType.call_updated.value}'
        ) ev
        WHERE CAST(:area AS uuid) IN (c.grid_id, g.parent_id, c.community_id, c.street_id)
          AND c.created_at >= :start AND c.created_at < :end
    ),
    stats AS (
        SELECT group_id, bucket_start, count(*) AS calls,
               count(*) FILTER (WHERE resolved) AS resolved,
               {_pct(f"count(*) FILTER (WHERE accept_s <= {FAST_ACCEPT_SECONDS})", "count(*)")}
                 AS accepted_within_60s_pct,
               CAST(round(CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY accept_s)
                    AS numeric), 1) AS float8) AS accept_p50_s,
               CAST(round(CAST(percentile_cont(0.9) WITHIN GROUP (ORDER BY accept_s)
                    AS numeric), 1) AS float8) AS accept_p90_s,
               CAST(round(CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY on_site_s)
                    AS numeric), 1) AS float8) AS on_site_p50_s,
               {_pct("count(*) FILTER (WHERE resolved)", "count(*)")} AS resolved_pct,
               {_pct("count(*) FILTER (WHERE escalated)", "count(*)")} AS escalated_pct,
               {_pct("count(*) FILTER (WHERE disputed)", "count(*) FILTER (WHERE resolved)")}
                 AS disputed_pct,
               CAST(round(avg(stars), 2) AS float8) AS satisfaction_avg,
               {_pct(f"count(*) FILTER (WHERE stars >= {SATISFIED_STARS})", "count(stars)")}
                 AS satisfied_pct,
               {_pct("count(accept_s)", "count(*)")} AS response_rate_pct,
               {_pct("count(*) FILTER (WHERE resolved AND NOT disputed)", "count(*)")}
                 AS resolution_rate_pct
        FROM calls GROUP BY group_id, bucket_start
    )
    SELECT g.id AS area_id, g.name AS area_name, b.bucket_start,
           coalesce(s.calls, 0) AS calls, coalesce(s.resolved, 0) AS resolved,
           s.accepted_within_60s_pct, s.accept_p50_s,
           s.accept_p90_s, s.on_site_p50_s, s.resolved_pct, s.escalated_pct, s.disputed_pct,
           s.satisfaction_avg, s.satisfied_pct, s.response_rate_pct, s.resolution_rate_pct
    FROM groups g CROSS JOIN buckets b
    LEFT JOIN stats s ON s.group_id = g.id AND s.bucket_start = b.bucket_start
    ORDER BY b.bucket_start, g.code, g.id
    """  # noqa: S608 - constants of our modules, values are bound
)

_STEPS = {KpiBucket.day: "1 day", KpiBucket.week: "1 week", KpiBucket.month: "1 month"}


async def area_for(
    session: AsyncSession, person: PersonPrincipal, area_id: uuid.UUID | None
) -> AreaRef:
    """The area asked (a dispatcher's own when left out; an admin must name
    one, 422 `area_required`; unknown 404), which must lie within the
    dispatcher's area (else 403 `outside_your_area`); an admin's anywhere."""
    chosen = await stars.area_of(session, person, area_id)
    found = await tree.lineage(session, chosen)
    if found is None:  # stars.area_of has checked it exists
        raise NotFound("No such area.")
    if not person.is_admin and (
        person.dispatcher_area is None or not found.within(person.dispatcher_area.id)
    ):
        raise Forbidden(
            "This area is not within your community or street.", code="outside_your_area"
        )
    return AreaRef(id=chosen, name=found.name)


def days_of(month: Month) -> tuple[date, date]:
    """A month's first and last day."""
    following = month.next()
    return date(month.year, month.month, 1), date(following.year, following.month, 1) - timedelta(
        days=1
    )


def check_range(first: date, last: date, settings: Settings) -> None:
    """`from` ≤ `to` (422 `invalid_range`), at most KPI_MAX_DAYS days, both
    counted (422 `range_too_long`)."""
    if last < first:
        raise Unprocessable("`to` comes before `from`.", code="invalid_range")
    days = (last - first).days + 1
    if days > settings.kpi_max_days:
        raise Unprocessable(
            f"Ask for at most {settings.kpi_max_days} days at once, not {days}.",
            code="range_too_long",
        )


async def rows(
    session: AsyncSession,
    settings: Settings,
    area_id: uuid.UUID,
    first: date,
    last: date,
    bucket: KpiBucket,
    by: KpiGroup = KpiGroup.area,
) -> list[KpiRow]:
    """The KPIs of the calls pressed in the area from `first` to `last`
    (days in the district, both included), by bucket; by grid if asked."""
    check_range(first, last, settings)
    zone = settings.zone
    found = await session.execute(
        _ROWS,
        {
            "area": area_id,
            "by": by.value,
            "unit": bucket.value,
            "step": _STEPS[bucket],
            "tz": zone.key,
            "first": datetime.combine(first, time()),
            "last": datetime.combine(last, time()),
            "start": datetime.combine(first, time(), tzinfo=zone),
            "end": datetime.combine(last + timedelta(days=1), time(), tzinfo=zone),
        },
    )
    return [
        KpiRow.model_validate({"area": {"id": row.area_id, "name": row.area_name}, **row._asdict()})
        for row in found
    ]


# The CSV's columns: the row's fields, the area flattened into two.
CSV_COLUMNS: tuple[str, ...] = (
    "area_id",
    "area_name",
    *(name for name in KpiRow.model_fields if name != "area"),
)


def to_csv(data: list[KpiRow]) -> str:
    """The rows as CSV (RFC 4180): a header row of `CSV_COLUMNS`, then one
    line per row; an empty cell for null."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in data:
        values = row.model_dump(mode="json")
        area = values.pop("area")
        writer.writerow(
            [area["id"], area["name"], *("" if values[k] is None else values[k] for k in values)]
        )
    return out.getvalue()
