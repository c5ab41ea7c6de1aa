"""Who may see a household: the one rule.

Household data (address, position, residents, vulnerability tags) is
sensitive personal data (PIPL: health, disability, income). It is seen by:

- the household's paired party members (`household_pairing`);
- the dispatchers of its area: a dispatcher whose community or street
  holds the household's grid (`app.identity.enrolment.within_scope`, the
  rule every staff action in an area follows);
- admins.

Anyone else is told it does not exist (404), and nothing is written to the
audit log for a refused read: there was no read. Every read that is allowed
writes its audit row in the same transaction (`app.households.service`).
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.identity import enrolment
from app.identity.auth import PersonPrincipal


class HouseholdViewer(StrEnum):
    """The part a person plays for a household, the first that holds."""

    admin = "admin"
    staff = "staff"  # a dispatcher of its area
    paired = "paired"  # one of its paired members


_FACTS = text(
    """
    SELECT h.grid_id,
           EXISTS (SELECT 1 FROM household_pairing x
                   WHERE x.household_id = h.id AND x.person_id = :me) AS paired
    FROM household h WHERE h.id = :id
    """
)


class HouseholdNotFound(NotFound):
    code = "household_not_found"
    title = "No such household"


async def viewer_of(
    session: AsyncSession, person: PersonPrincipal, household_id: uuid.UUID
) -> HouseholdViewer | None:
    """The part the person plays for the household, or None when they may
    not see it (or it does not exist: the two are not told apart)."""
    row = (await session.execute(_FACTS, {"id": household_id, "me": person.person_id})).first()
    if row is None:
        return None
    if person.is_admin:
        return HouseholdViewer.admin
    if person.dispatcher_area is not None and await enrolment.within_scope(
        session, person, row.grid_id
    ):
        return HouseholdViewer.staff
    if row.paired:
        return HouseholdViewer.paired
    return None


async def require_viewer(
    session: AsyncSession, person: PersonPrincipal, household_id: uuid.UUID
) -> HouseholdViewer:
    viewer = await viewer_of(session, person, household_id)
    if viewer is None:
        raise HouseholdNotFound("No such household.")
    return viewer


async def require_staff_of(
    session: AsyncSession, person: PersonPrincipal, household_id: uuid.UUID
) -> uuid.UUID:
    """For changes (pairing): an admin, or a dispatcher of the household's
    area; anyone else 404. Returns the household's grid."""
    row = (await session.execute(_FACTS, {"id": household_id, "me": person.person_id})).first()
    if row is None or not await enrolment.within_scope(session, person, row.grid_id):
        raise HouseholdNotFound("No such household.")
    grid_id: uuid.UUID = row.grid_id
    return grid_id
