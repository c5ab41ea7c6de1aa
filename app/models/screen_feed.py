"""What a public screen (党群亮服务可视屏) shows: the area's day in counts
and medians, its teams, its recent calls by category and grid, and the
month's stars. Nothing here names or locates a resident (docs/privacy.md,
"Public screens"): no person id, no phone, no address, no point, no note."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from pydantic import Field as PydanticField

from app.models.area import AreaRef
from app.models.call import CallCategory, CallStatus
from app.models.enums import AreaLevel

D = PydanticField


class ScreenArea(BaseModel):
    id: uuid.UUID = D(description="the area's id")
    name: str = D(description="the area's name")
    level: AreaLevel = D(description="street, community, grid branch or grid")


class ScreenToday(BaseModel):
    """The calls pressed in the area today (from midnight in the district's time zone)."""

    calls: int = D(description="calls pressed in the area today")
    resolved: int = D(description="of today's calls, those resolved by now")
    accept_p50_s: float | None = D(
        description="median seconds from the press to a member's accept, over today's accepted "
        "calls; null when none was accepted"
    )
    satisfaction_avg: float | None = D(
        description="mean stars (1-5) of the ratings of today's calls, two decimals; null when "
        "none was rated"
    )


class ScreenTeam(BaseModel):
    name: str = D(description="the team's name")
    service_content: str | None = D(description="what the team offers residents (服务内容)")
    on_duty_count: int = D(description="the team's members on duty now")


class ScreenCall(BaseModel):
    category: CallCategory = D(description="what the call is about")
    grid: AreaRef = D(description="the grid it was pressed in: the finest place a screen shows")
    status: CallStatus = D(description="where the call is now")
    at: datetime = D(
        description="when it was pressed, rounded down to the quarter hour (UTC); only calls "
        "older than the screen delay (300 s by default) are listed"
    )


class ScreenStar(BaseModel):
    display_name: str = D(description="the member's name, as public recognition")
    team: str = D(description="the name of the member's team in the area")
    score: int = D(description="the member's score of the month")


class ScreenStars(BaseModel):
    month: str = D(description="the month ranked, YYYY-MM in the district's time zone")
    governance: list[ScreenStar] = D(
        description="the Governance Star (治理之星) ranking, best first"
    )
    service: list[ScreenStar] = D(description="the Service Star (服务之星) ranking, best first")


class ScreenFeed(BaseModel):
    """Everything a public screen of an area shows."""

    area: ScreenArea = D(description="the area shown")
    today: ScreenToday = D(description="today's calls of the area, counted")
    on_duty_members: int = D(description="members of the area's teams on duty now")
    teams: list[ScreenTeam] = D(
        description="the area's teams, most members on duty first, then by name (at most 100)"
    )
    recent: list[ScreenCall] = D(
        description="the area's latest calls older than the screen delay (300 s by default), "
        "newest first "
        "(at most 20)"
    )
    stars: ScreenStars = D(description="the month's stars of the area, so far")
