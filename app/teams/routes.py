from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from app.areas.routes import Latitude, Longitude
from app.core.config import Settings
from app.core.errors import Unprocessable
from app.http.deps import CurrentUser, SessionDep, SettingsDep, TeamsReader
from app.http.prefix import API_PREFIX
from app.models.team import NearbyTeamList, TeamProfile
from app.teams import roster
from app.teams import service as teams

router = APIRouter(prefix=f"{API_PREFIX}/teams", tags=["teams"])


@router.get("/nearby")
async def list_nearby_teams(
    session: SessionDep,
    settings: SettingsDep,
    _: TeamsReader,
    lat: Latitude,
    lng: Longitude,
    radius_m: Annotated[float | None, Query(gt=0, description="search radius in metres")] = None,
    limit: Annotated[int, Query(ge=1, description="at most this many teams")] = 20,
) -> NearbyTeamList:
    """Teams nearest to the point, nearest first, measured to each team's base
    (never to a member)."""
    radius = radius_m if radius_m is not None else float(settings.search_radius_m)
    if radius > settings.nearby_max_radius_m:
        raise Unprocessable(
            f"radius_m may be at most {settings.nearby_max_radius_m}.", code="radius_too_large"
        )
    if limit > settings.nearby_max_limit:
        raise Unprocessable(
            f"limit may be at most {settings.nearby_max_limit}.", code="limit_too_large"
        )
    return NearbyTeamList(
        data=await teams.nearby(session, lat, lng, radius, limit), next_cursor=None
    )


# After /nearby, which `{team_id}` would otherwise take for an id.
@router.get("/{team_id}")
async def get_team(
    team_id: Annotated[uuid.UUID, Path(description="the team's id")],
    _: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> TeamProfile:
    """A team's profile, for anyone logged in: its members (kind, roles,
    whether on duty; never a phone), its status under the team rule and its
    activities this month. An unknown id → 404."""
    return await roster.profile(session, settings, team_id)


def document_limits(spec: dict[str, Any], settings: Settings) -> None:
    """State in the OpenAPI document the limits above, from the settings the
    app runs with (they are settings, so not fixed in the `Query`)."""
    operation = spec["paths"][f"{API_PREFIX}/teams/nearby"]["get"]
    for parameter in operation["parameters"]:
        if parameter["name"] == "radius_m":
            parameter["schema"]["maximum"] = settings.nearby_max_radius_m
            parameter["description"] = (
                f"search radius in metres: {settings.search_radius_m} when left out, "
                f"at most {settings.nearby_max_radius_m}"
            )
        elif parameter["name"] == "limit":
            parameter["schema"]["maximum"] = settings.nearby_max_limit
            parameter["description"] = (
                f"at most this many teams (at most {settings.nearby_max_limit})"
            )
    for parameter in operation["parameters"]:
        parameter["schema"]["description"] = parameter["description"]
