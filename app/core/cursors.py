"""Opaque cursors for lists ordered newest first by (created_at, id)."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query

from app.core.errors import Unprocessable

# What `encode` writes: URL-safe base64 without padding. `decode` refuses
# anything else as `invalid_cursor`, so the pattern is only stated here, not
# enforced by FastAPI (which would answer `validation_error`).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"

Cursor = Annotated[
    str | None,
    Query(
        max_length=200,
        json_schema_extra={"pattern": CURSOR_PATTERN},
        description="the `next_cursor` of the previous page; leave out for the first page",
    ),
]
PAGE_LIMIT = "at most this many per page"
# A page's size: each list chooses its default (`limit: PageLimit = 50`).
PageLimit = Annotated[int, Query(ge=1, le=100, description=PAGE_LIMIT)]


def encode(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    """(created_at, id) of the last row of the previous page; 422 `invalid_cursor`."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise Unprocessable("The cursor is not valid.", code="invalid_cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_id = json.loads(base64.urlsafe_b64decode(padded))
        return _instant(datetime.fromisoformat(created)), uuid.UUID(row_id)
    except (ValueError, TypeError, OverflowError) as exc:
        raise Unprocessable("The cursor is not valid.", code="invalid_cursor") from exc


def _instant(at: datetime) -> datetime:
    """The time in UTC, as the driver sends it. PostgreSQL's timestamptz
    holds 4713 BC to 294276 AD, far beyond Python's years 1 to 9999, so the
    narrower bound is Python's own, in UTC: `0001-01-01T00:00+14:00` or
    `9999-12-31T23:59-14:00` are valid ISO times that no UTC datetime can
    hold (OverflowError here, not in the driver mid-request). A time without
    an offset is refused: `encode` always writes one, and the driver would
    read it in the server's zone."""
    if at.utcoffset() is None:
        raise ValueError("a cursor's time needs an offset")
    return at.astimezone(UTC)


def bounds(cursor: str | None) -> dict[str, object]:
    """The `:after_at` / `:after_id` parameters of a page query, both None on
    the first page; the query keeps rows `(created_at, id) < (after_at, after_id)`."""
    after = decode(cursor) if cursor else None
    return {"after_at": after[0] if after else None, "after_id": after[1] if after else None}


def _created_at_and_id(row: Any) -> tuple[datetime, uuid.UUID]:
    return row.created_at, row.id


def next_cursor(
    rows: Sequence[Any],
    limit: int,
    key: Callable[[Any], tuple[datetime, uuid.UUID]] = _created_at_and_id,
) -> str | None:
    """Given up to limit+1 rows, the cursor of the next page: the `key` (the
    time and id a page is ordered by; `created_at`, `id` unless told) of the
    last row shown; None when there is no next page."""
    if len(rows) <= limit:
        return None
    return encode(*key(rows[limit - 1]))
