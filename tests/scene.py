"""Small controlled scenes on the demo district: a team with members on duty
at a known spot, residents, tokens; made in the caller's transaction."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.core.config import Settings
from tests.principals import bearer, make_person, token_for

# Metres to degrees near 22.77 N.
M_LAT = 1 / 111_320
M_LNG = 1 / (111_320 * math.cos(math.radians(22.77)))


def offset(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m * M_LAT, lng + east_m * M_LNG


@dataclass
class Member:
    person_id: uuid.UUID
    headers: dict[str, str]


@dataclass
class SceneTeam:
    id: uuid.UUID
    members: list[Member]
    # Part-time members never on duty who fill the roster up to the team
    # rule (TEAM_MIN_MEMBERS), so that a scene's small team is offered calls.
    reserves: list[uuid.UUID] = field(default_factory=list)


async def make_team(
    session: AsyncSession,
    settings: Settings,
    lat: float,
    lng: float,
    *,
    members: int = 3,
    on_duty: int | None = None,
    name: str = "测试队",
    complete: bool = True,
) -> SceneTeam:
    """A team based at (lat, lng) whose first `on_duty` members (all, by
    default) are on duty a few metres from it; its first member is full-time.
    A `complete` team (the default) has off-duty reserves added up to
    TEAM_MIN_MEMBERS, so that it is active under the team rule whatever
    `members` says; `complete=False` leaves the roster as asked."""
    grid = (await areas.locate_ids(session, lat, lng)).grid
    team_id = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO team (id, name, grid_id, base)
            VALUES (:id, :name, :grid, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography)
            """
        ),
        {"id": team_id, "name": name, "grid": grid, "lat": lat, "lng": lng},
    )
    people: list[Member] = []
    for i in range(members):
        person_id = await make_person(session, f"{name}队员{i}")
        await session.execute(
            text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, :k)"),
            {"t": team_id, "p": person_id, "k": "full_time" if i == 0 else "part_time"},
        )
        if on_duty is None or i < on_duty:
            m_lat, m_lng = offset(lat, lng, 3.0 * i, 2.0)
            await session.execute(
                text(
                    """
                    INSERT INTO duty (person_id, on_duty, since, location, accuracy_m, located_at)
                    VALUES (:p, true, now(),
                            ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography, 10, now())
                    """
                ),
                {"p": person_id, "lat": m_lat, "lng": m_lng},
            )
        people.append(Member(person_id, bearer(await token_for(session, settings, person_id))))
    reserves: list[uuid.UUID] = []
    for i in range(members, settings.team_min_members if complete else 0):
        person_id = await make_person(session, f"{name}预备队员{i}")
        await session.execute(
            text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, :k)"),
            {"t": team_id, "p": person_id, "k": "full_time" if i == 0 else "part_time"},
        )
        reserves.append(person_id)
    return SceneTeam(team_id, people, reserves)


async def make_resident(session: AsyncSession, settings: Settings) -> Member:
    person_id = await make_person(session, "呼叫居民")
    return Member(person_id, bearer(await token_for(session, settings, person_id)))


async def clear_duty_near(session: AsyncSession, lat: float, lng: float, meters: float) -> None:
    """Take the seeded volunteers near a spot off duty, so a scene decides."""
    await session.execute(
        text(
            """
            UPDATE duty SET on_duty = false, location = NULL, located_at = NULL
            WHERE on_duty = true AND ST_DWithin(
                location, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography, :m, false)
            """
        ),
        {"lat": lat, "lng": lng, "m": meters},
    )


async def tx_now(session: AsyncSession) -> datetime:
    """The transaction's time, `now()` (what a call born in it is stamped)."""
    at: datetime = (await session.execute(text("SELECT now()"))).scalar_one()
    return at
