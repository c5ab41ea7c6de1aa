"""A person's own things: devices, and a volunteer's duty and position.

Only the latest position is kept (no movement history), and it is dropped
when the volunteer goes off duty.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Unprocessable
from app.models.geo import Point
from app.models.team import DutyState, DutyUpdate
from app.services.auth import PersonPrincipal


class NotOnDuty(Conflict):
    code = "not_on_duty"
    title = "Not on duty"


async def register_device(
    session: AsyncSession, person: PersonPrincipal, token: str, platform: str
) -> None:
    # A token belongs to one phone: registering it again, by anyone, moves it.
    await session.execute(
        text(
            """
            INSERT INTO device (token, person_id, platform) VALUES (:token, :person_id, :platform)
            ON CONFLICT (token) DO UPDATE
               SET person_id = excluded.person_id, platform = excluded.platform,
                   updated_at = now()
            """
        ),
        {"token": token, "person_id": person.person_id, "platform": platform},
    )


async def remove_device(session: AsyncSession, person: PersonPrincipal, token: str) -> None:
    await session.execute(
        text("DELETE FROM device WHERE token = :token AND person_id = :person_id"),
        {"token": token, "person_id": person.person_id},
    )


_POINT = "ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography"
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
                    ON CONFLICT (person_id) DO UPDATE
                       SET since = CASE WHEN duty.on_duty THEN now() ELSE duty.since END,
                           on_duty = false, location = NULL, accuracy_m = NULL, located_at = NULL
                    {_STATE}
                    """  # noqa: S608 - constant fragments, values are bound
                ),
                {"person_id": person.person_id},
            )
        ).one()
    location = (
        Point(lat=row.lat, lng=row.lng, accuracy_m=row.accuracy_m) if row.lat is not None else None
    )
    return DutyState(on_duty=row.on_duty, since=row.since, location=location)


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
