"""Teams, members, duty, households and pairings, drawn batch by batch.

Teams are drawn in batches of TEAM_BATCH; all the random numbers of a batch
are drawn up front as numpy arrays (so the rows do not depend on how they are
consumed), and the rows themselves are built lazily, CHUNK_ROWS at a time, as
the COPY writer asks for them. Memory is bounded by one batch, whatever the
number of teams.

Rules (BRIEF.md):
- every grid has at least one team (when there are at least as many teams as
  grids); the others go to grids with a probability proportional to area;
- a team has 2 to 9 party members, 1 or 2 of whom are full-time grid party
  members (the rest in-service party members, part-time), and 1 to 4
  part-time members who are not party members: so at least 3 members and at
  least 1 full-time one. The party members of all teams add up to exactly
  round(1485 × teams / 270): 1,485 for the district's 270 teams;
- each person is on exactly one team; each member plays 1 or 2 roles;
- each party member looks after 3 to 5 households of their team's grid, each
  household tagged with at least one vulnerability;
- a fraction `on_duty` of the members is on duty, within 300 m of the base;
- each member has logged service activities in the previous month and in
  the current one up to the start of today (the district's day): 1 to 6 a
  month for a full-time member (so some are short of the monthly quota of 3),
  0 to 3 for other party members, 0 to 2 for the rest; a party member's
  visits and hardship help name one of their households about half the
  time. These are the only rows that depend on the day the seed runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from app.core.months import Month
from app.core.phones import demo_phone
from app.models.activity import ActivityKind, ActivitySource
from app.models.enums import Affiliation, MemberKind, MemberRole, Vulnerability
from app.seed.geometry import District, offset_degrees
from app.seed.ids import IdSpace
from app.seed.names import (
    GIVEN_CHARS,
    SERVICE_CONTENTS,
    STREET_NAME,
    SURNAMES,
    TEAM_SUFFIX,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Row = tuple[object, ...]

DEFAULT_TEAMS = 270
DISTRICT_PARTY_MEMBERS = 1_485
MAX_TEAMS = 1_000_000

TEAM_BATCH = 10_000
CHUNK_ROWS = 50_000

PARTY_PER_TEAM = (2, 9)  # inclusive
NON_PARTY_PER_TEAM = (1, 4)
HOUSEHOLDS_PER_PARTY_MEMBER = (3, 5)
DUTY_RADIUS_M = 300.0
ACCURACY_M = (5.0, 50.0)

TEAM_COLUMNS = ("id", "name", "grid_id", "base", "service_content")
PERSON_COLUMNS = ("id", "phone", "display_name", "is_party_member")
MEMBER_COLUMNS = ("team_id", "person_id", "kind", "roles", "affiliation")
DUTY_COLUMNS = ("person_id", "on_duty", "since", "location", "accuracy_m", "located_at")
HOUSEHOLD_COLUMNS = ("id", "address", "grid_id", "location", "vulnerabilities")
PAIRING_COLUMNS = ("person_id", "household_id")
RESIDENT_COLUMNS = ("person_id", "household_id")
# Half the households have a resident on record (a person who can log in
# and call), with a phone of the demo range from RESIDENT_PHONE_BASE on,
# numbered by household: above every member's number, below the tests'.
RESIDENT_SHARE = 0.5
RESIDENT_PHONE_BASE = 60_000_000

ACTIVITY_COLUMNS = (
    "id",
    "person_id",
    "team_id",
    "kind",
    "source",
    "at",
    "duration_min",
    "household_id",
)
# Activities a month, inclusive ranges: full-time, other party members, the rest.
ACTIVITIES_FULL_TIME = (1, 6)
ACTIVITIES_PARTY = (0, 3)
ACTIVITIES_OTHER = (0, 2)
_ACTIVITY_KINDS = tuple(k.value for k in ActivityKind)
_ACTIVITY_KIND_P = np.asarray([0.30, 0.15, 0.12, 0.15, 0.13, 0.15])
_HOUSEHOLD_KINDS = np.asarray(
    [k in (ActivityKind.visit.value, ActivityKind.hardship.value) for k in _ACTIVITY_KINDS]
)
_DURATIONS_MIN = np.asarray([30, 45, 60, 90, 120])

# Part-time members who are not party members come from these.
_OTHER_AFFILIATIONS: tuple[str, ...] = tuple(
    a.value
    for a in Affiliation
    if a not in (Affiliation.grid_party_member, Affiliation.in_service_party_member)
)
_AFFILIATIONS: tuple[str, ...] = (
    Affiliation.grid_party_member.value,
    Affiliation.in_service_party_member.value,
    *_OTHER_AFFILIATIONS,
)

_ROLES = tuple(r.value for r in MemberRole)
# Role sets: the 5 single roles, then the 10 pairs.
_ROLE_SETS: tuple[list[str], ...] = tuple(
    [[r] for r in _ROLES] + [list(pair) for pair in combinations(_ROLES, 2)]
)
# A full-time member is the team's liaison, alone or with one other role.
_FULL_TIME_ROLE_SETS = np.asarray(
    [i for i, roles in enumerate(_ROLE_SETS) if MemberRole.liaison.value in roles]
)

_VULNERABILITIES = tuple(v.value for v in Vulnerability)
# A household's main vulnerability, and the chance of each as a second tag.
_MAIN_VULNERABILITY_P = np.asarray([0.42, 0.16, 0.14, 0.18, 0.10])
_EXTRA_VULNERABILITY_P = np.asarray([0.10, 0.22, 0.08, 0.10, 0.04])
_TAG_LISTS: tuple[list[str], ...] = tuple(
    [v for bit, v in enumerate(_VULNERABILITIES) if mask >> bit & 1] for mask in range(32)
)

_POINT_EWKB = np.dtype(
    [("order", "u1"), ("kind", "<u4"), ("srid", "<u4"), ("x", "<f8"), ("y", "<f8")]
)


def points_ewkb(x: FloatArray, y: FloatArray) -> list[bytes]:
    """EWKB of SRID-4326 points (what PostGIS's binary input reads)."""
    packed = np.empty(len(x), dtype=_POINT_EWKB)
    packed["order"] = 1  # little endian
    packed["kind"] = 0x20000001  # point, with an SRID
    packed["srid"] = 4326
    packed["x"] = x
    packed["y"] = y
    raw = packed.tobytes()
    size = _POINT_EWKB.itemsize
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def party_members_for(teams: int) -> int:
    """1,485 party members for the district's 270 teams, in proportion otherwise."""
    return (DISTRICT_PARTY_MEMBERS * teams + DEFAULT_TEAMS // 2) // DEFAULT_TEAMS


def _allocate(rng: np.random.Generator, count: int, total: int) -> IntArray:
    """`count` numbers in PARTY_PER_TEAM adding up to `total`."""
    low, high = PARTY_PER_TEAM
    if not low * count <= total <= high * count:
        raise ValueError("party members out of the per-team range")
    values = rng.integers(low, high + 1, count)
    missing = total - int(values.sum())
    while missing != 0:
        room = np.flatnonzero(values < high) if missing > 0 else np.flatnonzero(values > low)
        step = min(abs(missing), len(room))
        chosen = rng.choice(room, size=step, replace=False)
        values[chosen] += 1 if missing > 0 else -1
        missing -= step if missing > 0 else -step
    return values


def _chunks(total: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, CHUNK_ROWS):
        yield start, min(start + CHUNK_ROWS, total)


@dataclass(frozen=True)
class Counts:
    teams: int
    persons: int
    party_members: int
    on_duty: int
    households: int
    activities: int


class TeamBatch:
    """Teams first_team … first_team+n-1 and everything that hangs off them."""

    def __init__(
        self,
        population: Population,
        first_team: int,
        count: int,
        first_person: int,
        first_household: int,
        first_activity: int,
    ) -> None:
        p = population
        rng = p.rng
        district = p.district
        grids = district.grid_count
        self.population = p
        self.first_team = first_team
        self.first_person = first_person
        self.first_household = first_household
        self.first_activity = first_activity

        # Teams: the first `grids` teams cover every grid once.
        number = np.arange(first_team, first_team + count)
        grid = np.empty(count, dtype=np.int64)
        covering = number < grids
        grid[covering] = p.grid_order[number[covering]]
        spread = int((~covering).sum())
        grid[~covering] = rng.choice(grids, size=spread, p=district.grid_weights)
        self.team_grid = grid
        self.base_x, self.base_y = district.sampler.sample(rng, grid)
        self.team_estate = (rng.random(count) * p.estate_counts[grid]).astype(np.int64)
        self.team_building = rng.integers(1, 31, count)
        self.team_service = rng.integers(0, len(SERVICE_CONTENTS), count)

        party_target = party_members_for(first_team + count) - party_members_for(first_team)
        party = _allocate(rng, count, party_target)
        full_time = 1 + (rng.random(count) < 0.25).astype(np.int64)
        others = rng.integers(NON_PARTY_PER_TEAM[0], NON_PARTY_PER_TEAM[1] + 1, count)
        size = party + others

        # Members: each team's full-time members first, then its other party members.
        members = int(size.sum())
        team_of = np.repeat(np.arange(count), size)
        position = np.arange(members) - np.repeat(np.cumsum(size) - size, size)
        self.member_team = team_of
        self.is_full_time = position < full_time[team_of]
        self.is_party = position < party[team_of]
        affiliation = 2 + rng.integers(0, len(_OTHER_AFFILIATIONS), members)
        affiliation[self.is_party] = 1
        affiliation[self.is_full_time] = 0
        self.affiliation = affiliation
        roles = rng.integers(0, len(_ROLE_SETS), members)
        full_roles = _FULL_TIME_ROLE_SETS[rng.integers(0, len(_FULL_TIME_ROLE_SETS), members)]
        self.roles = np.where(self.is_full_time, full_roles, roles)
        self.surname = rng.integers(0, len(SURNAMES), members)
        self.given = rng.integers(0, len(GIVEN_CHARS), (members, 2))
        self.two_given = rng.random(members) < 0.7

        # Duty: a share of the members, within DUTY_RADIUS_M of their base.
        self.duty_member = np.flatnonzero(rng.random(members) < p.on_duty)
        on_duty = len(self.duty_member)
        distance = DUTY_RADIUS_M * np.sqrt(rng.random(on_duty))
        bearing = rng.random(on_duty) * 2 * math.pi
        duty_team = team_of[self.duty_member]
        self.duty_x, self.duty_y = offset_degrees(
            self.base_x[duty_team],
            self.base_y[duty_team],
            distance * np.sin(bearing),
            distance * np.cos(bearing),
        )
        self.duty_accuracy = np.round(rng.uniform(*ACCURACY_M, on_duty), 1)

        # Households: 3 to 5 in the grid of each party member's team.
        party_members = np.flatnonzero(self.is_party)
        low, high = HOUSEHOLDS_PER_PARTY_MEMBER
        per_member = rng.integers(low, high + 1, len(party_members))
        self.household_member = np.repeat(party_members, per_member)
        households = len(self.household_member)
        household_grid = grid[team_of[self.household_member]]
        self.household_grid = household_grid
        self.household_x, self.household_y = district.sampler.sample(rng, household_grid)
        self.household_estate = (rng.random(households) * p.estate_counts[household_grid]).astype(
            np.int64
        )
        self.household_building = rng.integers(1, 31, households)
        self.household_unit = rng.integers(1, 5, households)
        self.household_floor = rng.integers(1, 34, households)
        self.household_room = rng.integers(1, 7, households)
        main = rng.choice(len(_VULNERABILITIES), size=households, p=_MAIN_VULNERABILITY_P)
        extra = rng.random((households, len(_VULNERABILITIES))) < _EXTRA_VULNERABILITY_P
        bits = (extra.astype(np.int64) << np.arange(len(_VULNERABILITIES))).sum(axis=1)
        self.household_tags = bits | (1 << main)

        # Residents, drawn from their own generator so that everything
        # above stays as it was for a seed.
        resident_rng = np.random.default_rng([p.seed, 0x7265, first_team])
        self.resident_household = np.flatnonzero(resident_rng.random(households) < RESIDENT_SHARE)

        self._draw_activities(
            np.random.default_rng([p.seed, 0x6163, first_team]), per_member, party_members
        )

        self.counts = Counts(
            teams=count,
            persons=members,
            party_members=len(party_members),
            on_duty=on_duty,
            households=households,
            activities=len(self.activity_member),
        )

    def _draw_activities(
        self, rng: np.random.Generator, per_member: IntArray, party_members: IntArray
    ) -> None:
        """The members' activities of the previous and the current month
        (from their own generator, so nothing above depends on them)."""
        p = self.population
        members = len(self.member_team)
        low = np.where(
            self.is_full_time,
            ACTIVITIES_FULL_TIME[0],
            np.where(self.is_party, ACTIVITIES_PARTY[0], ACTIVITIES_OTHER[0]),
        )
        high = np.where(
            self.is_full_time,
            ACTIVITIES_FULL_TIME[1],
            np.where(self.is_party, ACTIVITIES_PARTY[1], ACTIVITIES_OTHER[1]),
        )
        # Each member's households: a contiguous run of the household rows.
        first_household_of = np.full(members, -1, dtype=np.int64)
        households_of = np.zeros(members, dtype=np.int64)
        first_household_of[party_members] = np.cumsum(per_member) - per_member
        households_of[party_members] = per_member

        member_parts: list[IntArray] = []
        at_parts: list[FloatArray] = []
        for month_start, month_end in p.activity_months:
            n = rng.integers(low, high + 1)
            who = np.repeat(np.arange(members), n)
            span = (month_end - month_start).total_seconds()
            # On the minute, as a member would write it down.
            at = np.floor((month_start.timestamp() + rng.random(len(who)) * span) / 60) * 60
            member_parts.append(who)
            at_parts.append(at)
        who = np.concatenate(member_parts) if member_parts else np.zeros(0, np.int64)
        at = np.concatenate(at_parts) if at_parts else np.zeros(0)
        kind = rng.choice(len(_ACTIVITY_KINDS), size=len(who), p=_ACTIVITY_KIND_P)
        duration = _DURATIONS_MIN[rng.integers(0, len(_DURATIONS_MIN), len(who))]
        pick = rng.random(len(who))
        names_household = (
            _HOUSEHOLD_KINDS[kind] & (households_of[who] > 0) & (rng.random(len(who)) < 0.5)
        )
        household = np.where(
            names_household,
            first_household_of[who] + (pick * np.maximum(households_of[who], 1)).astype(np.int64),
            -1,
        )
        # Only what happened before today (the district's day) is kept; the
        # draws above do not depend on it, so a seed is the same all day.
        keep = at < p.activity_cut.timestamp()
        self.activity_member = who[keep]
        self.activity_at = at[keep]
        self.activity_kind = kind[keep]
        self.activity_duration = duration[keep]
        self.activity_household = household[keep]

    # Rows, built lazily chunk by chunk.

    def team_rows(self) -> Iterator[Row]:
        p = self.population
        for start, stop in _chunks(self.counts.teams):
            grid = self.team_grid[start:stop].tolist()
            names = [
                f"{p.grid_community[g]}{p.estates[g][e]}{b}栋{TEAM_SUFFIX}"
                for g, e, b in zip(
                    grid,
                    self.team_estate[start:stop].tolist(),
                    self.team_building[start:stop].tolist(),
                    strict=True,
                )
            ]
            yield from zip(
                p.team_ids.span(self.first_team + start, self.first_team + stop),
                names,
                [p.grid_ids[g] for g in grid],
                points_ewkb(self.base_x[start:stop], self.base_y[start:stop]),
                [SERVICE_CONTENTS[s] for s in self.team_service[start:stop].tolist()],
                strict=True,
            )

    def person_rows(self) -> Iterator[Row]:
        p = self.population
        for start, stop in _chunks(self.counts.persons):
            first = self.first_person
            given = self.given[start:stop].tolist()
            names = [
                SURNAMES[s] + GIVEN_CHARS[g[0]] + (GIVEN_CHARS[g[1]] if two else "")
                for s, g, two in zip(
                    self.surname[start:stop].tolist(),
                    given,
                    self.two_given[start:stop].tolist(),
                    strict=True,
                )
            ]
            yield from zip(
                p.person_ids.span(first + start, first + stop),
                [demo_phone(n) for n in range(first + start, first + stop)],
                names,
                self.is_party[start:stop].tolist(),
                strict=True,
            )

    def member_rows(self) -> Iterator[Row]:
        p = self.population
        full, part = MemberKind.full_time.value, MemberKind.part_time.value
        for start, stop in _chunks(self.counts.persons):
            teams = (self.member_team[start:stop] + self.first_team).tolist()
            yield from zip(
                p.team_ids.take(teams),
                p.person_ids.span(self.first_person + start, self.first_person + stop),
                [full if f else part for f in self.is_full_time[start:stop].tolist()],
                [_ROLE_SETS[r] for r in self.roles[start:stop].tolist()],
                [_AFFILIATIONS[a] for a in self.affiliation[start:stop].tolist()],
                strict=True,
            )

    def duty_rows(self) -> Iterator[Row]:
        p = self.population
        now = p.now
        for start, stop in _chunks(self.counts.on_duty):
            persons = (self.duty_member[start:stop] + self.first_person).tolist()
            for person, location, accuracy in zip(
                p.person_ids.take(persons),
                points_ewkb(self.duty_x[start:stop], self.duty_y[start:stop]),
                self.duty_accuracy[start:stop].tolist(),
                strict=True,
            ):
                yield (person, True, now, location, accuracy, now)

    def household_rows(self) -> Iterator[Row]:
        p = self.population
        for start, stop in _chunks(self.counts.households):
            grid = self.household_grid[start:stop].tolist()
            addresses = [
                f"{STREET_NAME}{p.grid_community[g]}{p.estates[g][e]}{b}栋{u}单元{f}{r:02d}室"
                for g, e, b, u, f, r in zip(
                    grid,
                    self.household_estate[start:stop].tolist(),
                    self.household_building[start:stop].tolist(),
                    self.household_unit[start:stop].tolist(),
                    self.household_floor[start:stop].tolist(),
                    self.household_room[start:stop].tolist(),
                    strict=True,
                )
            ]
            yield from zip(
                p.household_ids.span(self.first_household + start, self.first_household + stop),
                addresses,
                [p.grid_ids[g] for g in grid],
                points_ewkb(self.household_x[start:stop], self.household_y[start:stop]),
                [_TAG_LISTS[t] for t in self.household_tags[start:stop].tolist()],
                strict=True,
            )

    def pairing_rows(self) -> Iterator[Row]:
        p = self.population
        for start, stop in _chunks(self.counts.households):
            persons = (self.household_member[start:stop] + self.first_person).tolist()
            yield from zip(
                p.person_ids.take(persons),
                p.household_ids.span(self.first_household + start, self.first_household + stop),
                strict=True,
            )

    def resident_person_rows(self) -> Iterator[Row]:
        """The residents on record: one person per chosen household."""
        numbers = (self.resident_household + self.first_household).tolist()
        ids = self.population.resident_ids.take(numbers)
        for person_id, n in zip(ids, numbers, strict=True):
            phone = demo_phone(RESIDENT_PHONE_BASE + n)
            yield (person_id, phone, "居民" + phone[-4:], False)

    def resident_rows(self) -> Iterator[Row]:
        p = self.population
        numbers = (self.resident_household + self.first_household).tolist()
        yield from zip(p.resident_ids.take(numbers), p.household_ids.take(numbers), strict=True)

    def activity_rows(self) -> Iterator[Row]:
        p = self.population
        logged = ActivitySource.logged.value
        for start, stop in _chunks(self.counts.activities):
            members = self.activity_member[start:stop]
            households = self.activity_household[start:stop].tolist()
            yield from zip(
                p.activity_ids.span(self.first_activity + start, self.first_activity + stop),
                p.person_ids.take((members + self.first_person).tolist()),
                p.team_ids.take((self.member_team[members] + self.first_team).tolist()),
                [_ACTIVITY_KINDS[k] for k in self.activity_kind[start:stop].tolist()],
                [logged] * (stop - start),
                [datetime.fromtimestamp(t, p.now.tzinfo) for t in self.activity_at[start:stop]],
                self.activity_duration[start:stop].tolist(),
                [p.household_ids[h + self.first_household] if h >= 0 else None for h in households],
                strict=True,
            )


class Population:
    """The people of the district for one seed, drawn TEAM_BATCH teams at a time."""

    def __init__(
        self,
        district: District,
        grid_ids: list[str],
        *,
        seed: int,
        teams: int,
        on_duty: float,
        now: datetime,
        zone: ZoneInfo,
    ) -> None:
        if not 0 < teams <= MAX_TEAMS:
            raise ValueError(f"teams must be between 1 and {MAX_TEAMS:,}")
        self.district = district
        self.grid_ids = grid_ids
        self.grid_community = district.grid_community
        self.estates = district.grid_estates
        self.estate_counts = np.asarray([len(e) for e in district.grid_estates])
        self.teams = teams
        self.on_duty = on_duty
        self.now = now
        self.rng = np.random.default_rng([seed, 0x7065])
        self.grid_order = self.rng.permutation(district.grid_count)
        self.team_ids = IdSpace(seed, "team")
        self.person_ids = IdSpace(seed, "person")
        self.household_ids = IdSpace(seed, "household")
        self.resident_ids = IdSpace(seed, "resident")
        self.activity_ids = IdSpace(seed, "activity")
        self.seed = seed
        # Activities: the previous month and the current one, up to the
        # start of today in the district.
        this = Month.of(now, zone)
        self.activity_months = [
            (month.start(zone), month.end(zone)) for month in (this.previous(), this)
        ]
        today = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        self.activity_cut = today

    def batches(self) -> Iterator[TeamBatch]:
        person = 0
        household = 0
        activity = 0
        for first in range(0, self.teams, TEAM_BATCH):
            batch = TeamBatch(
                self, first, min(TEAM_BATCH, self.teams - first), person, household, activity
            )
            person += batch.counts.persons
            household += batch.counts.households
            activity += batch.counts.activities
            yield batch
