"""Which team a call goes to: `dispatch.nearest_teams` (one KNN query over the
partial GiST index, widened while too few teams came back) against a
brute-force answer computed in Python from every duty row, on random
layouts in the rolled-back test transaction.

The brute force is the policy as API.md states it: a team's distance is
that of its nearest member who is on duty, whose position is fresher than
DUTY_POSITION_MAX_AGE_SECONDS, and who is not responding to a call
(accepted, en route, on site); only teams within SEARCH_RADIUS_M count;
teams in `skip` do not, nor do teams incomplete under the team rule (fewer
than TEAM_MIN_MEMBERS members or TEAM_MIN_FULL_TIME full-time ones);
nearest first, ties by team id.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.core import sql
from app.core.config import Settings
from app.dispatch import policy as dispatch
from tests.conftest import make_settings
from tests.principals import next_phone
from tests.scene import clear_duty_near, offset

CENTER = (22.765, 113.935)
ACTIVE = {"accepted", "en_route", "on_site"}
# How a member of a random team stands.
STATES = ("no_duty_row", "off_duty", "stale", "never_located", "fresh", "busy", "was_busy")
WEIGHTS = (1, 2, 2, 1, 8, 2, 1)


@dataclass
class Layout:
    """Rows to insert, gathered so that each table takes one executemany."""

    area: Any
    persons: list[dict[str, Any]] = field(default_factory=list)
    teams: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    duty: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    resident: uuid.UUID = field(default_factory=uuid.uuid4)

    def person(self, name: str) -> uuid.UUID:
        person_id = uuid.uuid4()
        self.persons.append({"id": person_id, "phone": next_phone(), "name": name})
        return person_id

    def team(self, lat: float, lng: float) -> uuid.UUID:
        team_id = uuid.uuid4()
        self.teams.append(
            {"id": team_id, "name": "随机队", "grid": self.area.grid, "lat": lat, "lng": lng}
        )
        return team_id

    def join(self, team_id: uuid.UUID, person_id: uuid.UUID, kind: str = "part_time") -> None:
        self.members.append({"t": team_id, "p": person_id, "k": kind})

    def on(self, team_id: uuid.UUID, person_id: uuid.UUID) -> bool:
        return any(m["t"] == team_id and m["p"] == person_id for m in self.members)

    def stand(
        self,
        person_id: uuid.UUID,
        state: str,
        lat: float,
        lng: float,
        age_s: float,
        call_status: str | None = None,
    ) -> None:
        """Put a member in `state` at (lat, lng), last located `age_s` ago."""
        if state == "no_duty_row":
            return
        self.duty.append(
            {
                "p": person_id,
                "on": state != "off_duty",
                "lat": lat,
                "lng": lng,
                "age": None if state == "never_located" else age_s,
            }
        )
        if call_status is not None:
            self.calls.append(
                {
                    "id": uuid.uuid4(),
                    "r": self.resident,
                    "s": call_status,
                    "lat": lat,
                    "lng": lng,
                    "g": self.area.grid,
                    "c": self.area.community,
                    "st": self.area.street,
                    "who": person_id,
                }
            )

    async def insert(self, session: AsyncSession) -> None:
        self.persons.append({"id": self.resident, "phone": next_phone(), "name": "居民"})
        await session.execute(
            text("INSERT INTO person (id, phone, display_name) VALUES (:id, :phone, :name)"),
            self.persons,
        )
        await session.execute(
            text(
                """
                INSERT INTO team (id, name, grid_id, base)
                VALUES (:id, :name, :grid, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography)
                """
            ),
            self.teams,
        )
        await session.execute(
            text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, :k)"),
            self.members,
        )
        if self.duty:
            await session.execute(
                text(
                    """
                    INSERT INTO duty (person_id, on_duty, since, location, accuracy_m, located_at)
                    VALUES (:p, :on, now() - interval '2 hours',
                            ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography, 10,
                            now() - make_interval(secs => CAST(:age AS float8)))
                    """
                ),
                self.duty,
            )
        if self.calls:
            await session.execute(
                text(
                    """
                    INSERT INTO call (id, resident_id, status, category, location, grid_id,
                                      community_id, street_id, escalation_level, rounds,
                                      responder_id)
                    VALUES (:id, :r, :s, 'urgent',
                            ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                            :g, :c, :st, 'grid', 1, :who)
                    """
                ),
                self.calls,
            )


async def new_layout(session: AsyncSession, lat: float, lng: float, clear_m: float) -> Layout:
    await clear_duty_near(session, lat, lng, clear_m)
    return Layout(area=await areas.locate_ids(session, lat, lng))


def place_member(
    layout: Layout, rng: random.Random, person_id: uuid.UUID, base: tuple[float, float]
) -> None:
    max_age = 600.0
    state = rng.choices(STATES, WEIGHTS)[0]
    lat, lng = offset(*base, rng.uniform(-300, 300), rng.uniform(-300, 300))
    age = max_age + rng.uniform(5, 3000) if state == "stale" else rng.uniform(0, max_age - 30)
    status = None
    if state == "busy":
        status = rng.choice(sorted(ACTIVE))
    elif state == "was_busy":
        status = rng.choice(["resolved", "cancelled"])
    layout.stand(person_id, state, lat, lng, age, status)


# ---- the brute force ---------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    ranked: list[tuple[uuid.UUID, float]]  # eligible teams, nearest first
    naive: list[tuple[uuid.UUID, float]]  # by any member with a position, no filter
    members_nearer_than_first: int  # on-duty positions nearer than the first team


async def brute_force(
    session: AsyncSession,
    settings: Settings,
    lat: float,
    lng: float,
    skip: Sequence[uuid.UUID],
) -> Truth:
    now = (await session.execute(text("SELECT now()"))).scalar_one()
    busy = {
        row.responder_id
        for row in await session.execute(
            text("SELECT responder_id, status FROM call WHERE responder_id IS NOT NULL")
        )
        if row.status in ACTIVE
    }
    rows = (
        await session.execute(
            text(
                """
                SELECT m.team_id, d.person_id, d.on_duty, d.located_at,
                       ST_Distance(d.location,
                                   ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                                   false) AS distance
                FROM duty d JOIN team_member m ON m.person_id = d.person_id
                WHERE d.location IS NOT NULL
                """
            ),
            {"lat": lat, "lng": lng},
        )
    ).all()
    rosters = (
        await session.execute(
            text(
                """
                SELECT m.team_id, count(*) AS members,
                       count(*) FILTER (WHERE m.kind = 'full_time') AS full_time
                FROM team_member m JOIN person p ON p.id = m.person_id
                WHERE p.disabled_at IS NULL
                GROUP BY m.team_id
                """
            )
        )
    ).all()
    active = {
        row.team_id
        for row in rosters
        if row.members >= settings.team_min_members and row.full_time >= settings.team_min_full_time
    }
    fresh_after = now - timedelta(seconds=settings.duty_position_max_age_seconds)
    best: dict[uuid.UUID, float] = {}
    any_member: dict[uuid.UUID, float] = {}
    on_duty_distances: list[float] = []
    for row in rows:
        if row.on_duty:
            on_duty_distances.append(row.distance)
        if row.distance > settings.search_radius_m or row.team_id in skip:
            continue
        any_member[row.team_id] = min(row.distance, any_member.get(row.team_id, row.distance))
        eligible = (
            row.team_id in active
            and row.on_duty
            and row.located_at is not None
            and row.located_at > fresh_after
            and row.person_id not in busy
        )
        if eligible:
            best[row.team_id] = min(row.distance, best.get(row.team_id, row.distance))
    ranked = sorted(best.items(), key=lambda item: (item[1], item[0]))
    naive = sorted(any_member.items(), key=lambda item: (item[1], item[0]))
    first = ranked[0][1] if ranked else float("inf")
    return Truth(
        ranked=ranked,
        naive=naive,
        members_nearer_than_first=sum(1 for d in on_duty_distances if d < first),
    )


async def choose(
    session: AsyncSession,
    settings: Settings,
    lat: float,
    lng: float,
    skip: list[uuid.UUID],
    want: int,
) -> tuple[list[tuple[uuid.UUID, float]], list[int]]:
    """The teams nearest_teams chooses, and the `k` of each KNN query it ran
    (read off the driver's connection, where app.core.sql runs it)."""
    nearest = sql.compiled(dispatch._NEAREST_TEAMS)
    ks: list[int] = []

    def record(query: Any) -> None:
        if query.query == nearest.sql:
            ks.append(query.args[nearest.names.index("k")])

    driver = (await (await session.connection()).get_raw_connection()).driver_connection
    assert driver is not None
    driver.add_query_logger(record)
    try:
        found = await dispatch.nearest_teams(session, settings, lat, lng, skip=skip, want=want)
    finally:
        await asyncio.sleep(0)  # asyncpg calls its query loggers soon, not at once
        driver.remove_query_logger(record)
    return [(c.team_id, c.distance_m) for c in found], ks


def assert_same(
    got: list[tuple[uuid.UUID, float]], expected: list[tuple[uuid.UUID, float]], why: str
) -> None:
    assert [t for t, _ in got] == [t for t, _ in expected], why
    for (_, d_got), (_, d_expected) in zip(got, expected, strict=True):
        assert d_got == pytest.approx(d_expected, abs=1e-6), why


# ---- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_nearest_teams_match_brute_force_on_random_layouts(
    session: AsyncSession, database_url: str, seed: int
) -> None:
    rng = random.Random(seed)
    settings = make_settings(database_url, search_radius_m=rng.choice([800, 1200, 2000]))
    spread = 1500.0
    layout = await new_layout(session, *CENTER, spread + settings.search_radius_m + 600)
    teams: list[uuid.UUID] = []
    everyone: list[uuid.UUID] = []
    for n in range(rng.randint(25, 40)):
        base = offset(*CENTER, rng.uniform(-spread, spread), rng.uniform(-spread, spread))
        # A few teams sit together, so that their distances are close.
        if teams and rng.random() < 0.15:
            base = offset(layout.teams[-1]["lat"], layout.teams[-1]["lng"], rng.uniform(-20, 20), 0)
        team_id = layout.team(*base)
        teams.append(team_id)
        for i in range(rng.randint(1, 6)):
            person_id = layout.person(f"队{n}员{i}")
            layout.join(team_id, person_id, "full_time" if rng.random() < 0.4 else "part_time")
            place_member(layout, rng, person_id, base)
            everyone.append(person_id)
        # Now and then someone of another team belongs to this one too.
        if len(everyone) > 10 and rng.random() < 0.2:
            shared = rng.choice(everyone[:-6])
            if not layout.on(team_id, shared):
                layout.join(team_id, shared)
    await layout.insert(session)

    queries = 0
    filtered = 0
    several = 0
    for _ in range(15):
        lat, lng = offset(
            *CENTER,
            rng.uniform(-spread - 500, spread + 500),
            rng.uniform(-spread - 500, spread + 500),
        )
        for want in (1, rng.randint(2, 5)):
            skip = rng.sample(teams, rng.choice([0, 0, 1, 3]))
            truth = await brute_force(session, settings, lat, lng, skip)
            got, _ = await choose(session, settings, lat, lng, skip, want)
            assert_same(got, truth.ranked[:want], f"seed {seed} at {lat},{lng} skip {skip}")
            queries += 1
            filtered += truth.naive[:want] != truth.ranked[:want]
            several += len(got) >= 2
    # The layouts exercised what they are meant to.
    assert filtered >= queries // 4, (
        "duty, freshness, busy members and incomplete teams changed many answers"
    )
    assert several >= queries // 4, "many answers ranked several teams"


async def test_widening_past_the_first_k_members_nearer_than_the_first_eligible_team(
    session: AsyncSession, database_url: str
) -> None:
    # Teams of every size here: the team rule is not what this test is about.
    settings = make_settings(database_url, team_min_members=1, team_min_full_time=0)
    lat, lng = offset(*CENTER, 800, -900)
    layout = await new_layout(session, lat, lng, settings.search_radius_m + 600)
    rng = random.Random(64)

    def crowd(size: int, age_s: float, status: str | None = None) -> uuid.UUID:
        team_id = layout.team(*offset(lat, lng, 10, 10))
        for i in range(size):
            person_id = layout.person(f"人群{i}")
            layout.join(team_id, person_id)
            spot = offset(lat, lng, rng.uniform(-40, 40), rng.uniform(-40, 40))
            layout.stand(person_id, "fresh", *spot, age_s=age_s, call_status=status)
        return team_id

    # Busy and stale members are not available, so the KNN scan passes them
    # by; the skipped team, larger than any first try below, alone fills it.
    skipped = crowd(dispatch.first_k(10, 1) + 10, 60)  # a team already offered the call
    busy = crowd(20, 60, "en_route")  # every one of them responding elsewhere
    stale = crowd(15, 5000)  # on duty, positions too old to count
    far: list[uuid.UUID] = []
    for north in (300.0, 420.0, 550.0, 2600.0, 3400.0):
        team_id = layout.team(*offset(lat, lng, north, 0))
        far.append(team_id)
        for i in range(2):
            person_id = layout.person(f"远队员{i}")
            layout.join(team_id, person_id)
            layout.stand(person_id, "fresh", *offset(lat, lng, north + 3 * i, 0), age_s=30)
    await layout.insert(session)

    truth = await brute_force(session, settings, lat, lng, [skipped])
    assert truth.members_nearer_than_first > dispatch.first_k(10, 1), "the case this test is for"
    assert [t for t, _ in truth.ranked][:4] == far[:4]
    assert far[4] not in {t for t, _ in truth.ranked}, "3400 m is beyond the radius"

    got, ks = await choose(session, settings, lat, lng, [skipped], 1)
    assert_same(got, truth.ranked[:1], "one team past the crowd")
    assert ks == [dispatch.first_k(1, 1), 8 * dispatch.first_k(1, 1)], "k widened once"

    got, ks = await choose(session, settings, lat, lng, [skipped], 10)
    assert_same(got, truth.ranked, "every team in range, fewer than asked for")
    assert len(got) == 4
    assert ks == [dispatch.first_k(10, 1), 8 * dispatch.first_k(10, 1)]

    unskipped = await brute_force(session, settings, lat, lng, [])
    got, ks = await choose(session, settings, lat, lng, [], 3)
    assert_same(got, unskipped.ranked[:3], "the crowd's team first, then two past the crowd")
    assert got[0][0] == skipped
    assert busy not in {t for t, _ in got}
    assert stale not in {t for t, _ in got}
    assert ks == [dispatch.first_k(3, 0), 8 * dispatch.first_k(3, 0)]

    # When the first k nearest already give enough teams, one query suffices.
    got, ks = await choose(session, settings, lat, lng, [], 1)
    assert [t for t, _ in got] == [skipped]
    assert ks == [dispatch.first_k(1, 0)]


async def test_an_incomplete_team_is_passed_by_for_the_next_active_one(
    session: AsyncSession, settings: Settings
) -> None:
    """The team rule in the KNN query: the nearest team, incomplete, is
    skipped; the next one, active, is chosen; and widening looks past an
    incomplete team as it looks past a skipped one."""
    lat, lng = offset(*CENTER, -700, 600)
    layout = await new_layout(session, lat, lng, settings.search_radius_m + 600)
    near = layout.team(*offset(lat, lng, 20, 0))
    # Many members, all on duty nearest to the call, but none full-time.
    for i in range(dispatch.first_k(1, 0) + 4):
        person_id = layout.person(f"近队员{i}")
        layout.join(near, person_id)
        layout.stand(person_id, "fresh", *offset(lat, lng, 20 + i, 0), age_s=30)
    far = layout.team(*offset(lat, lng, 400, 0))
    for i, kind in enumerate(("full_time", "part_time", "part_time")):
        person_id = layout.person(f"远队员{i}")
        layout.join(far, person_id, kind)
        layout.stand(person_id, "fresh", *offset(lat, lng, 400 + i, 0), age_s=30)
    await layout.insert(session)

    got, ks = await choose(session, settings, lat, lng, [], 1)
    assert [t for t, _ in got] == [far]
    assert ks == [dispatch.first_k(1, 0), 8 * dispatch.first_k(1, 0)], "k widened past it"

    # With a full-time member the near team is active, and nearest.
    await session.execute(
        text("UPDATE team_member SET kind = 'full_time' WHERE team_id = :t AND person_id = :p"),
        {"t": near, "p": next(m["p"] for m in layout.members if m["t"] == near)},
    )
    got, _ = await choose(session, settings, lat, lng, [], 2)
    assert [t for t, _ in got] == [near, far]
