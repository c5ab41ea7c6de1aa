"""CPU of verifying a new access token (`tokens._verify`) and of building a
call's snapshot from a row (`visibility.snapshot_from_row`), in a loop, in
the tree it is run from: run it in two exports to compare them.

    cd <export> && python /path/to/verify_cost.py
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from app.calls import visibility
from app.core.config import Settings
from app.identity import tokens

N = 4000


def per_call_us(fn: Callable[[], object], n: int = N) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    settings = Settings.model_validate(
        {"database_url": "postgresql+asyncpg://x@127.0.0.1/x", "secret_key": "k" * 40}
    )
    now = datetime.now(UTC)
    token = tokens.encode(
        settings,
        "access",
        person_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        token_id=uuid.uuid4(),
        now=now,
        ttl=timedelta(hours=1),
    )
    row = SimpleNamespace(
        id=uuid.uuid4(),
        status="en_route",
        category="urgent",
        note="help",
        escalation_level="grid",
        created_at=now,
        updated_at=now,
        last_event_id=1,
        accuracy_m=10.0,
        disputed=False,
        lat=22.7,
        lng=113.9,
        grid_id=uuid.uuid4(),
        grid_name="grid",
        team_id=uuid.uuid4(),
        team_name="team",
        responder_id=uuid.uuid4(),
        responder_name="r",
        responder_phone="+8613800001111",
        responder_lat=22.7,
        responder_lng=113.9,
        responder_accuracy=5.0,
    )
    verify = min(per_call_us(lambda: tokens._verify(settings, token)) for _ in range(5))
    snap = min(per_call_us(lambda: visibility.snapshot_from_row(row)) for _ in range(5))
    print(f"verify a new token: {verify:.1f} us; snapshot_from_row: {snap:.1f} us")


if __name__ == "__main__":
    main()
