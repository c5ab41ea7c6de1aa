from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.core.months import MonthQuery, chosen
from app.http.deps import CurrentUser, SessionDep, SettingsDep
from app.http.prefix import API_PREFIX
from app.models.star import StarRankings
from app.stars import service as stars

router = APIRouter(prefix=f"{API_PREFIX}/stars", tags=["stars"])


@router.get("")
async def list_stars(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    month: MonthQuery = None,
    area_id: Annotated[
        uuid.UUID | None,
        Query(
            description="the area ranked: a street, community, grid branch or grid (its teams' "
            "members are ranked); a dispatcher's own area when left out"
        ),
    ] = None,
) -> StarRankings:
    """The monthly Governance Star (治理之星) and Service Star (服务之星)
    rankings of an area, best first, each score with its breakdown (any
    logged-in person: stars are public recognition). A closed month is
    frozen: computed once, the same ranking ever after. Without `area_id`
    someone who is no dispatcher gets 422 `area_required`; an unknown area
    404; a month before 2000-01 422 `invalid_month`."""
    area = await stars.area_of(session, user, area_id)
    return await stars.rankings(session, settings, area, chosen(month, settings.zone))
