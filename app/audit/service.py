"""Reading the audit log (GET /admin/audit).

An admin reads every entry. A dispatcher reads only the entries of a
household of its area: it must name one (`subject=household:<id>`), and a
household it may not see is 404, as if it did not exist
(`app.households.visibility`). Entries carry no client address and no
request id here (those stay for the operators), and their `detail` never
holds a phone or a household's tags: the writers see to that.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import cursors
from app.core.errors import Forbidden
from app.households import visibility
from app.identity.auth import PersonPrincipal
from app.models.household import AuditEntry, AuditList

SUBJECT_PATTERN = r"^[a-z_]{1,32}:[A-Za-z0-9._:+*-]{1,64}$"


# Pages use the cursor of every list (`app.core.cursors`: the time and an
# id, newest first); an entry's bigint id travels as the UUID of that number.
BIGINT_MAX = 2**63 - 1


def _bounds(cursor: str | None) -> dict[str, object]:
    bounds = cursors.bounds(cursor)
    after_id = bounds["after_id"]
    bounds["after_id"] = min(after_id.int, BIGINT_MAX) if isinstance(after_id, uuid.UUID) else None
    return bounds


async def _check_may_read(
    session: AsyncSession, person: PersonPrincipal, subject: str | None
) -> None:
    if person.is_admin:
        return
    kind, _, raw_id = (subject or "").partition(":")
    if kind != "household":
        raise Forbidden(
            "A dispatcher reads the audit of one household of its area: "
            "give `subject=household:<id>`.",
            code="subject_required",
        )
    try:
        household_id = uuid.UUID(raw_id)
    except ValueError as exc:
        raise visibility.HouseholdNotFound("No such household.") from exc
    viewer = await visibility.viewer_of(session, person, household_id)
    if viewer is not visibility.HouseholdViewer.staff:
        raise visibility.HouseholdNotFound("No such household.")


_PAGE = """
      AND (CAST(:after_at AS timestamptz) IS NULL
           OR (at, id) < (CAST(:after_at AS timestamptz), CAST(:after_id AS bigint)))
    ORDER BY at DESC, id DESC
    LIMIT :limit
"""
_COLUMNS = "SELECT id, at, actor_person_id, action, target_type, target_id, detail FROM audit_log"
_ENTRIES = text(f"{_COLUMNS} WHERE true {_PAGE}")
# Served by ix_audit_log_target (target_type, target_id, at, id).
_ENTRIES_OF_SUBJECT = text(f"{_COLUMNS} WHERE target_type = :kind AND target_id = :target {_PAGE}")


async def list_entries(
    session: AsyncSession,
    person: PersonPrincipal,
    subject: str | None,
    *,
    limit: int,
    cursor: str | None,
) -> AuditList:
    await _check_may_read(session, person, subject)
    kind, _, target = (subject or "").partition(":")
    # Two statements, not one with `:kind IS NULL OR …`: a prepared
    # statement's generic plan could not use the subject's index for that.
    params = {"kind": kind, "target": target, **_bounds(cursor), "limit": limit + 1}
    rows = (await session.execute(_ENTRIES_OF_SUBJECT if kind else _ENTRIES, params)).all()
    page = rows[:limit]
    return AuditList(
        data=[_entry(row) for row in page],
        next_cursor=cursors.next_cursor(
            rows, limit, key=lambda row: (row.at, uuid.UUID(int=row.id))
        ),
    )


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor_id=row.actor_person_id,
        action=row.action,
        subject=f"{row.target_type}:{row.target_id}" if row.target_type else None,
        detail=row.detail,
    )
