"""The team rule (BRIEF.md, API.md 1.1): the one definition of an active team.

A team is `active` when it has at least TEAM_MIN_MEMBERS members and at
least TEAM_MIN_FULL_TIME full-time members, else `incomplete`. Only members
who are not disabled count (`counted`): a disabled person is offered nothing
and cannot answer a call, so a team of three whose only full-time member was
disabled is, for a dispatcher, a team without its full-time member.

Everything that asks the rule asks it here: dispatch's nearest teams
(`app.dispatch.policy`), a dispatcher's assign (`app.dispatch.assign`), the
team profile and the list of teams (`app.teams.roster`), and every change
of a roster (`watching`). The rule is computed when it is asked, never
stored: the thresholds are settings, and a stored status would go stale the
moment one of them changed.

`team_active("x.team_id")` is the rule as a SQL condition on a team id
expression; the query binds `params(settings)`. It reads the team's rows of
`team_member` through its primary key (team_id, person_id) and probes each
member's disabled state in the small partial index `ix_person_disabled`,
the same probe as `app.duty.availability`: a few index reads per team.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models.enums import MemberKind
from app.models.team import TeamStatus
from app.notifications import alerts


def _alias(name: str) -> str:
    if not name.isidentifier():
        raise ValueError("a table alias is expected")
    return name


def counted(member: str) -> str:
    """Whether the `team_member` row aliased `member` counts: its person is
    not disabled."""
    m = _alias(member)
    return f"""(SELECT disabled.id FROM person disabled
               WHERE disabled.id = {m}.person_id
                 AND disabled.disabled_at IS NOT NULL) IS NULL"""  # noqa: S608 - checked alias


def full_time(member: str) -> str:
    """Whether the `team_member` row aliased `member` is a full-time member."""
    return f"{_alias(member)}.kind = '{MemberKind.full_time.value}'"


def satisfied(members: str, full_timers: str) -> str:
    """The thresholds, on SQL expressions counting a team's members and
    full-time members (those that count); binds `params(settings)`."""
    return (
        f"({members} >= CAST(:team_min_members AS integer) "
        f"AND {full_timers} >= CAST(:team_min_full_time AS integer))"
    )


def team_active(team_id: str) -> str:
    """The rule as a SQL condition on a team id expression (e.g. `t.id`)."""
    full_timers = f"count(*) FILTER (WHERE {full_time('rule')})"
    return f"""(SELECT {satisfied("count(*)", full_timers)}
               FROM team_member rule
               WHERE rule.team_id = {team_id} AND {counted("rule")})"""  # noqa: S608


def status_sql(team_id: str) -> str:
    """The team's status (`active` or `incomplete`) as a SQL expression."""
    return (
        f"CASE WHEN {team_active(team_id)} THEN '{TeamStatus.active.value}' "
        f"ELSE '{TeamStatus.incomplete.value}' END"
    )


def params(settings: Settings) -> dict[str, Any]:
    """The values the fragments above bind."""
    return {
        "team_min_members": settings.team_min_members,
        "team_min_full_time": settings.team_min_full_time,
    }


_STATUSES = f"""
    SELECT t.id, {status_sql("t.id")} AS status
    FROM team t WHERE t.id = ANY(CAST(:teams AS uuid[]))
"""  # noqa: S608 - constant fragments, values are bound


async def statuses(
    session: AsyncSession, settings: Settings, team_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, TeamStatus]:
    """The status of each team that exists among `team_ids`."""
    rows = await session.execute(text(_STATUSES), {"teams": list(team_ids), **params(settings)})
    return {row.id: TeamStatus(row.status) for row in rows}


async def is_active(session: AsyncSession, settings: Settings, team_id: uuid.UUID) -> bool:
    return (await statuses(session, settings, [team_id])).get(team_id) is TeamStatus.active


@dataclass
class Watch:
    """The statuses of the watched teams before and after a change."""

    before: dict[uuid.UUID, TeamStatus]
    after: dict[uuid.UUID, TeamStatus] = field(default_factory=dict)


@asynccontextmanager
async def watching(
    session: AsyncSession, settings: Settings, team_ids: Iterable[uuid.UUID]
) -> AsyncIterator[Watch]:
    """Around a change of the rosters of `team_ids`: lock the teams (in id
    order, so that two changes never deadlock), read their statuses, let the
    change happen, read them again, and tell the dispatchers of each team
    that went from active to incomplete (`alerts.team_incomplete`), in the
    same transaction. The lock makes changes of one team take turns, so each
    reads the status the one before left: a team that falls is told of once,
    not once per change while it stays incomplete."""
    ids = sorted(set(team_ids))
    await session.execute(
        text("SELECT id FROM team WHERE id = ANY(CAST(:teams AS uuid[])) ORDER BY id FOR UPDATE"),
        {"teams": ids},
    )
    watch = Watch(before=await statuses(session, settings, ids))
    yield watch
    watch.after = await statuses(session, settings, ids)
    for team_id in ids:
        fell = watch.before.get(team_id) is TeamStatus.active and (
            watch.after.get(team_id) is TeamStatus.incomplete
        )
        if fell:
            await alerts.team_incomplete(session, team_id)
