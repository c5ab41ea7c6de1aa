"""JSON text of data that is ready for it, on the hot paths (an event's
`data` as written to the log, a socket's frames): pydantic's serializer,
about four times `json.dumps` (8 µs → 2 µs for a call's snapshot)."""

from __future__ import annotations

from typing import Any

from pydantic_core import to_json


def dumps(value: Any) -> str:
    """`value` (dicts, lists, strings, numbers, booleans, None; a UUID as its
    canonical string) as compact JSON text, non-ASCII characters as they are."""
    return to_json(value).decode()
