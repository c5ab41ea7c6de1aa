"""Administration of teams: creating one, putting a phone on its roster.

An admin acts everywhere; a dispatcher within its community or street; a
team outside a dispatcher's area answers 404, as if it did not exist.
Every change is written to the audit log. Enrolling follows the rule of
`app/identity/enrolment.py`: nobody is renamed, nobody from elsewhere is
pulled in.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.audit import log as audit
from app.audit.log import RequestOrigin
from app.core.config import Settings
from app.core.errors import Conflict, Forbidden, NotFound
from app.core.phones import mask_phone
from app.identity import enrolment
from app.identity.auth import PersonPrincipal
from app.models.area import AreaRef
from app.models.geo import Point
from app.models.team import MemberCreate, MemberPublic, PersonPublic, TeamCreate, TeamPublic


async def create_team(
    session: AsyncSession, actor: PersonPrincipal, body: TeamCreate, origin: RequestOrigin
) -> TeamPublic:
    location = await areas.locate(session, body.base.lat, body.base.lng)
    if not await enrolment.within_scope(session, actor, location.grid.id):
        raise Forbidden("The base lies outside your area.", code="outside_your_area")
    row = (
        await session.execute(
            text(
                """
                INSERT INTO team (id, name, grid_id, base, service_content)
                VALUES (:id, :name, :grid_id,
                        ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography, :content)
                RETURNING id, created_at
                """
            ),
            {
                "id": uuid.uuid4(),
                "name": body.name,
                "grid_id": location.grid.id,
                "lat": body.base.lat,
                "lng": body.base.lng,
                "content": body.service_content,
            },
        )
    ).one()
    await audit.record(
        session,
        "team_created",
        origin,
        actor_person_id=actor.person_id,
        target_type="team",
        target_id=row.id,
    )
    return TeamPublic(
        id=row.id,
        name=body.name,
        grid=AreaRef(id=location.grid.id, name=location.grid.name),
        base=Point(lat=body.base.lat, lng=body.base.lng),
        service_content=body.service_content,
        created_at=row.created_at,
    )


async def add_member(
    session: AsyncSession,
    settings: Settings,
    actor: PersonPrincipal,
    team_id: uuid.UUID,
    body: MemberCreate,
    origin: RequestOrigin,
) -> MemberPublic:
    grid_id = (
        await session.execute(text("SELECT grid_id FROM team WHERE id = :id"), {"id": team_id})
    ).scalar()
    if grid_id is None or not await enrolment.within_scope(session, actor, grid_id):
        raise NotFound("No such team.")
    person_id, display_name, phone = await enrolment.person_for_phone(
        session, settings, body.phone, body.display_name
    )
    if not await enrolment.may_enrol(session, actor, person_id):
        # Neither the person's id nor why: the answer is the same for the
        # admin's phone as for a volunteer's of another community.
        await audit.record(
            session,
            "member_refused",
            origin,
            actor_person_id=actor.person_id,
            target_type="team",
            target_id=team_id,
            detail={"person_id": str(person_id)},
        )
        raise enrolment.CannotEnrol(
            "This phone cannot be put on a team by you; an admin can enrol it."
        )
    roles = sorted({role.value for role in body.roles})
    inserted = (
        await session.execute(
            text(
                """
                INSERT INTO team_member (team_id, person_id, kind, roles)
                VALUES (:team_id, :person_id, :kind, :roles)
                ON CONFLICT DO NOTHING
                RETURNING person_id
                """
            ),
            {"team_id": team_id, "person_id": person_id, "kind": body.kind.value, "roles": roles},
        )
    ).first()
    if inserted is None:
        raise Conflict("This person is already a member of the team.", code="already_member")
    await audit.record(
        session,
        "member_added",
        origin,
        actor_person_id=actor.person_id,
        target_type="team",
        target_id=team_id,
        detail={"person_id": str(person_id), "kind": body.kind.value},
    )
    return MemberPublic(
        team_id=team_id,
        person=PersonPublic(
            id=person_id, display_name=display_name, phone_masked=mask_phone(phone)
        ),
        kind=body.kind,
        roles=body.roles,
    )
