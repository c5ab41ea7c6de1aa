"""The monthly quota reminder: due from QUOTA_REMINDER_DAY in the district's
time zone, once per short member and month, whatever runs it at once."""

from __future__ import annotations

import ast
import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.activities import reminders
from app.core.config import Settings
from app.notifications.alerts import texts
from tests.dbutil import PROJECT_ROOT
from tests.live import Ledger, committed_team
from tests.scene import make_team

LAT, LNG = 22.775, 113.935


def test_the_reminder_is_due_from_the_day_in_shanghai(settings: Settings) -> None:
    assert settings.quota_reminder_day == 20
    # 19 March 23:59:59 in Shanghai is 15:59:59 UTC: not yet.
    assert (
        reminders.due_month(settings, datetime.fromisoformat("2031-03-19T15:59:59+00:00")) is None
    )
    due = reminders.due_month(settings, datetime.fromisoformat("2031-03-19T16:00:00+00:00"))
    assert str(due) == "2031-03"
    # Any later day of the month still is (a day the service was down).
    later = reminders.due_month(settings, datetime.fromisoformat("2031-03-31T15:00:00+00:00"))
    assert str(later) == "2031-03"
    assert (
        reminders.due_month(settings, datetime.fromisoformat("2031-04-01T01:00:00+00:00")) is None
    )


async def _reminded(session: AsyncSession, people: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        text(
            "SELECT person_id, count(*) FROM notification WHERE kind = 'quota_reminder' "
            "AND person_id = ANY(CAST(:p AS uuid[])) GROUP BY person_id"
        ),
        {"p": people},
    )
    return {row[0]: row[1] for row in rows}


async def _shape(
    session: AsyncSession, team: uuid.UUID, month_start: datetime
) -> dict[str, uuid.UUID]:
    """Of the team's three members: one full-time with none, one full-time
    with the quota done, one part-time with none."""
    members = (
        (
            await session.execute(
                text(
                    "SELECT person_id FROM team_member WHERE team_id = :t "
                    "ORDER BY joined_at, person_id"
                ),
                {"t": team},
            )
        )
        .scalars()
        .all()
    )
    short, done, part = members
    await session.execute(
        text(
            "UPDATE team_member SET kind = 'full_time' "
            "WHERE team_id = :t AND person_id = ANY(CAST(:p AS uuid[]))"
        ),
        {"t": team, "p": [short, done]},
    )
    await session.execute(
        text("UPDATE team_member SET kind = 'part_time' WHERE team_id = :t AND person_id = :p"),
        {"t": team, "p": part},
    )
    for day in range(3):
        await session.execute(
            text(
                "INSERT INTO activity (id, person_id, team_id, kind, at) "
                "VALUES (:id, :p, :t, 'visit', :at)"
            ),
            {"id": uuid.uuid4(), "p": done, "t": team, "at": month_start + timedelta(days=day)},
        )
    return {"short": short, "done": done, "part": part}


async def test_a_pass_reminds_each_short_member_once_from_the_day(
    session: AsyncSession, settings: Settings
) -> None:
    team = await make_team(session, settings, LAT, LNG, members=3)
    who = await _shape(session, team.id, datetime.fromisoformat("2031-03-01T00:00:00+08:00"))
    people = list(who.values())

    day_before = datetime.fromisoformat("2031-03-19T23:00:00+08:00")
    assert await reminders.remind(session, settings, day_before) == 0
    assert await _reminded(session, people) == {}

    day = datetime.fromisoformat("2031-03-20T08:00:00+08:00")
    sent = await reminders.remind(session, settings, day)
    assert sent is not None
    assert sent >= 1
    assert await _reminded(session, people) == {who["short"]: 1}
    assert await reminders.remind(session, settings, day + timedelta(days=3)) == 0
    assert await _reminded(session, people) == {who["short"]: 1}, "never twice"

    note = (
        await session.execute(
            text(
                "SELECT n.title, n.body, n.call_id, p.display_name FROM notification n "
                "JOIN person p ON p.id = n.person_id "
                "WHERE n.kind = 'quota_reminder' AND n.person_id = :p"
            ),
            {"p": who["short"]},
        )
    ).one()
    assert (note.title, note.body) == texts("quota_reminder", "")
    assert note.call_id is None
    assert note.display_name not in note.title + note.body, "nothing personal in the text"


# ---- two processes at once -------------------------------------------------------------

MONTH = "2031-04"
NOW = "2031-04-21T10:00:00+08:00"

# A second process: ready once connected, then a pass when told to go.
SECOND_PROCESS = """
import asyncio, sys
from datetime import datetime
from app.activities import reminders
from app.core.config import Settings
from app.core.db import make_engine, make_sessionmaker

async def main():
    settings = Settings(_env_file=None)
    engine = make_engine(settings)
    factory = make_sessionmaker(engine)
    async with engine.connect():
        pass
    print("ready", flush=True)
    sys.stdin.readline()
    now = datetime.fromisoformat(sys.argv[1])
    results = [await reminders.remind_once(factory, settings, now) for _ in range(3)]
    print(results, flush=True)
    await engine.dispose()

asyncio.run(main())
"""


def _start_second(database_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SECOND_PROCESS, NOW],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "APP_ENV": "test",
            "PYTHONPATH": str(PROJECT_ROOT),
        },
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
async def forget_month(engine: AsyncEngine) -> AsyncIterator[None]:
    """The reminders of MONTH, every seeded member's included, are undone."""
    yield
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "DELETE FROM notification WHERE kind = 'quota_reminder' AND person_id IN "
                "(SELECT person_id FROM quota_reminder WHERE month = :m)"
            ),
            {"m": MONTH},
        )
        await conn.execute(text("DELETE FROM quota_reminder WHERE month = :m"), {"m": MONTH})


@pytest.mark.processes
async def test_two_processes_at_once_remind_each_short_member_exactly_once(
    engine: AsyncEngine,
    settings: Settings,
    database_url: str,
    ledger: Ledger,
    forget_month: None,
) -> None:
    team = await committed_team(engine, settings, ledger, LAT, LNG, members=3, on_duty=0)
    async with AsyncSession(engine) as session:
        who = await _shape(session, team.id, datetime.fromisoformat("2031-04-01T00:00:00+08:00"))
        await session.commit()

    second = _start_second(database_url)
    try:
        assert second.stdout is not None
        assert second.stdin is not None
        ready = await asyncio.to_thread(second.stdout.readline)
        assert ready.strip() == "ready", second.stderr.read() if second.stderr else ""
        factory = async_sessionmaker(engine, expire_on_commit=False)
        second.stdin.write("go\n")
        second.stdin.flush()
        here = await asyncio.gather(
            *(
                reminders.remind_once(factory, settings, datetime.fromisoformat(NOW))
                for _ in range(2)
            )
        )
        out, err = await asyncio.to_thread(second.communicate, timeout=60)
        assert second.returncode == 0, err
    finally:
        if second.poll() is None:
            second.kill()

    async with AsyncSession(engine) as session:
        assert await _reminded(session, list(who.values())) == {who["short"]: 1}
        # Everyone reminded, the seeded members short in that month too, once.
        twice = (
            await session.execute(
                text(
                    "SELECT count(*) FROM (SELECT person_id FROM notification "
                    "WHERE kind = 'quota_reminder' GROUP BY person_id HAVING count(*) > 1) x"
                )
            )
        ).scalar_one()
        assert twice == 0
        recorded, notified = (
            await session.execute(
                text(
                    """
                    SELECT (SELECT count(*) FROM quota_reminder WHERE month = :m),
                           (SELECT count(*) FROM notification n WHERE n.kind = 'quota_reminder'
                              AND n.person_id IN (SELECT person_id FROM quota_reminder
                                                  WHERE month = :m))
                    """
                ),
                {"m": MONTH},
            )
        ).one()
    assert recorded == notified >= 1
    # Between the three passes that raced, the reminders were sent once: the
    # sum of what the passes report is the number of people reminded.
    there = [n for n in ast.literal_eval(out.strip().splitlines()[-1]) if n is not None]
    assert sum(n for n in here if n is not None) + sum(there) == recorded
