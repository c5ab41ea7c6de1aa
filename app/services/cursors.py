"""Opaque cursors for lists ordered newest first by (created_at, id)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime

from app.errors import Unprocessable


def encode(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    """(created_at, id) of the last row of the previous page; 422 `invalid_cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created), uuid.UUID(row_id)
    except (ValueError, TypeError) as exc:
        raise Unprocessable("The cursor is not valid.", code="invalid_cursor") from exc
