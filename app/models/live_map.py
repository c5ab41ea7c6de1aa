"""The dispatch platform's live map (GET /dispatch/map, `duty.updated`):
GeoJSON (RFC 7946, lng-lat order) of the open calls, the teams and the
on-duty members of an area. docs/dispatch-platform.md, "The live map".

No resident is named or reached from here: a call carries its point, its
state and ids, never the caller's name, phone or note; a member carries a
display name and a position, never a phone."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from app.models.call import CallCategory, CallStatus, EscalationLevel
from app.models.enums import AreaLevel
from app.models.geo import Point
from app.models.geojson import Position
from app.models.team import TeamStatus

D = PydanticField  # every property carries a description: generated clients show it

AVAILABLE = (
    "whether dispatch could offer this member a call now (app/duty/availability.py: "
    "on duty, a recent position (at most 10 minutes old by default), not disabled, "
    "not responding to a call)"
)


class _Sent(BaseModel):
    # Sent always, defaults included: the spec says so (issue 12).
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class PointGeometry(_Sent):
    """A GeoJSON Point (RFC 7946 §3.1.2)."""

    type: Literal["Point"] = D(default="Point", description="GeoJSON: always Point")
    coordinates: Position = D(description="[longitude, latitude], WGS 84")


class MapCall(_Sent):
    """An open call: where it is and how it stands; nothing of who called."""

    kind: Literal["call"] = D(default="call", description="what the feature is")
    id: uuid.UUID = D(description="the call's id (GET /calls/{id} for the rest)")
    status: CallStatus = D(description="the call's state; only open states are on the map")
    category: CallCategory = D(description="what the call is about")
    escalation_level: EscalationLevel = D(description="who must see to it now")
    disputed: bool = D(description="the caller disputed its resolution")
    accuracy_m: float | None = D(description="the accuracy of the caller's point, metres")
    grid_id: uuid.UUID = D(description="the grid the call lies in")
    team_id: uuid.UUID | None = D(description="the team that took it, if any")
    responder_id: uuid.UUID | None = D(description="the member who responds, if any")
    created_at: datetime = D(description="when it was pressed")
    updated_at: datetime = D(description="when it last changed")


class MapTeam(_Sent):
    """A team at its base, with its status under the team rule and who of it is on duty."""

    kind: Literal["team"] = D(default="team", description="what the feature is")
    id: uuid.UUID = D(description="the team's id")
    name: str = D(description="the team's name")
    grid_id: uuid.UUID = D(description="the grid its base lies in")
    status: TeamStatus = D(description="active or incomplete under the team rule")
    on_duty_count: int = D(description="members of the team on duty now")
    available_count: int = D(description="of those, how many dispatch could offer a call now")


class MapMember(_Sent):
    """An on-duty member at the latest position they sent; no phone."""

    kind: Literal["member"] = D(default="member", description="what the feature is")
    id: uuid.UUID = D(description="the member's person id")
    display_name: str = D(description="the member's display name")
    team_ids: list[uuid.UUID] = D(description="the member's teams within the area")
    located_at: datetime = D(description="when the member sent this position")
    accuracy_m: float | None = D(description="the position's accuracy, metres")
    available: bool = D(description=AVAILABLE)


MapProperties = Annotated[MapCall | MapTeam | MapMember, D(discriminator="kind")]


class MapFeature(_Sent):
    type: Literal["Feature"] = D(default="Feature", description="GeoJSON: always Feature")
    id: uuid.UUID = D(description="the call's, team's or member's id")
    geometry: PointGeometry = D(
        description="a call's exact point, a team's base, a member's latest position"
    )
    properties: MapProperties = D(description="what the feature is, by `kind`")


class MapArea(_Sent):
    id: uuid.UUID = D(description="the area's id")
    name: str = D(description="the area's name")
    level: AreaLevel = D(description="street, community, grid branch or grid")


class MapFeatureCollection(_Sent):
    """The live map of an area: its open calls, teams and on-duty members."""

    type: Literal["FeatureCollection"] = D(
        default="FeatureCollection", description="GeoJSON: always FeatureCollection"
    )
    area: MapArea | None = D(description="the area drawn; null: the whole district (an admin)")
    generated_at: datetime = D(
        description="when the map was read; `duty.updated` and call events on the live "
        "stream keep it current from then on"
    )
    features: list[MapFeature] = D(description="calls, then teams, then members")


class DutyMember(_Sent):
    """A member's duty as the map shows it: `duty.updated`'s data."""

    member_id: uuid.UUID = D(description="the member's person id")
    display_name: str = D(description="the member's display name")
    team_ids: list[uuid.UUID] = D(description="the member's teams")
    on_duty: bool = D(description="false: take the member off the map")
    location: Point | None = D(description="the latest position; null when off duty")
    located_at: datetime | None = D(description="when the member sent it; null when off duty")
    available: bool = D(description=AVAILABLE + ", when this was sent")
