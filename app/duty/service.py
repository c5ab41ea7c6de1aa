"""A volunteer's duty and position.

Only the latest position is kept (no movement history), and it is dropped
when the volunteer goes off duty. While responding (on the way or on site)
the position is also shared with the caller, as `responder.location`
events that are deleted when the call ends.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.visibility import SHOWS_RESPONDER_POSITION
from app.core.errors import Conflict, Unprocessable
from app.events import duty as duty_feed
from app.events import log as events
from app.identity.auth import PersonPrincipal
from app.models.call import EventType
from app.models.enums import sql_values
from app.models.geo import Point
from app.models.team import DutyState, DutyUpdate


class NotOnDuty(Conflict):
    code = "not_on_duty"
    title = "Not on duty"


_POINT = "ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography"
# What going off duty writes: the position is dropped with it.
_OFF_DUTY = """
    since = CASE WHEN duty.on_duty THEN now() ELSE duty.since END,
    on_duty = false, location = NULL, accuracy_m = NULL, located_at = NULL
"""
_STATE = """
    RETURNING on_duty, since, ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lng,
              accuracy_m
"""


async def set_duty(session: AsyncSession, person: PersonPrincipal, update: DutyUpdate) -> DutyState:
    if update.on_duty:
        if update.location is None:
            raise Unprocessable("A location is needed to go on duty.", code="location_required")
        row = (
            await session.execute(
                text(
                    f"""
                    INSERT INTO duty (person_id, on_duty, since, location, accuracy_m, located_at)
                    VALUES (:person_id, true, now(), {_POINT}, :accuracy, now())
                    ON CONFLICT (person_id) DO UPDATE
                       SET since = CASE WHEN duty.on_duty THEN duty.since ELSE now() END,
                           on_duty = true, location = excluded.location,
                           accuracy_m = excluded.accuracy_m, located_at = now()
                    {_STATE}
                    """  # noqa: S608 - constant fragments, values are bound
                ),
                {
                    "person_id": person.person_id,
                    "lat": update.location.lat,
                    "lng": update.location.lng,
                    "accuracy": update.location.accuracy_m,
                },
            )
        ).one()
    else:
        row = (
            await session.execute(
                text(
                    f"""
                    INSERT INTO duty (person_id, on_duty, since) VALUES (:person_id, false, now())
                    ON CONFLICT (person_id) DO UPDATE SET {_OFF_DUTY}
                    {_STATE}
                    """  # noqa: S608 - constant fragments, values are bound
                ),
                {"person_id": person.person_id},
            )
        ).one()
    # The dispatchers' maps hear of it on commit (`duty.updated`).
    await duty_feed.announce(session, person.person_id, row.on_duty)
    location = (
        Point(lat=row.lat, lng=row.lng, accuracy_m=row.accuracy_m) if row.lat is not None else None
    )
    return DutyState(on_duty=row.on_duty, since=row.since, location=location)


async def take_off_duty(session: AsyncSession, person_id: uuid.UUID) -> None:
    """Take someone off duty, as going off duty does (disabling a person)."""
    await session.execute(
        text(f"UPDATE duty SET {_OFF_DUTY} WHERE person_id = :person_id"),  # noqa: S608 - constant
        {"person_id": person_id},
    )
    await duty_feed.announce(session, person_id, False)


async def set_location(session: AsyncSession, person: PersonPrincipal, point: Point) -> None:
    updated = (
        await session.execute(
            text(
                f"""
                UPDATE duty SET location = {_POINT}, accuracy_m = :accuracy, located_at = now()
                WHERE person_id = :person_id AND on_duty = true
                RETURNING person_id
                """  # noqa: S608 - constant fragments, values are bound
            ),
            {
                "person_id": person.person_id,
                "lat": point.lat,
                "lng": point.lng,
                "accuracy": point.accuracy_m,
            },
        )
    ).first()
    if updated is None:
        raise NotOnDuty("Go on duty (PUT /me/duty) before sending positions.")
    await duty_feed.announce(session, person.person_id, True)
    await _share_with_caller(session, person, point)


# While the responder is on the way or on site (the caller is shown where).
_SHOWS_POSITION = sql_values(SHOWS_RESPONDER_POSITION)
# The caller of a call follows the responder's position, at most this often.
POSITION_EVENT_INTERVAL = timedelta(seconds=5)


async def _share_with_caller(session: AsyncSession, person: PersonPrincipal, point: Point) -> None:
    """While the person responds to a call on the way or on site, the position
    becomes a `responder.location` event (only the caller is shown those)."""
    calls = (
        await session.execute(
            text(
                f"""
                SELECT c.id FROM call c
                WHERE c.responder_id = :me AND c.status IN {_SHOWS_POSITION}
                  AND NOT EXISTS (
                      SELECT 1 FROM event e
                      WHERE e.call_id = c.id AND e.type = 'responder.location'
                        AND e.at > now() - CAST(:interval AS interval))
                FOR UPDATE OF c
                """  # noqa: S608 - constant literals, values are bound
            ),
            {"me": person.person_id, "interval": POSITION_EVENT_INTERVAL},
        )
    ).scalars()
    for call_id in list(calls):
        await events.append(
            session,
            EventType.responder_location,
            call_id,
            {"lat": point.lat, "lng": point.lng, "accuracy_m": point.accuracy_m},
        )
