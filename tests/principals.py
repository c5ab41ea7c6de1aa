"""People and keys for tests, made directly in the test's transaction."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.phones import demo_phone
from app.identity import api_keys, auth

# Demo-range numbers far above what the seeder hands out.
TEST_PHONE_BASE = 90_000_000
_phones = itertools.count(TEST_PHONE_BASE)


def next_phone() -> str:
    return demo_phone(next(_phones))


async def make_person(session: AsyncSession, name: str, *, is_admin: bool = False) -> uuid.UUID:
    person_id = uuid.uuid4()
    await session.execute(
        text(
            "INSERT INTO person (id, phone, display_name, is_admin) "
            "VALUES (:id, :phone, :name, :admin)"
        ),
        {"id": person_id, "phone": next_phone(), "name": name, "admin": is_admin},
    )
    return person_id


async def token_for(session: AsyncSession, settings: Settings, person_id: uuid.UUID) -> str:
    pair = await auth.start_session(session, settings, person_id)
    return pair.access_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def team_in_community(session: AsyncSession, nth: int) -> tuple[uuid.UUID, uuid.UUID]:
    """(team id, community id) of a seeded team in the nth community by code."""
    row = (
        await session.execute(
            text(
                """
                SELECT t.id, c.id AS community_id FROM team t
                JOIN area g ON g.id = t.grid_id JOIN area b ON b.id = g.parent_id
                JOIN area c ON c.id = b.parent_id
                WHERE c.id = (SELECT id FROM area WHERE level = 'community'
                              ORDER BY code OFFSET :nth LIMIT 1)
                ORDER BY t.id LIMIT 1
                """
            ),
            {"nth": nth},
        )
    ).one()
    return row.id, row.community_id


@dataclass
class Cast:
    """Everyone the authorization matrix asks about."""

    headers: dict[str, dict[str, str]]
    person_ids: dict[str, uuid.UUID]
    team_x: uuid.UUID
    team_y: uuid.UUID
    community_1: uuid.UUID
    community_2: uuid.UUID


async def make_cast(session: AsyncSession, settings: Settings) -> Cast:
    team_x, community_1 = await team_in_community(session, 0)
    team_y, community_2 = await team_in_community(session, 1)
    people = {
        "resident_a": await make_person(session, "居民甲"),
        "resident_b": await make_person(session, "居民乙"),
        "volunteer_x": await make_person(session, "队员X"),
        "volunteer_y": await make_person(session, "队员Y"),
        "dispatcher_c1": await make_person(session, "调度一"),
        "dispatcher_c2": await make_person(session, "调度二"),
        "admin": await make_person(session, "管理员", is_admin=True),
    }
    for who, team in (("volunteer_x", team_x), ("volunteer_y", team_y)):
        await session.execute(
            text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, 'part_time')"),
            {"t": team, "p": people[who]},
        )
    for who, area in (("dispatcher_c1", community_1), ("dispatcher_c2", community_2)):
        await session.execute(
            text("INSERT INTO dispatcher (person_id, area_id) VALUES (:p, :a)"),
            {"p": people[who], "a": area},
        )
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for who, person_id in people.items():
        headers[who] = bearer(await token_for(session, settings, person_id))
    key = await api_keys.create(session, "matrix", sorted(api_keys.SCOPES))
    headers["api_key"] = {"X-API-Key": key.key}
    return Cast(headers, people, team_x, team_y, community_1, community_2)
