"""Administration of people: naming dispatchers, disabling a person.

Every change is written to the audit log; dispatchers are enrolled by the
rule of `app/identity/enrolment.py`.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import log as audit
from app.audit.log import RequestOrigin
from app.core.config import Settings
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.phones import mask_phone
from app.duty import service as duty
from app.identity import enrolment
from app.identity.auth import PersonPrincipal, revoke_session
from app.models.auth import DispatcherArea, DispatcherCreate, DispatcherPublic, PersonDisabled
from app.models.enums import AreaLevel
from app.offers import service as offers
from app.teams import rules


async def create_dispatcher(
    session: AsyncSession,
    settings: Settings,
    actor: PersonPrincipal,
    body: DispatcherCreate,
    origin: RequestOrigin,
) -> DispatcherPublic:
    area = (
        await session.execute(
            text("SELECT id, name, level FROM area WHERE id = :id"), {"id": body.area_id}
        )
    ).first()
    if area is None:
        raise Unprocessable("No area has this id.", code="unknown_area")
    if area.level not in (AreaLevel.community, AreaLevel.street):
        raise Unprocessable(
            "A dispatcher acts within a community or the street.", code="invalid_area_level"
        )
    person_id, display_name, phone = await enrolment.person_for_phone(
        session, settings, body.phone, body.display_name
    )
    await session.execute(
        text(
            """
            INSERT INTO dispatcher (person_id, area_id) VALUES (:person_id, :area_id)
            ON CONFLICT (person_id) DO UPDATE SET area_id = excluded.area_id
            """
        ),
        {"person_id": person_id, "area_id": area.id},
    )
    await audit.record(
        session,
        "dispatcher_set",
        origin,
        actor_person_id=actor.person_id,
        target_type="person",
        target_id=person_id,
        detail={"area_id": str(area.id)},
    )
    return DispatcherPublic(
        person_id=person_id,
        display_name=display_name,
        phone_masked=mask_phone(phone),
        area=DispatcherArea(id=area.id, name=area.name, level=AreaLevel(area.level)),
    )


async def disable_person(
    session: AsyncSession,
    settings: Settings,
    actor: PersonPrincipal,
    person_id: uuid.UUID,
    origin: RequestOrigin,
) -> PersonDisabled:
    """Disable a person: every session ends, and the person is off duty and
    offered nothing (API.md). Offers that only this person could have taken
    are withdrawn now and their calls move on, rather than waiting out their
    deadline for someone who will never answer."""
    if person_id == actor.person_id:
        raise Conflict("Admins cannot disable themselves.", code="cannot_disable_self")
    # The person first, then their teams, as enrolling a phone takes them.
    exists = (
        await session.execute(
            text("SELECT id FROM person WHERE id = :id FOR UPDATE"), {"id": person_id}
        )
    ).first()
    if exists is None:
        raise NotFound("No such person.")
    teams = list(
        (
            await session.execute(
                text("SELECT team_id FROM team_member WHERE person_id = :id ORDER BY team_id"),
                {"id": person_id},
            )
        ).scalars()
    )
    # A disabled member no longer counts for the team rule: a team this
    # makes incomplete is told to its dispatchers.
    async with rules.watching(session, settings, teams):
        row = (
            await session.execute(
                text(
                    """
                    UPDATE person SET disabled_at = coalesce(disabled_at, now())
                    WHERE id = :id RETURNING id, disabled_at
                    """
                ),
                {"id": person_id},
            )
        ).one()
    sessions = await session.execute(
        text("SELECT id FROM auth_session WHERE person_id = :id AND revoked_at IS NULL"),
        {"id": person_id},
    )
    for (session_id,) in sessions.all():
        await revoke_session(session, session_id, "disabled")
    # Off duty, so the partial index of on-duty positions that dispatch scans
    # no longer holds them; the availability rule checks `disabled_at` too.
    await duty.take_off_duty(session, person_id)
    await offers.release_offers_nobody_can_take(session, settings, teams, holding_a_call=False)
    await audit.record(
        session,
        "person_disabled",
        origin,
        actor_person_id=actor.person_id,
        target_type="person",
        target_id=person_id,
    )
    return PersonDisabled(id=row.id, disabled_at=row.disabled_at)
