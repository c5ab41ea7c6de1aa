"""Service activities that members log, and a team's activities of a month.

Logging (POST /activities): only a member of the team, for themselves. The
time it took place is not in the future (CLOCK_SKEW allowed) and lies in
the current month of the district, or in the previous month during the
first ACTIVITY_LATE_DAYS days of this one: a month's record (its quota, its
stars) is settled soon after it ends, and a late entry cannot change it
afterwards. A household named must be one paired with the member
(`household_pairing`), else 422 `household_not_paired`, the same for a
household that does not exist: the answer tells nothing of households
that are not the member's.

Reading a team's activities: its members, the dispatchers of an area that
holds the team's grid, admins (`may_read`). Anyone else gets 403
`not_allowed` (the team itself is no secret: GET /teams/{id} shows it to
anyone logged in); an unknown team is 404. The note of an activity that
names a household may speak of that household's situation (health,
disability, income), so of those only the author and staff read the note.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.activities import quota
from app.core import cursors
from app.core.config import Settings
from app.core.errors import Forbidden, NotFound, Unprocessable
from app.core.months import Month
from app.identity import enrolment
from app.identity.auth import PersonPrincipal
from app.models.activity import ActivityCreate, ActivityPublic, ActivitySource, MyMonth
from app.models.enums import MemberKind

# How far ahead of the server's clock a phone's clock may be.
CLOCK_SKEW = timedelta(minutes=5)


def earliest_loggable(settings: Settings, now: datetime) -> datetime:
    """The first instant an activity logged now may have taken place at."""
    zone = settings.zone
    month = Month.of(now, zone)
    if now.astimezone(zone).day <= settings.activity_late_days:
        month = month.previous()
    return month.start(zone)


def check_time(settings: Settings, at: datetime, now: datetime) -> None:
    if at > now + CLOCK_SKEW:
        raise Unprocessable("`at` lies in the future.", code="activity_in_future")
    earliest = earliest_loggable(settings, now)
    if at < earliest:
        raise Unprocessable(
            f"`at` is before {earliest.astimezone(settings.zone).date().isoformat()}: a closed "
            "month's activities cannot be logged any more.",
            code="activity_too_old",
        )


_MEMBER = text("SELECT 1 FROM team_member WHERE team_id = :team AND person_id = :me")
_PAIRED = text(
    "SELECT 1 FROM household_pairing WHERE household_id = :household AND person_id = :me"
)
_INSERT = text(
    f"""
    INSERT INTO activity (id, person_id, team_id, kind, source, at, duration_min, note,
                          household_id)
    VALUES (:id, :me, :team, :kind, '{ActivitySource.logged.value}', :at, :duration, :note,
            :household)
    RETURNING id, person_id, team_id, kind, source, at, duration_min, note, call_id,
              household_id, disputed, created_at
    """  # noqa: S608 - a constant of this module
)


async def log_activity(
    session: AsyncSession,
    settings: Settings,
    actor: PersonPrincipal,
    body: ActivityCreate,
    now: datetime | None = None,
) -> ActivityPublic:
    """Write down an activity of the caller's (201), or refuse it."""
    params = {"team": body.team_id, "me": actor.person_id}
    # The roster as stored, not as the principal was cached: a member just
    # removed logs nothing more for the team.
    if (await session.execute(_MEMBER, params)).first() is None:
        raise Forbidden("Only a member of the team can log its activities.", code="not_a_member")
    check_time(settings, body.at, now or datetime.now(UTC))
    if body.household_id is not None:
        paired = await session.execute(
            _PAIRED, {"household": body.household_id, "me": actor.person_id}
        )
        if paired.first() is None:
            raise Unprocessable(
                "That household is not one paired with you.", code="household_not_paired"
            )
    row = (
        await session.execute(
            _INSERT,
            {
                **params,
                "id": uuid.uuid4(),
                "kind": body.kind.value,
                "at": body.at,
                "duration": body.duration_min,
                "note": body.note,
                "household": body.household_id,
            },
        )
    ).one()
    return _public(row, show_note=True)


# ---- reading a team's activities -------------------------------------------------------

_TEAM = text("SELECT grid_id FROM team WHERE id = :team")


async def may_read(
    session: AsyncSession, actor: PersonPrincipal, team_id: uuid.UUID
) -> tuple[bool, bool]:
    """(whether the person may read the team's activities, whether as staff);
    404 for a team that does not exist."""
    grid_id = (await session.execute(_TEAM, {"team": team_id})).scalar()
    if grid_id is None:
        raise NotFound("No such team.")
    staff = await enrolment.within_scope(session, actor, grid_id)
    if staff:
        return True, True
    member = await session.execute(_MEMBER, {"team": team_id, "me": actor.person_id})
    return member.first() is not None, False


def _month_page(owner: str) -> TextClause:
    """A page of a month's activities of one team or one person (`owner`,
    a constant column), newest first by `at`, then id."""
    return text(
        f"""
        SELECT id, person_id, team_id, kind, source, at, duration_min, note, call_id,
               household_id, disputed, created_at
        FROM activity
        WHERE {owner} = :owner AND at >= :start AND at < :end
          AND (CAST(:after_at AS timestamptz) IS NULL
               OR (at, id) < (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
        ORDER BY at DESC, id DESC
        LIMIT :limit
        """  # noqa: S608 - the column is a constant of this module
    )


_PAGE = _month_page("team_id")
_MINE = _month_page("person_id")


async def _read_page(
    session: AsyncSession,
    settings: Settings,
    query: TextClause,
    owner: uuid.UUID,
    month: Month,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Any], str | None]:
    rows = (
        await session.execute(
            query,
            {
                "owner": owner,
                "start": month.start(settings.zone),
                "end": month.end(settings.zone),
                **cursors.bounds(cursor),
                "limit": limit + 1,
            },
        )
    ).all()
    return rows[:limit], cursors.next_cursor(rows, limit, key=lambda row: (row.at, row.id))


async def team_activities(
    session: AsyncSession,
    settings: Settings,
    actor: PersonPrincipal,
    team_id: uuid.UUID,
    month: Month,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[ActivityPublic], str | None]:
    """A page of the team's activities of the month, newest first by `at`."""
    allowed, staff = await may_read(session, actor, team_id)
    if not allowed:
        raise Forbidden(
            "Only the team's members, the dispatchers of its area and admins read its activities.",
            code="not_allowed",
        )
    page, next_cursor = await _read_page(session, settings, _PAGE, team_id, month, limit, cursor)
    data = [
        _public(
            row,
            show_note=staff or row.household_id is None or row.person_id == actor.person_id,
        )
        for row in page
    ]
    return data, next_cursor


# ---- one's own month against the quota -------------------------------------------------

_MY_COUNT = text(
    f"""
    SELECT EXISTS (SELECT 1 FROM team_member m
                    WHERE m.person_id = :me AND m.kind = '{MemberKind.full_time.value}')
               AS full_time,
           (SELECT count(*) FROM activity a
             WHERE a.person_id = :me AND a.at >= :start AND a.at < :end
               AND {quota.COUNTS}) AS counted
    """  # noqa: S608 - constant fragments, values are bound
)


async def my_month(
    session: AsyncSession,
    settings: Settings,
    actor: PersonPrincipal,
    month: Month,
    *,
    limit: int,
    cursor: str | None,
) -> MyMonth:
    """The caller's activities of the month (a page) and how they stand
    against the monthly rule, counted as `quota.py` counts them."""
    page, next_cursor = await _read_page(
        session, settings, _MINE, actor.person_id, month, limit, cursor
    )
    figures = (
        await session.execute(
            _MY_COUNT,
            {
                "me": actor.person_id,
                "start": month.start(settings.zone),
                "end": month.end(settings.zone),
            },
        )
    ).one()
    required = settings.monthly_activity_quota
    return MyMonth(
        month=str(month),
        required=required,
        full_time=figures.full_time,
        counted=figures.counted,
        short_by=max(0, required - figures.counted) if figures.full_time else 0,
        data=[_public(row, show_note=True) for row in page],
        next_cursor=next_cursor,
    )


def _public(row: Any, *, show_note: bool) -> ActivityPublic:
    return ActivityPublic(
        id=row.id,
        team_id=row.team_id,
        person_id=row.person_id,
        kind=row.kind,
        at=row.at,
        duration_min=row.duration_min,
        source=row.source,
        call_id=row.call_id,
        household_id=row.household_id,
        note=row.note if show_note else None,
        disputed=row.disputed,
        created_at=row.created_at,
    )
