from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status

from app.households import service as households
from app.http.deps import CurrentUser, OriginDep, SessionDep, SettingsDep, StaffUser
from app.http.prefix import API_PREFIX
from app.models.household import (
    HouseholdCreate,
    HouseholdList,
    HouseholdPublic,
    PairingCreate,
    PairingPublic,
    PairingShortfallList,
)

admin_router = APIRouter(prefix=f"{API_PREFIX}/admin/households", tags=["admin"])
me_router = APIRouter(prefix=f"{API_PREFIX}/me", tags=["me"])
dispatch_router = APIRouter(prefix=f"{API_PREFIX}/dispatch", tags=["dispatch"])

HouseholdId = Annotated[uuid.UUID, Path(description="the household's id")]


@admin_router.post("", status_code=status.HTTP_201_CREATED)
async def create_household(
    body: HouseholdCreate,
    user: StaffUser,
    session: SessionDep,
    settings: SettingsDep,
    origin: OriginDep,
) -> HouseholdPublic:
    """Record a household (sensitive data: docs/organisation.md). Its grid is
    the one that contains its location; a dispatcher may only record one
    within its area (403 `outside_your_area`). Residents' phones get a
    person when nobody has them; a resident belongs to one household."""
    return await households.create_household(session, settings, user, body, origin)


@admin_router.get("/{household_id}")
async def get_household(
    household_id: HouseholdId, user: CurrentUser, session: SessionDep, origin: OriginDep
) -> HouseholdPublic:
    """One household, residents' phones masked, with its paired members: for
    its paired members, the dispatchers of its area and admins (anyone else
    404). Every read is written to the audit log."""
    return await households.read_household(session, user, household_id, origin)


@admin_router.post("/{household_id}/pairings", status_code=status.HTTP_201_CREATED)
async def create_pairing(
    household_id: HouseholdId,
    body: PairingCreate,
    user: StaffUser,
    session: SessionDep,
    settings: SettingsDep,
    origin: OriginDep,
) -> PairingPublic:
    """Pair a party member with the household. A member already looking
    after the most households allowed (5 unless configured otherwise) → 409
    `pairing_limit`; fewer than the minimum (3 unless configured otherwise) is
    reported in the answer (`below_minimum`), not refused."""
    return await households.pair(session, settings, user, household_id, body, origin)


@admin_router.delete("/{household_id}/pairings/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_pairing(
    household_id: HouseholdId,
    person_id: Annotated[uuid.UUID, Path(description="the paired member's person id")],
    user: StaffUser,
    session: SessionDep,
    origin: OriginDep,
) -> None:
    """End a pairing (admin, or a dispatcher of the household's area)."""
    await households.unpair(session, user, household_id, person_id, origin)


@me_router.get("/households")
async def list_my_households(
    user: CurrentUser, session: SessionDep, origin: OriginDep
) -> HouseholdList:
    """The households paired with the caller, address and tags included;
    each read is written to the audit log."""
    return HouseholdList(
        data=await households.my_households(session, user, origin), next_cursor=None
    )


@dispatch_router.get("/pairing-shortfalls")
async def list_pairing_shortfalls(
    user: StaffUser,
    session: SessionDep,
    settings: SettingsDep,
) -> PairingShortfallList:
    """The party members of the caller's area who look after fewer than the
    minimum of households (3 unless configured otherwise), fewest first.
    Names and counts only: no household data."""
    return await households.shortfalls(session, settings, user)
