"""A resolved call is a service activity of its responder (API.md 1.1,
"Activities and the monthly rule"): the one place that says which kind."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import sql
from app.models.activity import ActivityKind, ActivitySource
from app.models.call import CallCategory
from app.models.enums import sql_values


def kind_of_call(category: CallCategory | None) -> ActivityKind:
    """The activity a call of this category is: the kind of the same name,
    `hardship` for an urgent call or one without a category."""
    if category is not None and category.value in ActivityKind.__members__:
        return ActivityKind(category.value)
    return ActivityKind.hardship


# The same rule in SQL for the insert below, derived from the function.
_KEEP_THEIR_KIND = tuple(c for c in CallCategory if kind_of_call(c).value == c.value)
_KIND_SQL = (
    f"CASE WHEN c.category IN {sql_values(_KEEP_THEIR_KIND)} THEN c.category "
    f"ELSE '{kind_of_call(None).value}' END"
)

# The responder's activity, as a write sent inside another statement
# (`sql.Write`): a resolve step sends it with the track's erasure.
_RECORD = f"""
    {{p}}activity AS (
        INSERT INTO activity (id, person_id, team_id, call_id, kind, source, at)
        SELECT :aid, c.responder_id, c.team_id, c.id, {_KIND_SQL},
               '{ActivitySource.call.value}', now()
        FROM call c WHERE c.id = :id AND c.responder_id IS NOT NULL AND c.team_id IS NOT NULL
        ON CONFLICT (call_id, person_id) DO NOTHING
    )
"""  # noqa: S608 - constant fragments, values are bound


def resolved(call_id: uuid.UUID) -> sql.Write:
    """The responder's activity for a call just resolved (once per member: a
    call disputed and resolved again by someone else is theirs too; resolved
    again by the same member, their disputed activity stays). It reads the
    call's responder and team, so it goes in a statement after the one that
    set them."""
    return sql.Write(_RECORD, (), {"aid": uuid.uuid4(), "id": call_id})


async def mark_disputed(session: AsyncSession, call_id: uuid.UUID) -> None:
    """The caller disputed the call: its activity (the responder's) is
    marked disputed (the monthly stars subtract it). A call is disputed once,
    so only the first responder's activity can be."""
    await session.execute(
        text("UPDATE activity SET disputed = true WHERE call_id = :id"), {"id": call_id}
    )
