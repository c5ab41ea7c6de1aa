"""What a closed call keeps, and for how long (docs/privacy.md).

Two jobs of the sweeper (app/dispatch/sweeper.py). Each takes a batch of due
calls with `FOR UPDATE SKIP LOCKED` (two processes never take the same
call; a call some path holds now is taken next time) and stamps what it did
on the call, which its query then leaves out: running a job again changes
nothing more. Each query is a lookup on its own partial index on
`call.closed_at`.

- `release_responders`: `RESPONDER_ACCESS_HOURS` after a call closed, its
  responder becomes its former responder (`responder_released_at`): who was
  there needs the exact point and the note to help, not afterwards;
  app/calls/visibility.py then shows them what a team sees.
- `anonymise_closed`: `RETENTION_DAYS` after a call closed, what the purpose
  of the call no longer needs goes (`anonymised_at`): the point is rounded
  the way visibility rounds it (~100 m, enough for the statistics of a grid),
  its accuracy goes with it, the note, the cancel reason and the dispute's
  reason (that it was disputed, and when, stays), every note of
  its events, the notes and positions inside its `call.updated` snapshots,
  any position of the responder still left, the rating's comment and the
  reasons of declines. What stays: the call's kind, times, areas, status, who
  called and who helped (the service record of the volunteer, and the
  resident's own history) and the rating's stars (a number that says how the
  service went, nothing of the resident's life; the teams' records count it).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import visibility
from app.core.config import Settings
from app.models.call import EventType

BATCH = 50

_RELEASE = text(
    """
    WITH due AS (
        SELECT id FROM call
        WHERE responder_released_at IS NULL
          AND closed_at <= now() - CAST(:after AS interval)
        ORDER BY closed_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE call c SET responder_released_at = now()
    FROM due WHERE c.id = due.id
    RETURNING c.id
    """
)


async def release_responders(session: AsyncSession, settings: Settings) -> int:
    """End the responder's full view of calls closed `RESPONDER_ACCESS_HOURS`
    ago (every closed call is stamped, answered or not: the stamp says the
    time is up). How many calls."""
    released = await session.execute(
        _RELEASE,
        {"after": timedelta(hours=settings.responder_access_hours), "batch": BATCH},
    )
    return len(released.all())


_DUE_FOR_ANONYMISING = text(
    """
    SELECT id FROM call
    WHERE anonymised_at IS NULL
      AND closed_at <= now() - CAST(:after AS interval)
    ORDER BY closed_at
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
    """
)
# The point rounded as `visibility.rounded` rounds it, in SQL.
_ANONYMISE_CALLS = text(
    """
    UPDATE call SET
        location = ST_SetSRID(ST_MakePoint(
            round(ST_X(location::geometry)::numeric, :decimals)::float8,
            round(ST_Y(location::geometry)::numeric, :decimals)::float8), 4326)::geography,
        accuracy_m = :accuracy,
        note = NULL,
        cancel_reason = NULL,
        dispute_reason = NULL,
        responder_released_at = coalesce(responder_released_at, now()),
        anonymised_at = now()
    WHERE id = ANY(:ids)
    """
)
_FORGET_TRACKS = text("DELETE FROM event WHERE call_id = ANY(:ids) AND type = :location_type")
_FORGET_EVENT_NOTES = text(
    "UPDATE event SET note = NULL WHERE call_id = ANY(:ids) AND note IS NOT NULL"
)
# Each snapshot as it would now be written: the call's rounded point, no
# note, no position of the responder.
_ANONYMISE_SNAPSHOTS = text(
    """
    UPDATE event e SET data = e.data
        || jsonb_build_object(
               'location', jsonb_build_object(
                   'lat', ST_Y(c.location::geometry),
                   'lng', ST_X(c.location::geometry),
                   'accuracy_m', CAST(:accuracy AS float8)),
               'note', NULL)
        || CASE WHEN jsonb_typeof(e.data -> 'responder') = 'object'
                THEN jsonb_build_object(
                    'responder', (e.data -> 'responder') || jsonb_build_object('location', NULL))
                ELSE '{}'::jsonb END
    FROM call c
    WHERE c.id = e.call_id AND e.call_id = ANY(:ids) AND e.type = :updated_type
    """
)
_FORGET_COMMENTS = text(
    "UPDATE rating SET comment = NULL WHERE call_id = ANY(:ids) AND comment IS NOT NULL"
)
_FORGET_DECLINE_REASONS = text(
    """
    UPDATE offer_decline d SET reason = NULL
    FROM offer o
    WHERE o.id = d.offer_id AND o.call_id = ANY(:ids) AND d.reason IS NOT NULL
    """
)


async def anonymise_closed(session: AsyncSession, settings: Settings) -> int:
    """Anonymise calls closed `RETENTION_DAYS` ago; how many calls."""
    ids: list[uuid.UUID] = list(
        (
            await session.execute(
                _DUE_FOR_ANONYMISING,
                {"after": timedelta(days=settings.retention_days), "batch": BATCH},
            )
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0
    accuracy = visibility.ROUNDED_ACCURACY_M
    await session.execute(
        _ANONYMISE_CALLS,
        {"ids": ids, "decimals": visibility.ROUND_DECIMALS, "accuracy": accuracy},
    )
    await session.execute(
        _FORGET_TRACKS, {"ids": ids, "location_type": EventType.responder_location.value}
    )
    await session.execute(_FORGET_EVENT_NOTES, {"ids": ids})
    await session.execute(
        _ANONYMISE_SNAPSHOTS,
        {"ids": ids, "accuracy": accuracy, "updated_type": EventType.call_updated.value},
    )
    await session.execute(_FORGET_COMMENTS, {"ids": ids})
    await session.execute(_FORGET_DECLINE_REASONS, {"ids": ids})
    return len(ids)
