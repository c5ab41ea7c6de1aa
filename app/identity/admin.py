"""Administration: teams, their members, dispatchers, disabling a person.

An admin acts everywhere; a dispatcher acts within its community or street.
A team outside a dispatcher's area answers 404, as if it did not exist.
Every change is written to the audit log.

Enrolling a phone (on a team, or as a dispatcher) never renames anyone: the
name given is only the name of a person created for a phone nobody has yet;
a person who exists keeps theirs, and the answer shows the name as stored.
A dispatcher may enrol a phone only when its person is new or belongs to
nothing outside the dispatcher's area (`_may_enrol`): the admin, a disabled
person, a dispatcher or team member of elsewhere are refused, all with one
and the same 403 `cannot_enrol_phone` that names nobody and says not why.
docs/security.md ("Enrolling people") says what a dispatcher can still learn.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.audit import log as audit
from app.audit.log import RequestOrigin
from app.core.config import AppEnv, Settings
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.phones import mask_phone, normalize_phone
from app.duty import service as duty
from app.identity.auth import PersonPrincipal, revoke_session
from app.models.area import AreaRef
from app.models.auth import DispatcherArea, DispatcherCreate, DispatcherPublic, PersonDisabled
from app.models.enums import AreaLevel
from app.models.geo import Point
from app.models.team import MemberCreate, MemberPublic, PersonPublic, TeamCreate, TeamPublic
from app.offers import service as offers

# The areas a grid lies in, itself included: grid, branch, community, street.
_ANCESTORS = text(
    """
    SELECT ARRAY[g.id, b.id, c.id, s.id] FROM area g
    JOIN area b ON b.id = g.parent_id JOIN area c ON c.id = b.parent_id
    JOIN area s ON s.id = c.parent_id
    WHERE g.id = :grid_id
    """
)


async def _within_scope(session: AsyncSession, actor: PersonPrincipal, grid_id: uuid.UUID) -> bool:
    if actor.is_admin:
        return True
    if actor.dispatcher_area is None:
        return False
    ancestors: list[uuid.UUID] = (
        await session.execute(_ANCESTORS, {"grid_id": grid_id})
    ).scalar() or []
    return actor.dispatcher_area.id in ancestors


class CannotEnrol(Forbidden):
    code = "cannot_enrol_phone"
    title = "Cannot enrol this phone"
    keep_changes = True  # the refusal is audited: probing phones leaves a trace


# Whether a person belongs to nothing outside an area: every team they are on
# has its grid in it, any dispatcher role of theirs is of it or of an area
# inside it, and they are neither an admin nor disabled.
_BELONGS_WITHIN = text(
    """
    WITH RECURSIVE inside(id) AS (
        SELECT CAST(:area_id AS uuid)
        UNION ALL
        SELECT a.id FROM area a JOIN inside ON a.parent_id = inside.id
    )
    SELECT NOT p.is_admin AND p.disabled_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM team_member m JOIN team t ON t.id = m.team_id
                       WHERE m.person_id = p.id AND t.grid_id NOT IN (SELECT id FROM inside))
       AND NOT EXISTS (SELECT 1 FROM dispatcher d
                       WHERE d.person_id = p.id AND d.area_id NOT IN (SELECT id FROM inside))
    FROM person p WHERE p.id = :person_id
    """
)


async def _may_enrol(session: AsyncSession, actor: PersonPrincipal, person_id: uuid.UUID) -> bool:
    """An admin may enrol anyone. A dispatcher may enrol a person who is new
    or belongs to nothing outside its area: a resident who only ever logged
    in belongs nowhere, so enrolling them is no different from enrolling
    their phone the day before they first logged in."""
    if actor.is_admin:
        return True
    if actor.dispatcher_area is None:
        return False
    params = {"area_id": actor.dispatcher_area.id, "person_id": person_id}
    return bool((await session.execute(_BELONGS_WITHIN, params)).scalar())


async def _person_for_phone(
    session: AsyncSession, settings: Settings, raw_phone: str, display_name: str
) -> tuple[uuid.UUID, str, str]:
    """The person with this phone, created under `display_name` if there is
    none; an existing person keeps their own name. The row stays locked until
    the transaction ends, so two staff enrolling one phone at once are
    decided one after the other, each seeing what the other did."""
    phone = normalize_phone(raw_phone, allow_demo=settings.app_env is not AppEnv.production)
    row = (
        await session.execute(
            text(
                """
                INSERT INTO person (id, phone, display_name) VALUES (:id, :phone, :name)
                ON CONFLICT (phone) DO UPDATE SET phone = excluded.phone
                RETURNING id, display_name, phone
                """
            ),
            {"id": uuid.uuid4(), "phone": phone, "name": display_name},
        )
    ).one()
    return row.id, row.display_name, row.phone


async def create_team(
    session: AsyncSession, actor: PersonPrincipal, body: TeamCreate, origin: RequestOrigin
) -> TeamPublic:
    location = await areas.locate(session, body.base.lat, body.base.lng)
    if not await _within_scope(session, actor, location.grid.id):
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
    if grid_id is None or not await _within_scope(session, actor, grid_id):
        raise NotFound("No such team.")
    person_id, display_name, phone = await _person_for_phone(
        session, settings, body.phone, body.display_name
    )
    if not await _may_enrol(session, actor, person_id):
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
        raise CannotEnrol("This phone cannot be put on a team by you; an admin can enrol it.")
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
    person_id, display_name, phone = await _person_for_phone(
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
    ).first()
    if row is None:
        raise NotFound("No such person.")
    sessions = await session.execute(
        text("SELECT id FROM auth_session WHERE person_id = :id AND revoked_at IS NULL"),
        {"id": person_id},
    )
    for (session_id,) in sessions.all():
        await revoke_session(session, session_id, "disabled")
    # Off duty, so the partial index of on-duty positions that dispatch scans
    # no longer holds them; the availability rule checks `disabled_at` too.
    await duty.take_off_duty(session, person_id)
    teams = (
        await session.execute(
            text("SELECT team_id FROM team_member WHERE person_id = :id ORDER BY team_id"),
            {"id": person_id},
        )
    ).scalars()
    await offers.release_offers_nobody_can_take(
        session, settings, list(teams), holding_a_call=False
    )
    await audit.record(
        session,
        "person_disabled",
        origin,
        actor_person_id=actor.person_id,
        target_type="person",
        target_id=person_id,
    )
    return PersonDisabled(id=row.id, disabled_at=row.disabled_at)
