"""The paired round: a call of a paired household's resident goes first to
the household's available paired members, wherever their team is, then to
the nearest teams as usual; with PAIRED_FIRST=false, straight to them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.dispatch import sweeper
from app.main import create_app
from tests.calls.test_press_event_data import assert_last_update_is_the_snapshot
from tests.conftest import join_test_transaction, make_settings
from tests.offers.test_offer_event_data import assert_offer_events_are_views
from tests.scene import Member, SceneTeam, clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 8}


class Scene:
    def __init__(self, near: SceneTeam, far: SceneTeam, resident: Member) -> None:
        self.near = near
        self.far = far
        self.resident = resident
        self.paired = far.members[0]


@pytest.fixture
async def scene(session: AsyncSession, settings: Settings) -> Scene:
    """A team 40 m from the resident, another 2.5 km away whose full-time
    member looks after the resident's household."""
    await clear_duty_near(session, LAT, LNG, 6000)
    near = await make_team(session, settings, *offset(LAT, LNG, 40, 30), name="近队")
    far = await make_team(session, settings, *offset(LAT, LNG, 2500, 0), name="远队")
    resident = await make_resident(session, settings)
    household = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO household (id, address, grid_id, location, vulnerabilities)
            SELECT :h, '光明街道测试小区2栋101室', grid_id, base, ARRAY['elderly']
            FROM team WHERE id = :near
            """
        ),
        {"h": household, "near": near.id},
    )
    await session.execute(
        text("INSERT INTO household_resident (person_id, household_id) VALUES (:p, :h)"),
        {"p": resident.person_id, "h": household},
    )
    await session.execute(
        text("INSERT INTO household_pairing (person_id, household_id) VALUES (:p, :h)"),
        {"p": far.members[0].person_id, "h": household},
    )
    return Scene(near, far, resident)


async def _open_offers(client: httpx.AsyncClient, member: Member) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/offers", params={"status": "open"}, headers=member.headers)
    assert answer.status_code == 200, answer.text
    offers: list[dict[str, Any]] = answer.json()["data"]
    return offers


async def _press(client: httpx.AsyncClient, scene: Scene) -> dict[str, Any]:
    answer = await client.post(
        "/api/v1/calls",
        json={"location": POINT, "category": "visit"},
        headers=scene.resident.headers,
    )
    assert answer.status_code == 201, answer.text
    call: dict[str, Any] = answer.json()
    return call


async def _alerted(session: AsyncSession, offer_id: str) -> list[uuid.UUID]:
    return list(
        (
            await session.execute(
                text("SELECT person_id FROM notification WHERE offer_id = :o AND kind = 'offer'"),
                {"o": offer_id},
            )
        ).scalars()
    )


async def test_the_paired_member_is_offered_first_then_the_nearest_team(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, scene: Scene
) -> None:
    call = await _press(client, scene)
    assert call["status"] == "offered"
    # The paired round's move, published from what the press knew.
    await assert_last_update_is_the_snapshot(session, call["id"], call)
    assert call["team"]["id"] == str(scene.far.id)
    [offer] = await _open_offers(client, scene.paired)
    assert offer["call_id"] == call["id"]
    assert offer["team"]["id"] == str(scene.far.id)
    assert offer["distance_m"] > 2000
    # Only the paired member is alerted, and only they see and may take it.
    assert await _alerted(session, offer["id"]) == [scene.paired.person_id]
    teammate = scene.far.members[1]
    assert await _open_offers(client, teammate) == []
    taken = await client.post(f"/api/v1/offers/{offer['id']}/accept", headers=teammate.headers)
    assert taken.status_code == 404
    assert await _open_offers(client, scene.near.members[0]) == []
    # The paired member declines: the nearest team gets the call at once.
    declined = await client.post(
        f"/api/v1/offers/{offer['id']}/decline", headers=scene.paired.headers
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "declined"
    [next_offer] = await _open_offers(client, scene.near.members[0])
    assert next_offer["call_id"] == call["id"]
    assert next_offer["team"]["id"] == str(scene.near.id)
    alerted = set(await _alerted(session, next_offer["id"]))
    assert alerted == {m.person_id for m in scene.near.members}
    rounds = (
        await session.execute(text("SELECT rounds FROM call WHERE id = :c"), {"c": call["id"]})
    ).scalar_one()
    assert rounds == 1  # the paired round spends none of MAX_OFFER_ROUNDS
    # Both offers' events carry what their rows say (the paired one made by
    # the press, the next after the call was locked again).
    assert await assert_offer_events_are_views(session, settings, call["id"]) == 2


async def test_a_lapsed_paired_offer_moves_on_to_the_nearest_team(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, scene: Scene
) -> None:
    call = await _press(client, scene)
    [offer] = await _open_offers(client, scene.paired)
    await session.execute(
        text("UPDATE offer SET expires_at = now() - interval '1 second' WHERE id = :o"),
        {"o": offer["id"]},
    )
    assert await sweeper.expire_offers(session, settings) >= 1
    status = (
        await session.execute(text("SELECT status FROM offer WHERE id = :o"), {"o": offer["id"]})
    ).scalar_one()
    assert status == "expired"
    [next_offer] = await _open_offers(client, scene.near.members[0])
    assert next_offer["call_id"] == call["id"]
    # The paired member's own team is not skipped by the nearest rounds,
    # and the paired round is not made twice.
    paired_offers = (
        await session.execute(
            text("SELECT count(*) FROM offer WHERE call_id = :c AND person_id IS NOT NULL"),
            {"c": call["id"]},
        )
    ).scalar_one()
    assert paired_offers == 1


async def test_a_paired_member_off_duty_is_skipped(
    client: httpx.AsyncClient, session: AsyncSession, scene: Scene
) -> None:
    await session.execute(
        text("UPDATE duty SET on_duty = false, location = NULL WHERE person_id = :p"),
        {"p": scene.paired.person_id},
    )
    call = await _press(client, scene)
    assert call["team"]["id"] == str(scene.near.id)
    assert await _open_offers(client, scene.paired) == []


@pytest.fixture
async def nearest_first(
    database_url: str, session: AsyncSession
) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(make_settings(database_url, paired_first=False))
    join_test_transaction(application, session)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_without_paired_first_the_nearest_team_is_first(
    nearest_first: httpx.AsyncClient, scene: Scene
) -> None:
    call = await _press(nearest_first, scene)
    assert call["team"]["id"] == str(scene.near.id)
    assert await _open_offers(nearest_first, scene.paired) == []
    [offer] = await _open_offers(nearest_first, scene.near.members[0])
    assert offer["call_id"] == call["id"]
