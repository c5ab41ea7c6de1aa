"""The state machine is the only writer of `call.status`, and it writes
exactly what `TRANSITIONS` allows, on real rows."""

from __future__ import annotations

import itertools
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.calls import state, visibility
from app.calls.state import TRANSITIONS, InvalidTransition
from app.models.call import ACTIVE_RESPONSE, OPEN_CALL, CallCategory, CallStatus
from tests.principals import make_person
from tests.scene import tx_now

APP = Path(__file__).resolve().parents[2] / "app"
STATE_MODULE = APP / "calls" / "state.py"
# SQL that writes the status column of `call`: an UPDATE of call that sets
# status, or an INSERT into call (which names its status).
_WRITES_STATUS = re.compile(
    r"UPDATE\s+call\s+SET\b[^\"]*?\bstatus\s*=|INSERT\s+INTO\s+call\s*\(", re.IGNORECASE
)


def test_no_module_but_the_state_machine_writes_call_status() -> None:
    writers = sorted(
        str(path.relative_to(APP.parent))
        for path in APP.rglob("*.py")
        if path != STATE_MODULE and _WRITES_STATUS.search(path.read_text())
    )
    assert writers == []
    assert _WRITES_STATUS.search(STATE_MODULE.read_text())


async def _call_in(session: AsyncSession, status: CallStatus) -> state.LockedCall:
    resident = await make_person(session, "状态机测试")
    where = await areas.locate_ids(session, 22.77, 113.93)
    call_id = uuid.uuid4()
    await state.insert(
        session,
        call_id,
        resident=resident,
        category=CallCategory.visit,
        note=None,
        lat=22.77,
        lng=113.93,
        accuracy=None,
        grid=where.grid,
        grid_name=where.grid_name,
        at=await tx_now(session),
        community=where.community,
        street=where.street,
    )
    # Put the row in the state under test directly: the test sets the stage,
    # the code under test is `transition`.
    await session.execute(
        text("UPDATE call SET status = :s, responder_id = :r WHERE id = :id"),
        {"s": status.value, "r": resident if status in HAS_RESPONDER else None, "id": call_id},
    )
    locked = await state.lock_call(session, call_id)
    assert locked is not None
    assert locked.status is status
    return locked


async def _row(session: AsyncSession, call_id: uuid.UUID) -> tuple[str, bool, bool, str]:
    row = (
        await session.execute(
            text(
                "SELECT status, closed_at IS NOT NULL AS closed, "
                "escalated_at IS NOT NULL AS escalated, escalation_level FROM call WHERE id = :id"
            ),
            {"id": call_id},
        )
    ).one()
    return row.status, row.closed, row.escalated, row.escalation_level


HAS_RESPONDER = (*ACTIVE_RESPONSE, CallStatus.resolved)
PAIRS = list(itertools.product(CallStatus, CallStatus))


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
async def test_transition_writes_exactly_what_the_table_allows(
    session: AsyncSession, current: CallStatus, target: CallStatus
) -> None:
    call = await _call_in(session, current)
    allowed = target in TRANSITIONS[current]
    if not allowed:
        async with session.begin_nested() as savepoint:
            with pytest.raises(InvalidTransition) as refused:
                await state.transition(session, call, target)
            await savepoint.rollback()
        assert refused.value.status == 409
        assert refused.value.code == "invalid_transition"
        assert (await _row(session, call.id))[0] == current.value
        return
    changes: dict[str, Any] = {}
    if target is CallStatus.escalated:
        changes["escalation_level"] = "community"
    if target is CallStatus.accepted:
        changes["responder_id"] = (
            await session.execute(
                text("SELECT resident_id FROM call WHERE id = :id"), {"id": call.id}
            )
        ).scalar_one()
    moved = await state.transition(session, call, target, **changes)
    status, closed, escalated, level = await _row(session, call.id)
    assert moved.status is target
    assert status == target.value
    assert closed == (target in state.CLOSED)
    assert escalated == (target is CallStatus.escalated)
    assert level == ("community" if target is CallStatus.escalated else "grid")


async def test_a_transition_changes_only_what_it_may(session: AsyncSession) -> None:
    call = await _call_in(session, CallStatus.searching)
    with pytest.raises(ValueError, match="category"):
        await state.transition(session, call, CallStatus.offered, category="other")
    assert (await _row(session, call.id))[0] == "searching"


def test_every_status_is_in_the_table_and_closed_ones_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(CallStatus)
    for closed in state.CLOSED:
        assert TRANSITIONS[closed] == frozenset()
    assert state.INITIAL not in state.CLOSED
    # The models' notion of an open call is the state machine's.
    assert set(OPEN_CALL) == set(CallStatus) - state.CLOSED
    assert set(ACTIVE_RESPONSE) < set(OPEN_CALL)


async def test_a_born_call_s_first_event_is_its_snapshot(session: AsyncSession) -> None:
    """`insert` writes the call's first `call.updated` with the call, from
    what it knows rather than a read back: it must be exactly the snapshot
    a read would give (floats, times, the event's own id)."""
    resident = await make_person(session, "出生快照")
    where = await areas.locate_ids(session, 22.77, 113.93)
    call_id = uuid.uuid4()
    await state.insert(
        session,
        call_id,
        resident=resident,
        category=CallCategory.hardship,
        note="门口 note\n第二行",
        lat=22.770123456789,
        lng=113.930987654321,
        accuracy=7.3,
        grid=where.grid,
        grid_name=where.grid_name,
        at=await tx_now(session),
        community=where.community,
        street=where.street,
    )
    event = (
        await session.execute(
            text("SELECT id, type, data, offer_id FROM event WHERE call_id = :id"), {"id": call_id}
        )
    ).one()
    read = await visibility.snapshot(session, call_id)
    assert event.type == "call.updated"
    assert event.offer_id is None
    assert read.last_event_id == event.id
    assert read.status is CallStatus.searching
    assert event.data == read.model_dump(mode="json")


async def test_a_move_published_with_its_snapshot_is_what_a_read_gives(
    session: AsyncSession,
) -> None:
    """`transition` reads the snapshot from the UPDATE's own row in
    the statement that moves the call: its event must carry the call as it
    now is, exactly as a read after the move would."""
    call = await _call_in(session, CallStatus.searching)
    full = await state.transition(
        session, call, CallStatus.escalated, escalation_level="community", team_id=None
    )
    event = (
        await session.execute(
            text("SELECT id, data FROM event WHERE call_id = :id ORDER BY id DESC LIMIT 1"),
            {"id": call.id},
        )
    ).one()
    read = await visibility.snapshot(session, call.id)
    assert read.status is CallStatus.escalated
    assert read.escalation_level == "community"
    assert read.last_event_id == event.id
    assert event.data == read.model_dump(mode="json")
    assert full == read
