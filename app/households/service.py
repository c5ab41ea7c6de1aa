"""Households and pairing: recording a household and its residents, pairing
party members with it, and reading it.

The rules (docs/organisation.md, "Households and pairing"):

- Who may see a household is decided by `app.households.visibility` alone;
  every read of household data writes an audit row (`household.read`,
  subject `household:<id>`) in the same transaction as the read, so an
  answer that was sent was recorded, and a refused read records nothing.
- Changes are for an admin, or a dispatcher of the household's area (its
  grid lies in the dispatcher's community or street); each is audited.
- A resident belongs to at most one household (`household_resident`'s key
  is the person). Phones are normalised like every phone, and a phone
  nobody has yet gets a person, as enrolment does; a dispatcher may only
  name people who belong to nothing outside its area
  (`app.identity.enrolment.may_enrol`).
- A party member is a person on some team's roster who is a party member:
  a full-time member (the grid's full-time party member) or a person
  recorded as a party member (`person.is_party_member`). A party member
  looks after at most PAIRING_MAX households (409 `pairing_limit`, decided
  under a lock on the member's row, so two pairings at once cannot both
  pass the limit); fewer than PAIRING_MIN is reported (`below_minimum`,
  GET /dispatch/pairing-shortfalls), never refused.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.areas import tree
from app.audit import log as audit
from app.audit.log import RequestOrigin
from app.core.config import AppEnv, Settings
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.phones import mask_phone, normalize_phone
from app.households import visibility
from app.identity import enrolment
from app.identity.auth import PersonPrincipal
from app.models.area import AreaRef
from app.models.call import TeamRef
from app.models.enums import Vulnerability
from app.models.geo import Point
from app.models.household import (
    HouseholdCreate,
    HouseholdPublic,
    PairedMember,
    PairingCreate,
    PairingPublic,
    PairingShortfall,
    PairingShortfallList,
    ResidentPublic,
)

READ = "household.read"


class PairingLimit(Conflict):
    code = "pairing_limit"
    title = "Pairing limit reached"


class AlreadyPaired(Conflict):
    code = "already_paired"
    title = "Already paired"


class AlreadyResident(Conflict):
    code = "already_resident"
    title = "Already a resident of a household"


class NotAPartyMember(Unprocessable):
    code = "not_a_party_member"
    title = "Not a party member"


class NotPaired(NotFound):
    code = "not_paired"
    title = "Not paired"


def subject(household_id: uuid.UUID) -> str:
    return f"household:{household_id}"


# ---- reading -------------------------------------------------------------------------

_VIEW = text(
    """
    SELECT h.id, h.address, h.vulnerabilities, h.created_at,
           ST_Y(h.location::geometry) AS lat, ST_X(h.location::geometry) AS lng,
           g.id AS grid_id, g.name AS grid_name,
           coalesce((SELECT json_agg(json_build_object(
                                'id', p.id, 'display_name', p.display_name, 'phone', p.phone)
                             ORDER BY r.created_at, p.id)
                     FROM household_resident r JOIN person p ON p.id = r.person_id
                     WHERE r.household_id = h.id), '[]'::json) AS residents,
           coalesce((SELECT json_agg(json_build_object(
                                'person_id', p.id, 'display_name', p.display_name)
                             ORDER BY x.created_at, p.id)
                     FROM household_pairing x JOIN person p ON p.id = x.person_id
                     WHERE x.household_id = h.id), '[]'::json) AS paired
    FROM household h JOIN area g ON g.id = h.grid_id
    WHERE h.id = ANY(CAST(:ids AS uuid[]))
    """
)


def _loaded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _public(row: Any) -> HouseholdPublic:
    return HouseholdPublic(
        id=row.id,
        address=row.address,
        location=Point(lat=row.lat, lng=row.lng),
        grid=AreaRef(id=row.grid_id, name=row.grid_name),
        tags=[Vulnerability(tag) for tag in row.vulnerabilities],
        residents=[
            ResidentPublic(
                id=r["id"], display_name=r["display_name"], phone_masked=mask_phone(r["phone"])
            )
            for r in _loaded(row.residents)
        ],
        paired_members=[PairedMember.model_validate(p) for p in _loaded(row.paired)],
        created_at=row.created_at,
    )


async def _views(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, HouseholdPublic]:
    rows = (await session.execute(_VIEW, {"ids": ids})).all()
    return {row.id: _public(row) for row in rows}


async def _record_read(
    session: AsyncSession,
    actor: PersonPrincipal,
    household_id: uuid.UUID,
    origin: RequestOrigin,
    via: str,
    viewer: visibility.HouseholdViewer,
) -> None:
    await audit.record(
        session,
        READ,
        origin,
        actor_person_id=actor.person_id,
        target_type="household",
        target_id=household_id,
        detail={"via": via, "as": viewer.value},
    )


async def read_household(
    session: AsyncSession, actor: PersonPrincipal, household_id: uuid.UUID, origin: RequestOrigin
) -> HouseholdPublic:
    """One household, for whoever may see it (404 for anyone else, with
    nothing recorded); the read is audited."""
    viewer = await visibility.require_viewer(session, actor, household_id)
    view = (await _views(session, [household_id]))[household_id]
    await _record_read(session, actor, household_id, origin, "admin/households", viewer)
    return view


async def my_households(
    session: AsyncSession, actor: PersonPrincipal, origin: RequestOrigin
) -> list[HouseholdPublic]:
    """The households paired with the caller, oldest pairing first; one
    audit row per household read."""
    ids = list(
        (
            await session.execute(
                text(
                    "SELECT household_id FROM household_pairing WHERE person_id = :me "
                    "ORDER BY created_at, household_id"
                ),
                {"me": actor.person_id},
            )
        ).scalars()
    )
    views = await _views(session, ids)
    for household_id in ids:
        await _record_read(
            session, actor, household_id, origin, "me/households", visibility.HouseholdViewer.paired
        )
    return [views[household_id] for household_id in ids]


# ---- recording a household -------------------------------------------------------------


async def _resident_for_phone(
    session: AsyncSession,
    settings: Settings,
    actor: PersonPrincipal,
    raw_phone: str,
    household_id: uuid.UUID,
    origin: RequestOrigin,
) -> uuid.UUID:
    phone = normalize_phone(raw_phone, allow_demo=settings.app_env is not AppEnv.production)
    # The name a person made for a phone gets, as at a first login.
    name = "居民" + phone[-4:]
    person_id, _, _ = await enrolment.person_for_phone(session, settings, phone, name)
    if not await enrolment.may_enrol(session, actor, person_id):
        await audit.record(
            session,
            "household.resident_refused",
            origin,
            actor_person_id=actor.person_id,
            target_type="household",
            target_id=household_id,
            detail={"person_id": str(person_id)},
        )
        raise enrolment.CannotEnrol(
            "This phone cannot be made a resident by you; an admin can do it."
        )
    inserted = (
        await session.execute(
            text(
                """
                INSERT INTO household_resident (person_id, household_id) VALUES (:p, :h)
                ON CONFLICT (person_id) DO NOTHING RETURNING person_id
                """
            ),
            {"p": person_id, "h": household_id},
        )
    ).first()
    if inserted is None:
        raise AlreadyResident(
            "A phone given is already a resident of a household; a resident belongs to one."
        )
    return person_id


async def create_household(
    session: AsyncSession,
    settings: Settings,
    actor: PersonPrincipal,
    body: HouseholdCreate,
    origin: RequestOrigin,
) -> HouseholdPublic:
    location = await areas.locate(session, body.location.lat, body.location.lng)
    if not await enrolment.within_scope(session, actor, location.grid.id):
        raise Forbidden("The household lies outside your area.", code="outside_your_area")
    household_id = uuid.uuid4()
    tags = [tag.value for tag in Vulnerability if tag in body.tags]
    await session.execute(
        text(
            """
            INSERT INTO household (id, address, grid_id, location, vulnerabilities)
            VALUES (:id, :address, :grid,
                    ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography, :tags)
            """
        ),
        {
            "id": household_id,
            "address": body.address,
            "grid": location.grid.id,
            "lat": body.location.lat,
            "lng": body.location.lng,
            "tags": tags,
        },
    )
    residents = 0
    for phone in dict.fromkeys(body.residents):
        await _resident_for_phone(session, settings, actor, phone, household_id, origin)
        residents += 1
    # The answer shows the household to its creator: recorded as the
    # creation, which names no tag and no phone.
    await audit.record(
        session,
        "household.created",
        origin,
        actor_person_id=actor.person_id,
        target_type="household",
        target_id=household_id,
        detail={"residents": residents},
    )
    return (await _views(session, [household_id]))[household_id]


# ---- pairing ---------------------------------------------------------------------------

# The member's row, locked against another pairing of theirs (FOR NO KEY
# UPDATE: rows that merely reference the person are not held up), and
# whether they are a party member on some team, and on one in `:area`
# (NULL: anywhere).
_MEMBER = text(
    f"""
    WITH inside AS ({tree.inside(":area")})
    SELECT p.id, p.display_name, p.disabled_at,
           EXISTS (SELECT 1 FROM team_member m WHERE m.person_id = p.id
                   AND (p.is_party_member OR m.kind = 'full_time')) AS party_member,
           CAST(:area AS uuid) IS NULL
             OR EXISTS (SELECT 1 FROM team_member m JOIN team t ON t.id = m.team_id
                        WHERE m.person_id = p.id AND t.grid_id IN (SELECT id FROM inside))
             AS in_area
    FROM person p WHERE p.id = :person
    FOR NO KEY UPDATE OF p
    """  # noqa: S608 - a fragment of app.areas.tree, values are bound
)
_COUNT = text("SELECT count(*) FROM household_pairing WHERE person_id = :person")


async def pair(
    session: AsyncSession,
    settings: Settings,
    actor: PersonPrincipal,
    household_id: uuid.UUID,
    body: PairingCreate,
    origin: RequestOrigin,
) -> PairingPublic:
    await visibility.require_staff_of(session, actor, household_id)
    area = None if actor.is_admin or actor.dispatcher_area is None else actor.dispatcher_area.id
    member = (await session.execute(_MEMBER, {"person": body.person_id, "area": area})).first()
    if member is None or not member.party_member or member.disabled_at is not None:
        raise NotAPartyMember(
            "Only a party member on a team (full-time, or recorded as a party member) can be "
            "paired with a household."
        )
    if not member.in_area:
        raise Forbidden(
            "This party member is on no team of your area; an admin can pair them.",
            code="outside_your_area",
        )
    # Counted after the lock: a pairing committed meanwhile is counted.
    count = int((await session.execute(_COUNT, {"person": body.person_id})).scalar_one())
    already = (
        await session.execute(
            text("SELECT 1 FROM household_pairing WHERE person_id = :p AND household_id = :h"),
            {"p": body.person_id, "h": household_id},
        )
    ).first()
    if already is not None:
        raise AlreadyPaired("This party member already looks after this household.")
    if count >= settings.pairing_max:
        raise PairingLimit(
            f"This party member already looks after {count} households "
            f"(at most {settings.pairing_max})."
        )
    await session.execute(
        text("INSERT INTO household_pairing (person_id, household_id) VALUES (:p, :h)"),
        {"p": body.person_id, "h": household_id},
    )
    await audit.record(
        session,
        "household.paired",
        origin,
        actor_person_id=actor.person_id,
        target_type="household",
        target_id=household_id,
        detail={"person_id": str(body.person_id)},
    )
    return _pairing(settings, household_id, body.person_id, member.display_name, count + 1)


def _pairing(
    settings: Settings, household_id: uuid.UUID, person_id: uuid.UUID, name: str, count: int
) -> PairingPublic:
    return PairingPublic(
        household_id=household_id,
        person_id=person_id,
        display_name=name,
        pairings_count=count,
        below_minimum=count < settings.pairing_min,
        minimum=settings.pairing_min,
        maximum=settings.pairing_max,
    )


async def unpair(
    session: AsyncSession,
    actor: PersonPrincipal,
    household_id: uuid.UUID,
    person_id: uuid.UUID,
    origin: RequestOrigin,
) -> None:
    await visibility.require_staff_of(session, actor, household_id)
    gone = (
        await session.execute(
            text(
                "DELETE FROM household_pairing WHERE person_id = :p AND household_id = :h "
                "RETURNING person_id"
            ),
            {"p": person_id, "h": household_id},
        )
    ).first()
    if gone is None:
        raise NotPaired("This person is not paired with this household.")
    await audit.record(
        session,
        "household.unpaired",
        origin,
        actor_person_id=actor.person_id,
        target_type="household",
        target_id=household_id,
        detail={"person_id": str(person_id)},
    )


# The party members of teams in `:area` (every team when NULL) who look
# after fewer than `:minimum` households, fewest first; a member's team is
# the first of theirs there by name.
_SHORTFALLS = text(
    f"""
    WITH inside AS ({tree.inside(":area")}),
    members AS (
        SELECT DISTINCT ON (p.id) p.id, p.display_name, t.id AS team_id, t.name AS team_name
        FROM team_member m JOIN person p ON p.id = m.person_id JOIN team t ON t.id = m.team_id
        WHERE (p.is_party_member OR m.kind = 'full_time') AND p.disabled_at IS NULL
          AND (CAST(:area AS uuid) IS NULL OR t.grid_id IN (SELECT id FROM inside))
        ORDER BY p.id, t.name, t.id
    )
    SELECT s.*, (SELECT count(*) FROM household_pairing x WHERE x.person_id = s.id) AS n
    FROM members s
    WHERE (SELECT count(*) FROM household_pairing x WHERE x.person_id = s.id) < :minimum
    ORDER BY n, s.display_name, s.id
    """  # noqa: S608 - a fragment of app.areas.tree, values are bound
)


async def shortfalls(
    session: AsyncSession, settings: Settings, actor: PersonPrincipal
) -> PairingShortfallList:
    area = None if actor.is_admin or actor.dispatcher_area is None else actor.dispatcher_area.id
    rows = (
        await session.execute(_SHORTFALLS, {"area": area, "minimum": settings.pairing_min})
    ).all()
    return PairingShortfallList(
        data=[
            PairingShortfall(
                person_id=row.id,
                display_name=row.display_name,
                team=TeamRef(id=row.team_id, name=row.team_name),
                pairings_count=row.n,
                short_by=settings.pairing_min - row.n,
            )
            for row in rows
        ],
        next_cursor=None,
    )
