"""`app.core.jsontext.dumps` writes what `json.dumps` wrote on the hot paths
(an event's data, a socket's frames), read back the same."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

from app.calls import visibility
from app.core import jsontext


def test_the_same_json_as_json_dumps() -> None:
    now = datetime(2026, 12, 2, 19, 0, 1, 250000, tzinfo=UTC)
    snapshot = visibility.snapshot_from_row(
        SimpleNamespace(
            id=uuid.uuid4(),
            status="offered",
            category="urgent",
            note='楼下 "急"\n',
            escalation_level="grid",
            created_at=now,
            updated_at=now,
            last_event_id=2**62,
            accuracy_m=8.5,
            disputed=False,
            lat=22.771234567,
            lng=113.93,
            grid_id=uuid.uuid4(),
            grid_name="网格一",
            team_id=uuid.uuid4(),
            team_name="先锋队",
            responder_id=None,
        )
    ).model_dump(mode="json")
    frame = {
        "type": "call.updated",
        "id": 7,
        "call_id": uuid.uuid4(),
        "data": snapshot,
        "note": None,
        "at": now.isoformat(),
        "position": {"lat": 1e-7, "lng": -0.0},
    }
    for value in (snapshot, frame, {"lat": 22.5, "lng": 113.25, "accuracy_m": None}):
        written = jsontext.dumps(value)
        assert json.loads(written) == json.loads(json.dumps(value, default=str))
    assert "网格一" in jsontext.dumps(snapshot), "non-ASCII as it is, as the frames were"
