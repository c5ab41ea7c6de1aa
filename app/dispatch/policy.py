"""Dispatch: which team is offered a call, and what happens when nobody takes it.

Policy (API.md; every number is a setting): a call is offered to the
nearest on-duty team within SEARCH_RADIUS_M, measured to the team's on-duty
members' latest positions (positions older than DUTY_POSITION_MAX_AGE_SECONDS
do not count, nor do disabled people and members already responding to a
call: `app.duty.availability`, the one rule); OFFER_FANOUT
teams per round (default 1); teams already offered this call are skipped. An
offer that lapses or that every on-duty member declines moves the call to
the next round; after MAX_OFFER_ROUNDS rounds, or when no team is in range,
the call is escalated to its community's dispatchers, and after
COMMUNITY_ESCALATION_SECONDS without their action, to the street's.

Every function here runs inside the caller's transaction, with the call's
row locked (`lock_call`): the call row is the one lock every path takes
first, so accept, decline, cancel and the sweeper never deadlock and never
both win. (Accept takes a per-person lock just before it, see
`offers.accept`.) A path that holds one call's lock and then needs another
call's takes it only if it is free (`try_lock_call`), never waiting for it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import visibility as call_view
from app.core.config import Settings
from app.duty import availability
from app.duty.availability import available_member
from app.events import log as events
from app.models.call import CallStatus, EscalationLevel, EventType, OfferStatus

log = logging.getLogger("hulian.dispatch")

# KNN over the partial GiST index of on-duty positions (the availability
# rule says `on_duty = true` literally, or PostgreSQL cannot use the partial
# index), bounded by the radius; the k nearest available members are
# grouped to their teams. When k members came back but too few teams (all
# of teams already offered), k grows until the radius is exhausted.
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
        SELECT m.team_id, min(n.distance_m) AS distance_m
        FROM nearest n JOIN team_member m ON m.person_id = n.person_id
        WHERE NOT (m.team_id = ANY(CAST(:skip AS uuid[])))
        GROUP BY m.team_id
        ORDER BY min(n.distance_m), m.team_id
        LIMIT :want
    )
    SELECT (SELECT count(*) FROM nearest) AS seen,
           coalesce((SELECT json_agg(json_build_object('team_id', team_id,
                                                       'distance_m', distance_m)
                                     ORDER BY distance_m, team_id)
                     FROM teams), '[]'::json) AS teams
    """  # noqa: S608 - a constant fragment, values are bound
)
MAX_K = 1 << 20


@dataclass(frozen=True)
class Candidate:
    team_id: uuid.UUID
    distance_m: float


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
    k = 64
    while True:
        row = (
            await session.execute(
                _NEAREST_TEAMS,
                {
                    "lat": lat,
                    "lng": lng,
                    "radius_m": float(settings.search_radius_m),
                    **availability.params(settings),
                    "k": k,
                    "skip": skip,
                    "want": want,
                },
            )
        ).one()
        if len(row.teams) >= want or row.seen < k or k >= MAX_K:
            return [
                Candidate(team_id=uuid.UUID(t["team_id"]), distance_m=float(t["distance_m"]))
                for t in row.teams
            ]
        k *= 8


_LOCK_CALL = text(
    """
    SELECT id, status, category, rounds, escalation_level,
           ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lng
    FROM call WHERE id = :id FOR UPDATE
    """
)
_LOCK_CALL_IF_FREE = text(_LOCK_CALL.text.rstrip() + " SKIP LOCKED")


async def lock_call(session: AsyncSession, call_id: uuid.UUID) -> Any:
    """Lock the call's row (the first lock of every path that changes it)."""
    return (await session.execute(_LOCK_CALL, {"id": call_id})).first()


async def try_lock_call(session: AsyncSession, call_id: uuid.UUID) -> Any:
    """Lock the call's row if nobody holds it; None if somebody does. For a
    path that already holds another call's lock: waiting there could close a
    cycle (two accepts, each holding its own call and wanting the other's)."""
    return (await session.execute(_LOCK_CALL_IF_FREE, {"id": call_id})).first()


async def publish_call(session: AsyncSession, call_id: uuid.UUID) -> dict[str, Any]:
    """Append a `call.updated` event carrying the call as it now is."""
    event_id = await events.next_event_id(session)
    await session.execute(
        text("UPDATE call SET last_event_id = :e, updated_at = now() WHERE id = :id"),
        {"e": event_id, "id": call_id},
    )
    full = await call_view.snapshot(session, call_id)
    await events.append(session, EventType.call_updated, call_id, full, event_id=event_id)
    return full


_OFFER_VIEW = text(
    """
    SELECT o.id, o.call_id, o.status, o.distance_m, o.expires_at, o.team_id, t.name AS team_name,
           c.category, ST_Y(c.location::geometry) AS lat, ST_X(c.location::geometry) AS lng
    FROM offer o JOIN team t ON t.id = o.team_id JOIN call c ON c.id = o.call_id
    WHERE o.id = :id
    """
)


def offer_from_row(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "call_id": str(row.call_id),
        "team": {"id": str(row.team_id), "name": row.team_name},
        "status": row.status,
        "category": row.category,
        "distance_m": round(float(row.distance_m), 1),
        "expires_at": row.expires_at.isoformat(),
        "approx_location": call_view.rounded({"lat": row.lat, "lng": row.lng}),
    }


async def offer_view(session: AsyncSession, offer_id: uuid.UUID) -> dict[str, Any]:
    return offer_from_row((await session.execute(_OFFER_VIEW, {"id": offer_id})).one())


async def publish_offer(
    session: AsyncSession,
    offer_id: uuid.UUID,
    event: EventType,
    *,
    settings: Settings | None = None,
) -> None:
    """Append an offer event; `offer.created` needs the settings (who is
    alerted of it depends on DUTY_POSITION_MAX_AGE_SECONDS)."""
    view = await offer_view(session, offer_id)
    await events.append(
        session, event, uuid.UUID(view["call_id"]), view, offer_id=offer_id, settings=settings
    )


async def create_offer(
    session: AsyncSession,
    settings: Settings,
    call_id: uuid.UUID,
    team_id: uuid.UUID,
    distance_m: float,
    round_no: int,
    *,
    assigned_by: uuid.UUID | None = None,
) -> uuid.UUID:
    offer_id = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO offer (id, call_id, team_id, status, round, distance_m, assigned_by,
                               expires_at)
            VALUES (:id, :call_id, :team_id, 'open', :round, :distance, :assigned_by,
                    now() + CAST(:timeout AS interval))
            """
        ),
        {
            "id": offer_id,
            "call_id": call_id,
            "team_id": team_id,
            "round": round_no,
            "distance": distance_m,
            "assigned_by": assigned_by,
            "timeout": timedelta(seconds=settings.offer_timeout_seconds),
        },
    )
    await publish_offer(session, offer_id, EventType.offer_created, settings=settings)
    return offer_id


async def close_offer(session: AsyncSession, offer_id: uuid.UUID, status: OfferStatus) -> bool:
    """Close an open offer; False when it was no longer open."""
    closed = (
        await session.execute(
            text(
                """
                UPDATE offer SET status = :status, closed_at = now()
                WHERE id = :id AND status = 'open' RETURNING id
                """
            ),
            {"id": offer_id, "status": status.value},
        )
    ).first()
    if closed is None:
        return False
    await publish_offer(session, offer_id, EventType.offer_closed)
    return True


async def withdraw_open_offers(
    session: AsyncSession, call_id: uuid.UUID, *, except_offer: uuid.UUID | None = None
) -> None:
    ids = (
        await session.execute(
            text("SELECT id FROM offer WHERE call_id = :c AND status = 'open' ORDER BY id"),
            {"c": call_id},
        )
    ).scalars()
    for offer_id in list(ids):
        if offer_id != except_offer:
            await close_offer(session, offer_id, OfferStatus.withdrawn)


async def run_round(session: AsyncSession, settings: Settings, call: Any) -> dict[str, Any]:
    """Offer the call (locked, in searching/offered state) to the next teams,
    or escalate it when the rounds are spent or nobody is in range."""
    if call.rounds >= settings.max_offer_rounds:
        return await escalate(session, call.id, EscalationLevel.community, "rounds exhausted")
    offered = list(
        (
            await session.execute(
                text("SELECT DISTINCT team_id FROM offer WHERE call_id = :c"), {"c": call.id}
            )
        ).scalars()
    )
    candidates = await nearest_teams(
        session, settings, call.lat, call.lng, skip=offered, want=settings.offer_fanout
    )
    if not candidates:
        return await escalate(session, call.id, EscalationLevel.community, "no team in range")
    round_no = call.rounds + 1
    for candidate in candidates:
        await create_offer(
            session, settings, call.id, candidate.team_id, candidate.distance_m, round_no
        )
    await session.execute(
        text(
            """
            UPDATE call SET status = 'offered', rounds = :round,
                   team_id = CASE WHEN :single THEN CAST(:team AS uuid) END
            WHERE id = :id
            """
        ),
        {
            "id": call.id,
            "round": round_no,
            "single": len(candidates) == 1,
            "team": candidates[0].team_id,
        },
    )
    return await publish_call(session, call.id)


async def escalate(
    session: AsyncSession, call_id: uuid.UUID, level: EscalationLevel, why: str
) -> dict[str, Any]:
    await session.execute(
        text(
            """
            UPDATE call SET status = 'escalated', escalation_level = :level,
                   escalated_at = now(), team_id = NULL
            WHERE id = :id
            """
        ),
        {"id": call_id, "level": level.value},
    )
    log.info("call escalated", extra={"call_id": str(call_id), "level": level.value, "why": why})
    return await publish_call(session, call_id)


_TEAM_HAS_TAKERS = text(
    f"""
    SELECT EXISTS (
        SELECT 1 FROM offer o
        JOIN team_member m ON m.team_id = o.team_id
        JOIN duty d ON d.person_id = m.person_id
        WHERE o.id = :offer
          AND {available_member("d")}
          AND NOT EXISTS (SELECT 1 FROM offer_decline x
                          WHERE x.offer_id = o.id AND x.person_id = m.person_id))
    """  # noqa: S608 - a constant fragment, values are bound
)


async def team_has_takers(session: AsyncSession, settings: Settings, offer_id: uuid.UUID) -> bool:
    """Whether someone of the offer's team can still take it: an available
    member (`app.duty.availability`) who has not declined it."""
    return bool(
        (
            await session.execute(
                _TEAM_HAS_TAKERS, {"offer": offer_id, **availability.params(settings)}
            )
        ).scalar_one()
    )


async def move_on(
    session: AsyncSession, settings: Settings, call_id: uuid.UUID, lapsed_offer: uuid.UUID
) -> None:
    """After an offer closed without a taker (call row already locked): if
    other offers of the call are still open, wait for them; else go on."""
    call = await lock_call(session, call_id)
    if call is None or call.status != CallStatus.offered.value:
        return
    still_open = (
        await session.execute(
            text("SELECT count(*) FROM offer WHERE call_id = :c AND status = 'open'"),
            {"c": call_id},
        )
    ).scalar_one()
    if still_open:
        return
    assigned = (
        await session.execute(
            text("SELECT assigned_by IS NOT NULL FROM offer WHERE id = :id"), {"id": lapsed_offer}
        )
    ).scalar_one()
    if assigned:
        # A dispatcher chose this team; the call goes back to the dispatchers.
        level = EscalationLevel(call.escalation_level)
        await escalate(
            session,
            call_id,
            level if level is not EscalationLevel.grid else EscalationLevel.community,
            "assigned team did not take it",
        )
        return
    await run_round(session, settings, call)
