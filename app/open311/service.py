"""Open311 GeoReport v2 over calls (docs/open311.md).

Service codes are the call categories. A request is a call opened through
`app.calls.service.open_call` with the API key as its origin (the same
locate, dispatch and events as a press); it has no resident: the contact
fields of the spec (email, phone, names, device and account ids) are not
kept, since the requesting system keeps its own users. A key sees only the
requests it filed, and of them the public fields: no responder, no team."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import service as calls
from app.core.config import Settings
from app.core.errors import AppError
from app.models.call import CallCategory, CallCreate, CallStatus
from app.models.geo import Point
from app.notifications.alerts import category_label, status_text

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
SCOPE = "open311"
# The spec's default window for GET requests without dates, and its limit.
DEFAULT_WINDOW = timedelta(days=90)
MAX_REQUESTS = 1000
AGENCY = "党群户联网（街道党工委）"


class Open311Error(AppError):
    """An error in the spec's form (the handler of the Open311 app renders
    it, whatever the format)."""


def closed(status: str) -> bool:
    """The spec's open/closed: closed once resolved or cancelled."""
    return status in (CallStatus.resolved.value, CallStatus.cancelled.value)


def services() -> list[dict[str, Any]]:
    return [
        {
            "service_code": category.value,
            "service_name": category_label(category.value),
            "description": f"{category_label(category.value)} / {category_label(category, 'en')}",
            "metadata": False,
            "type": "realtime",
            "keywords": f"{category.value}, {category_label(category.value, 'en')}",
            "group": "党员一键呼叫",
        }
        for category in CallCategory
    ]


def service_definition(service_code: str) -> dict[str, Any]:
    category = _category(service_code)
    return {"service_code": category.value, "attributes": []}


def _category(service_code: str | None) -> CallCategory:
    try:
        return CallCategory(service_code or "")
    except ValueError:
        raise Open311Error(f"service_code {service_code!r} not found", status=404) from None


def _float(fields: dict[str, str], name: str) -> float | None:
    raw = fields.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise Open311Error(f"{name} must be a number", status=400) from None


async def post_request(
    session: AsyncSession, settings: Settings, key_id: uuid.UUID, fields: dict[str, str]
) -> list[dict[str, Any]]:
    """A request becomes a call, located by lat/long (we cannot geocode an
    address_string alone)."""
    category = _category(fields.get("service_code"))
    lat, lng = _float(fields, "lat"), _float(fields, "long")
    if lat is None or lng is None:
        raise Open311Error(
            "lat and long are required (an address_string alone cannot be located)", status=400
        )
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise Open311Error("lat/long out of range", status=400)
    description = (fields.get("description") or "").strip() or None
    if description is not None and len(description) > 500:
        raise Open311Error("description is longer than 500 characters", status=400)
    body = CallCreate(location=Point(lat=lat, lng=lng), category=category, note=description)
    opened = await calls.open_call(session, settings, calls.Origin.of_api_key(key_id), body)
    return [
        {
            "service_request_id": str(opened.call.id),
            "service_notice": "已派发给附近的党员服务队 (offered to the nearest team on duty)",
        }
    ]


@dataclass(frozen=True)
class RequestFilter:
    ids: list[uuid.UUID] | None
    codes: list[str] | None
    start: datetime | None
    end: datetime | None
    statuses: list[str] | None


def _split(raw: str | None) -> list[str] | None:
    if raw is None or raw.strip() == "":
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _date(name: str, raw: str | None) -> datetime | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        found = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(f"{name} must be a w3 date-time", status=400) from None
    if found.tzinfo is None:
        raise Open311Error(f"{name} needs a time zone", status=400)
    return found


def request_filter(
    service_request_id: str | None,
    service_code: str | None,
    start_date: str | None,
    end_date: str | None,
    status: str | None,
) -> RequestFilter:
    ids = _split(service_request_id)
    if ids is not None:
        try:
            # The spec: service_request_id overrides every other filter.
            return RequestFilter([uuid.UUID(i) for i in ids], None, None, None, None)
        except ValueError:
            raise Open311Error("service_request_id must be request ids", status=400) from None
    codes = _split(service_code)
    for code in codes or []:
        _category(code)
    statuses = _split(status)
    if statuses is not None and not set(statuses) <= {"open", "closed"}:
        raise Open311Error("status is open or closed", status=400)
    return RequestFilter(
        None, codes, _date("start_date", start_date), _date("end_date", end_date), statuses
    )


_CLOSED_SQL = "c.status IN ('resolved', 'cancelled')"
_REQUESTS = text(
    f"""
    SELECT c.id, c.status, c.category, c.note, c.created_at, c.updated_at,
           ST_Y(c.location::geometry) AS lat, ST_X(c.location::geometry) AS lng,
           g.name AS grid_name
    FROM call c JOIN area g ON g.id = c.grid_id
    WHERE c.api_key_id = :key
      AND (CAST(:ids AS uuid[]) IS NULL OR c.id = ANY(CAST(:ids AS uuid[])))
      AND (CAST(:codes AS varchar[]) IS NULL OR c.category = ANY(CAST(:codes AS varchar[])))
      AND (CAST(:start AS timestamptz) IS NULL OR c.created_at >= CAST(:start AS timestamptz))
      AND (CAST(:end AS timestamptz) IS NULL OR c.created_at <= CAST(:end AS timestamptz))
      AND (CAST(:want_open AS boolean) IS NULL
           OR (CAST(:want_open AS boolean) AND NOT {_CLOSED_SQL})
           OR (CAST(:want_closed AS boolean) AND {_CLOSED_SQL}))
    ORDER BY c.created_at DESC
    LIMIT :limit
    """  # noqa: S608 - constant fragments, values are bound
)


def _public(row: Any) -> dict[str, Any]:
    """The spec's fields of a request, as its requester may see them: its
    own point and description (rounded and gone once the call is
    anonymised), the status, and what the status means; nobody's name."""
    notes = status_text(row.status) or status_text(CallStatus.offered.value)
    return {
        "service_request_id": str(row.id),
        "status": "closed" if closed(row.status) else "open",
        "status_notes": notes,
        "service_name": category_label(row.category),
        "service_code": row.category,
        "description": row.note,
        "agency_responsible": AGENCY,
        "service_notice": None,
        "requested_datetime": row.created_at.isoformat(),
        "updated_datetime": row.updated_at.isoformat(),
        "expected_datetime": None,
        "address": row.grid_name,
        "address_id": None,
        "zipcode": None,
        "lat": row.lat,
        "long": row.lng,
        "media_url": None,
    }


async def list_requests(
    session: AsyncSession, key_id: uuid.UUID, wanted: RequestFilter
) -> list[dict[str, Any]]:
    start, end = wanted.start, wanted.end
    if wanted.ids is None and start is None and end is None:
        start = datetime.now().astimezone() - DEFAULT_WINDOW
    statuses = wanted.statuses
    rows = (
        await session.execute(
            _REQUESTS,
            {
                "key": key_id,
                "ids": wanted.ids,
                "codes": wanted.codes,
                "start": start,
                "end": end,
                "want_open": None if statuses is None else "open" in statuses,
                "want_closed": None if statuses is None else "closed" in statuses,
                "limit": MAX_REQUESTS,
            },
        )
    ).all()
    return [_public(row) for row in rows]


async def one_request(
    session: AsyncSession, key_id: uuid.UUID, service_request_id: str
) -> list[dict[str, Any]]:
    try:
        call_id = uuid.UUID(service_request_id)
    except ValueError:
        raise Open311Error("service_request_id not found", status=404) from None
    found = await list_requests(session, key_id, RequestFilter([call_id], None, None, None, None))
    if not found:
        # Another key's request is not found either, as if it did not exist.
        raise Open311Error("service_request_id not found", status=404)
    return found
