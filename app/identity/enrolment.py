"""Who staff may act on, and enrolling a phone.

An admin acts everywhere; a dispatcher acts within its community or street
(`within_scope`).

Enrolling a phone (on a team, or as a dispatcher) never renames anyone: the
name given is only the name of a person created for a phone nobody has yet
(`person_for_phone`); a person who exists keeps theirs, and the answer shows
the name as stored. A dispatcher may enrol a phone only when its person is
new or belongs to nothing outside the dispatcher's area (`may_enrol`): the
admin, a disabled person, a dispatcher or team member of elsewhere are
refused, all with one and the same 403 `cannot_enrol_phone` that names
nobody and says not why. docs/security.md ("Enrolling people") says what a
dispatcher can still learn.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import tree
from app.core.config import AppEnv, Settings
from app.core.errors import Forbidden
from app.core.phones import normalize_phone
from app.identity.auth import PersonPrincipal


# The areas a grid lies in, itself included: grid, branch, community, street.
async def within_scope(session: AsyncSession, actor: PersonPrincipal, grid_id: uuid.UUID) -> bool:
    if actor.is_admin:
        return True
    if actor.dispatcher_area is None:
        return False
    found = await tree.lineage(session, grid_id)
    return found is not None and found.within(actor.dispatcher_area.id)


class CannotEnrol(Forbidden):
    code = "cannot_enrol_phone"
    title = "Cannot enrol this phone"
    keep_changes = True  # the refusal is audited: probing phones leaves a trace


# Whether a person belongs to nothing outside an area: every team they are on
# has its grid in it, any dispatcher role of theirs is of it or of an area
# inside it, and they are neither an admin nor disabled.
_BELONGS_WITHIN = text(
    f"""
    WITH inside AS ({tree.inside(":area_id")})
    SELECT NOT p.is_admin AND p.disabled_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM team_member m JOIN team t ON t.id = m.team_id
                       WHERE m.person_id = p.id AND t.grid_id NOT IN (SELECT id FROM inside))
       AND NOT EXISTS (SELECT 1 FROM dispatcher d
                       WHERE d.person_id = p.id AND d.area_id NOT IN (SELECT id FROM inside))
    FROM person p WHERE p.id = :person_id
    """  # noqa: S608 - a fragment of app.areas.tree, values are bound
)


async def may_enrol(session: AsyncSession, actor: PersonPrincipal, person_id: uuid.UUID) -> bool:
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


async def person_for_phone(
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
