"""Dispatch: which team is offered a call, and what happens when nobody takes it.

Policy (API.md; every number is a setting): a call is offered to the
nearest on-duty team within SEARCH_RADIUS_M, measured to the team's on-duty
members' latest positions (positions older than DUTY_POSITION_MAX_AGE_SECONDS
do not count, nor do disabled people and members already responding to a
call: `app.duty.availability`, the one rule); only teams active under the
team rule (`app.teams.rules`) are offered a call; OFFER_FANOUT
teams per round (default 1); teams already offered this call are skipped. An
offer that lapses or that every on-duty member declines moves the call to
the next round; after MAX_OFFER_ROUNDS rounds, or when no team is in range,
the call is escalated to its community's dispatchers, and after
COMMUNITY_ESCALATION_SECONDS without their action, to the street's.

Every function here runs inside the caller's transaction, with the call's
row locked (`app.calls.state.lock_call`, whose docstring says why that lock
comes first). Statuses change only through `app.calls.state.transition`;
offers are made and closed by `app.offers.lifecycle`.

This file is the policy: to change who is offered a call, and when it goes
to the dispatchers, change it here.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import state
from app.calls.state import LockedCall
from app.core import sql
from app.core.config import Settings
from app.duty import availability
from app.duty.availability import available_member
from app.models.call import CallPublic, CallStatus, EscalationLevel
from app.offers import lifecycle
from app.teams import rules as team_rule
from app.teams.rules import team_active

log = logging.getLogger("hulian.dispatch")

# KNN over the partial GiST index of on-duty positions (the availability
# rule says `on_duty = true` literally, or PostgreSQL cannot use the partial
# index), bounded by the radius; the k nearest available members are
# grouped to their teams, and only active teams are kept (the team rule,
# `app.teams.rules`: a few reads of `team_member` by its primary key per
# team, never in the scan). `OFFSET 0` keeps the rule out of the sorted
# subquery, so it is asked of the candidates nearest first and only until
# `:want` teams pass (one team, most often), not of every candidate.
# When k members came back but too few teams (all of teams already offered,
# or incomplete), k grows until the radius is exhausted.
_NEAREST_TEAMS = text(
    f"""
    WITH here AS (SELECT ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography AS pt),
    nearest AS (
        SELECT d.person_id, ST_Distance(d.location, here.pt, false) AS distance_m
        FROM duty d, here
        WHERE {available_member("d")}
          AND ST_DWithin(d.location, here.pt, :radius_m, false)
        ORDER BY d.location <-> here.pt
        LIMIT :k
    ),
    teams AS (
        SELECT c.team_id, c.distance_m
        FROM (SELECT m.team_id, min(n.distance_m) AS distance_m
              FROM nearest n JOIN team_member m ON m.person_id = n.person_id
              WHERE NOT (m.team_id = ANY(CAST(:skip AS uuid[])))
              GROUP BY m.team_id
              ORDER BY min(n.distance_m), m.team_id
              OFFSET 0) c
        WHERE {team_active("c.team_id")}
        LIMIT :want
    )
    SELECT (SELECT count(*) FROM nearest) AS seen,
           coalesce((SELECT json_agg(json_build_object('team_id', teams.team_id,
                                                       'name', t.name,
                                                       'distance_m', teams.distance_m)
                                     ORDER BY teams.distance_m, teams.team_id)
                     FROM teams JOIN team t ON t.id = teams.team_id), '[]'::json) AS teams
    """  # noqa: S608 - a constant fragment, values are bound
)
MAX_K = 1 << 20
# The first try asks this many members per team wanted or skipped: on-duty
# members stand near their team's base, so a handful of them usually names
# the nearest teams, and every member read costs a few page reads (duty,
# person, call, team_member) that at a million teams are rarely in cache
# (docs/benchmarks.md, "Nearest team at scale"). The answer does not depend
# on it: a team is ranked by its nearest member, which the KNN order reads
# first, and too few teams make k grow.
FIRST_K_PER_TEAM = 8


def first_k(want: int, skipped: int) -> int:
    """How many members the first try reads, for `want` teams and `skipped`
    teams already offered."""
    return FIRST_K_PER_TEAM * (max(want, 1) + skipped)


@dataclass(frozen=True)
class Candidate:
    team: lifecycle.Team
    distance_m: float

    @property
    def team_id(self) -> uuid.UUID:
        return self.team.id


async def nearest_teams(
    session: AsyncSession,
    settings: Settings,
    lat: float,
    lng: float,
    *,
    skip: list[uuid.UUID],
    want: int,
) -> list[Candidate]:
    """Up to `want` teams, nearest first, by their nearest free on-duty member."""
    k = first_k(want, len(skip))
    while True:
        row = await sql.one(
            session,
            _NEAREST_TEAMS,
            {
                "lat": lat,
                "lng": lng,
                "radius_m": float(settings.search_radius_m),
                **availability.params(settings),
                **team_rule.params(settings),
                "k": k,
                "skip": skip,
                "want": want,
            },
        )
        if len(row.teams) >= want or row.seen < k or k >= MAX_K:
            return [
                Candidate(
                    team=lifecycle.Team(uuid.UUID(t["team_id"]), t["name"]),
                    distance_m=float(t["distance_m"]),
                )
                for t in row.teams
            ]
        k *= 8


async def run_round(
    session: AsyncSession,
    settings: Settings,
    call: LockedCall,
    *,
    paired: bool | None = None,
    offered: list[uuid.UUID],
) -> CallPublic:
    """Offer the call (locked, in searching/offered state) to the next teams,
    or escalate it when the rounds are spent or nobody is in range. `paired`:
    whether the caller has paired members (`has_paired_members`), when the
    caller already knows; False skips the paired round's query. `offered`:
    the teams the call was offered to, which the round skips (none for a
    call just made; `lifecycle.offered_teams`, read by an offer's closing,
    for a call moving on)."""
    if call.rounds == 0 and settings.paired_first and paired is not False:
        to_paired = await paired_round(session, settings, call)
        if to_paired is not None:
            return to_paired
    if call.rounds >= settings.max_offer_rounds:
        return await escalate(session, call, EscalationLevel.community, "rounds exhausted")
    candidates = await nearest_teams(
        session, settings, call.lat, call.lng, skip=offered, want=settings.offer_fanout
    )
    if not candidates:
        return await escalate(session, call, EscalationLevel.community, "no team in range")
    round_no = call.rounds + 1
    for candidate in candidates:
        await lifecycle.create_offer(
            session, settings, call, candidate.team, candidate.distance_m, round_no
        )
    # With one team per round the call names it; with several, none yet.
    named = candidates[0].team if len(candidates) == 1 else None
    return await state.transition(
        session,
        call,
        CallStatus.offered,
        rounds=round_no,
        team_id=named.id if named else None,
        team_name=named.name if named else None,
    )


# The paired round (PAIRED_FIRST): when the caller lives in a household
# (`household_resident`), its paired members who are available now (the one
# rule, `app.duty.availability`) are offered the call first, each by an
# offer of their own, wherever they are (no radius) and whichever team they
# are on (the offer names the first of their teams by id: a team is what an
# offer shows). It is round 0: it spends none of MAX_OFFER_ROUNDS. It runs
# once per call: when its offers lapse or are declined, `move_on` calls
# `run_round` again, which finds a paired offer already made and goes on to
# the nearest-team rounds, which do not skip the paired members' teams (the
# rest of those teams never saw the call).
def has_paired_members(person_id: str) -> str:
    """Whether the person (a SQL expression) lives in a household with a
    paired member: a press asks it in its checks (`app.calls.service`), so
    that a caller who does not pays no round trip for the paired round."""
    return f"""EXISTS (SELECT 1 FROM household_resident r
                      JOIN household_pairing x ON x.household_id = r.household_id
                      WHERE r.person_id = {person_id})"""  # noqa: S608 - our expression


_PAIRED_MEMBERS = text(
    f"""
    SELECT x.person_id, tm.team_id, tm.team_name,
           ST_Distance(d.location, c.location, false) AS distance_m
    FROM call c
    JOIN household_resident r ON r.person_id = c.resident_id
    JOIN household_pairing x ON x.household_id = r.household_id
    JOIN duty d ON d.person_id = x.person_id
    CROSS JOIN LATERAL (SELECT m.team_id, t.name AS team_name
                        FROM team_member m JOIN team t ON t.id = m.team_id
                        WHERE m.person_id = x.person_id
                        ORDER BY m.team_id LIMIT 1) tm
    WHERE c.id = :call
      AND x.person_id <> c.resident_id
      AND {available_member("d")}
      AND NOT EXISTS (SELECT 1 FROM offer o WHERE o.call_id = c.id AND o.person_id IS NOT NULL)
    ORDER BY distance_m, x.person_id
    """  # noqa: S608 - a constant fragment, values are bound
)


async def paired_round(
    session: AsyncSession, settings: Settings, call: LockedCall
) -> CallPublic | None:
    """Offer the call to the caller's household's available paired members;
    None when there is nobody to offer it to (or they were offered it
    already), and the nearest-team rounds go on."""
    members = (
        await session.execute(_PAIRED_MEMBERS, {"call": call.id, **availability.params(settings)})
    ).all()
    if not members:
        return None
    for member in members:
        await lifecycle.create_offer(
            session,
            settings,
            call,
            lifecycle.Team(member.team_id, member.team_name),
            float(member.distance_m),
            0,
            person_id=member.person_id,
        )
    teams = {member.team_id for member in members}
    one_team = len(teams) == 1
    return await state.transition(
        session,
        call,
        CallStatus.offered,
        team_id=members[0].team_id if one_team else None,
        team_name=members[0].team_name if one_team else None,
    )


async def escalate(
    session: AsyncSession, call: LockedCall, level: EscalationLevel, why: str
) -> CallPublic:
    full = await state.transition(
        session, call, CallStatus.escalated, escalation_level=level.value, team_id=None
    )
    log.info("call escalated", extra={"call_id": str(call.id), "level": level.value, "why": why})
    return full


def _has_takers(offer: str) -> str:
    """SQL: someone of the offer's team can still take it (the rule of
    `team_has_takers`, written once for both statements below)."""
    return f"""
    EXISTS (
        SELECT 1 FROM team_member m
        JOIN duty d ON d.person_id = m.person_id
        WHERE m.team_id = {offer}.team_id
          AND {available_member("d")}
          AND ({offer}.person_id IS NULL OR {offer}.person_id = m.person_id)
          AND NOT EXISTS (SELECT 1 FROM offer_decline x
                          WHERE x.offer_id = {offer}.id AND x.person_id = m.person_id))
    """  # noqa: S608 - `offer` is an alias the module writes, values are bound


_TEAM_HAS_TAKERS = text(
    f"""
    SELECT EXISTS (SELECT 1 FROM offer o WHERE o.id = :offer AND {_has_takers("o")}) AS takers
    """  # noqa: S608 - a constant fragment, values are bound
)

# The open offers of these teams nobody can take any more, in one statement
# (was one `team_has_takers` round trip per open offer of the teams).
_OPEN_OFFERS_WITHOUT_TAKERS = text(
    f"""
    SELECT o.id, o.call_id FROM offer o
    WHERE o.team_id = ANY(CAST(:teams AS uuid[])) AND o.status = 'open'
      AND NOT {_has_takers("o")}
    ORDER BY o.call_id
    """  # noqa: S608 - a constant fragment, values are bound
)


async def team_has_takers(session: AsyncSession, settings: Settings, offer_id: uuid.UUID) -> bool:
    """Whether someone of the offer's team can still take it: an available
    member (`app.duty.availability`) who has not declined it; for a paired
    offer, only the member it was made to."""
    row = await sql.one(
        session, _TEAM_HAS_TAKERS, {"offer": offer_id, **availability.params(settings)}
    )
    return bool(row.takers)


async def offers_without_takers(
    session: AsyncSession, settings: Settings, team_ids: list[uuid.UUID]
) -> list[sql.Row]:
    """The open offers (id, call_id) of these teams that no member can take
    (`team_has_takers` false for each), by call. Read without locks: a
    caller that waits for a call's lock asks `team_has_takers` again."""
    return await sql.fetch(
        session,
        _OPEN_OFFERS_WITHOUT_TAKERS,
        {"teams": team_ids, **availability.params(settings)},
    )


async def move_on(
    session: AsyncSession, settings: Settings, call: LockedCall, lapsed: sql.Row
) -> None:
    """After an offer of the call closed without a taker: if other offers of
    the call are still open, wait for them; else go on. `call`: locked by
    the caller, and not changed since; `lapsed`: the row
    `lifecycle.close_offer` gave for the offer (whether a dispatcher chose
    its team, the call's other open offers, the teams it was offered to)."""
    if call.status is not CallStatus.offered or lapsed.other_open_offers:
        return
    if lapsed.assigned:
        # A dispatcher chose this team; the call goes back to the dispatchers.
        level = call.escalation_level
        await escalate(
            session,
            call,
            level if level is not EscalationLevel.grid else EscalationLevel.community,
            "assigned team did not take it",
        )
        return
    await run_round(session, settings, call, offered=list(lapsed.offered_teams))
