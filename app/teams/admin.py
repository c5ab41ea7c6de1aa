"""Administration of teams: creating one, putting a phone on its roster.

An admin acts everywhere; a dispatcher within its community or street; a
team outside a dispatcher's area answers 404, as if it did not exist.
Every change is written to the audit log. Enrolling follows the rule of
`app/identity/enrolment.py`: nobody is renamed, nobody from elsewhere is
pulled in. Every change of a roster runs inside `rules.watching`, which
tells the team's dispatchers when it makes the team fall below the team
rule (`app/teams/rules.py`); falling is allowed, even by removing the last
full-time member.
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
from app.duty import service as duty
from app.identity import enrolment
from app.identity.auth import PersonPrincipal
from app.models.area import AreaRef
from app.models.enums import MemberKind, MemberRole
from app.models.geo import Point
from app.models.team import (
    MemberChanged,
    MemberCreate,
    MemberPublic,
    MemberUpdate,
    PersonPublic,
    TeamCreate,
    TeamPublic,
    TeamStatus,
)
from app.offers import service as offers
from app.teams import rules


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
    await team_in_scope(session, actor, team_id)
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
    async with rules.watching(session, settings, [team_id]):
        inserted = await _insert_member(session, team_id, person_id, body.kind, roles)
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


async def team_in_scope(session: AsyncSession, actor: PersonPrincipal, team_id: uuid.UUID) -> None:
    """The team exists and the actor acts on it (an admin, or a dispatcher
    whose area holds its grid); else 404, as if it did not exist."""
    grid_id = (
        await session.execute(text("SELECT grid_id FROM team WHERE id = :id"), {"id": team_id})
    ).scalar()
    if grid_id is None or not await enrolment.within_scope(session, actor, grid_id):
        raise NotFound("No such team.")


async def _insert_member(
    session: AsyncSession,
    team_id: uuid.UUID,
    person_id: uuid.UUID,
    kind: MemberKind,
    roles: list[str],
) -> uuid.UUID | None:
    return (
        await session.execute(
            text(
                """
                INSERT INTO team_member (team_id, person_id, kind, roles)
                VALUES (:team_id, :person_id, :kind, :roles)
                ON CONFLICT DO NOTHING
                RETURNING person_id
                """
            ),
            {"team_id": team_id, "person_id": person_id, "kind": kind.value, "roles": roles},
        )
    ).scalar()


_UPDATE_MEMBER = text(
    """
    UPDATE team_member m
       SET kind = coalesce(CAST(:kind AS varchar), m.kind),
           roles = coalesce(CAST(:roles AS varchar[]), m.roles)
      FROM person p
     WHERE m.team_id = :team_id AND m.person_id = :person_id AND p.id = m.person_id
    RETURNING m.kind, m.roles, p.display_name, p.phone
    """
)


async def update_member(
    session: AsyncSession,
    settings: Settings,
    actor: PersonPrincipal,
    team_id: uuid.UUID,
    person_id: uuid.UUID,
    body: MemberUpdate,
    origin: RequestOrigin,
) -> MemberChanged:
    """Change a member's kind and/or roles (the roles given replace them
    all); what is left out stays as it was."""
    await team_in_scope(session, actor, team_id)
    roles = sorted({role.value for role in body.roles}) if body.roles is not None else None
    async with rules.watching(session, settings, [team_id]) as watch:
        row = (
            await session.execute(
                _UPDATE_MEMBER,
                {
                    "team_id": team_id,
                    "person_id": person_id,
                    "kind": body.kind.value if body.kind is not None else None,
                    "roles": roles,
                },
            )
        ).first()
        if row is None:
            raise NotFound("No such member of this team.")
    await audit.record(
        session,
        "member_changed",
        origin,
        actor_person_id=actor.person_id,
        target_type="team",
        target_id=team_id,
        detail={"person_id": str(person_id), "kind": row.kind, "roles": list(row.roles)},
    )
    return MemberChanged(
        team_id=team_id,
        person=PersonPublic(
            id=person_id, display_name=row.display_name, phone_masked=mask_phone(row.phone)
        ),
        kind=MemberKind(row.kind),
        roles=[MemberRole(role) for role in row.roles],
        team_status=watch.after.get(team_id, TeamStatus.incomplete),
    )


async def remove_member(
    session: AsyncSession,
    settings: Settings,
    actor: PersonPrincipal,
    team_id: uuid.UUID,
    person_id: uuid.UUID,
    origin: RequestOrigin,
) -> None:
    """Take a person off a team's roster. A person on no team any more is
    taken off duty too; the team's open offers that nobody left can take
    are withdrawn and their calls move on, as when a member is disabled."""
    await team_in_scope(session, actor, team_id)
    async with rules.watching(session, settings, [team_id]):
        removed = (
            await session.execute(
                text(
                    """
                    DELETE FROM team_member WHERE team_id = :team_id AND person_id = :person_id
                    RETURNING kind
                    """
                ),
                {"team_id": team_id, "person_id": person_id},
            )
        ).first()
        if removed is None:
            raise NotFound("No such member of this team.")
    still_member = (
        await session.execute(
            text("SELECT EXISTS (SELECT 1 FROM team_member WHERE person_id = :p)"),
            {"p": person_id},
        )
    ).scalar_one()
    if not still_member:
        await duty.take_off_duty(session, person_id)
    await offers.release_offers_nobody_can_take(session, settings, [team_id], holding_a_call=False)
    await audit.record(
        session,
        "member_removed",
        origin,
        actor_person_id=actor.person_id,
        target_type="team",
        target_id=team_id,
        detail={"person_id": str(person_id), "kind": removed.kind},
    )
