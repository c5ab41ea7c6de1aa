"""Two pairings of one party member at once, really committed: with the
member at PAIRING_MAX - 1, exactly one of them succeeds."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from tests.live import Ledger, committed_team, live_app
from tests.principals import bearer, make_person, token_for
from tests.problems import assert_problem

LAT, LNG = 22.77, 113.93


async def test_two_pairings_at_once_cannot_both_pass_the_limit(
    engine: AsyncEngine, settings: Settings, ledger: Ledger
) -> None:
    team = await committed_team(engine, settings, ledger, LAT, LNG, members=3, on_duty=0)
    member = team.members[0].person_id  # full-time: a party member
    households = [uuid.uuid4() for _ in range(settings.pairing_max + 1)]
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            admin = await make_person(session, "并发管理员", is_admin=True)
            ledger.persons.append(admin)
            headers = bearer(await token_for(session, settings, admin))
            for household in households:
                await session.execute(
                    text(
                        """
                        INSERT INTO household (id, address, grid_id, location, vulnerabilities)
                        SELECT :h, '光明街道并发小区1栋', grid_id, base, ARRAY['elderly']
                        FROM team WHERE id = :t
                        """
                    ),
                    {"h": household, "t": team.id},
                )
            for household in households[: settings.pairing_max - 1]:
                await session.execute(
                    text("INSERT INTO household_pairing (person_id, household_id) VALUES (:p, :h)"),
                    {"p": member, "h": household},
                )
            await session.commit()
        last_two = households[settings.pairing_max - 1 :]
        async with live_app(settings) as (_, http):
            answers = await asyncio.gather(
                *(
                    http.post(
                        f"/api/v1/admin/households/{household}/pairings",
                        json={"person_id": str(member)},
                        headers=headers,
                    )
                    for household in last_two
                )
            )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201, 409], [a.text for a in answers]
        refused = next(a for a in answers if a.status_code == 409)
        assert_problem(refused, 409, "pairing_limit")
        won = next(a for a in answers if a.status_code == 201)
        assert won.json()["pairings_count"] == settings.pairing_max
        async with engine.connect() as conn:
            count = (
                await conn.execute(
                    text("SELECT count(*) FROM household_pairing WHERE person_id = :p"),
                    {"p": member},
                )
            ).scalar_one()
        assert count == settings.pairing_max
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM household WHERE id = ANY(CAST(:h AS uuid[]))"),
                {"h": households},
            )
