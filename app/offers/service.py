"""The volunteer's side: offers to one's teams, accepting, declining; and the
dispatcher's: the calls of its area, and assigning one to a team.

Accepting is decided by one conditional UPDATE (`status = 'open' AND
expires_at > now()`), under the call's row lock: of two members accepting at
once exactly one wins, and an accept racing the deadline either wins before
it or finds the offer closed, never both. A member already responding to a
call cannot accept another: the partial unique index on
`call(responder_id)` settles even two accepts by one member at once.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import visibility as call_view
from app.calls.service import check_transition
from app.calls.visibility import Viewer
from app.core import cursors, locks
from app.core.config import Settings
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.locks import Lock
from app.dispatch import policy as dispatch
from app.identity.auth import PersonPrincipal
from app.models.call import CallStatus, EventType, OfferStatus


class OfferClosed(Conflict):
    code = "offer_closed"
    title = "Offer closed"


class ResponderBusy(Conflict):
    code = "responder_busy"
    title = "Already responding"


async def list_offers(
    session: AsyncSession,
    person: PersonPrincipal,
    status: OfferStatus | None,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Offers to the person's teams, newest first, a page at a time."""
    rows = (
        await session.execute(
            text(
                """
                SELECT o.id, o.call_id, o.status, o.distance_m, o.expires_at, o.team_id,
                       o.created_at, t.name AS team_name, c.category,
                       ST_Y(c.location::geometry) AS lat, ST_X(c.location::geometry) AS lng
                FROM offer o JOIN team t ON t.id = o.team_id JOIN call c ON c.id = o.call_id
                WHERE o.team_id = ANY(CAST(:teams AS uuid[]))
                  AND (CAST(:status AS varchar) IS NULL OR o.status = :status)
                  AND (o.status <> 'open' OR o.expires_at > now())
                  AND (CAST(:after_at AS timestamptz) IS NULL
                       OR (o.created_at, o.id)
                          < (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
                ORDER BY o.created_at DESC, o.id DESC
                LIMIT :limit
                """
            ),
            {
                "teams": list(person.team_ids),
                "status": status.value if status else None,
                **cursors.bounds(cursor),
                "limit": limit + 1,
            },
        )
    ).all()
    page = rows[:limit]
    more = cursors.next_cursor(rows, limit)
    return [dispatch.offer_from_row(row) for row in page], more


async def _offer_of_mine(
    session: AsyncSession, person: PersonPrincipal, offer_id: uuid.UUID
) -> Any:
    row = (
        await session.execute(
            text("SELECT id, call_id, team_id FROM offer WHERE id = :id"), {"id": offer_id}
        )
    ).first()
    if row is None or row.team_id not in person.team_ids:
        raise NotFound("No such offer.")
    return row


async def accept(
    session: AsyncSession, settings: Settings, person: PersonPrincipal, offer_id: uuid.UUID
) -> dict[str, Any]:
    offer = await _offer_of_mine(session, person, offer_id)
    # One accept per person at a time, taken before any call's lock. Without
    # it, one member accepting two offers at once deadlocks: each transaction
    # holds its own call, one waits on the other's responder index entry and
    # the other wants the first's call to withdraw the offer only this member
    # could take. With it, the second accept finds the member busy (or that
    # offer withdrawn), as if it had come a moment later.
    await locks.xact_lock(session, Lock.accept, str(person.person_id))
    await dispatch.lock_call(session, offer.call_id)
    try:
        # Both changes stand or fall together: a busy responder leaves the
        # offer open for the rest of the team.
        async with session.begin_nested():
            taken = (
                await session.execute(
                    text(
                        """
                        UPDATE offer SET status = 'accepted', accepted_by = :me, closed_at = now()
                        WHERE id = :id AND status = 'open' AND expires_at > now()
                        RETURNING id
                        """
                    ),
                    {"id": offer_id, "me": person.person_id},
                )
            ).first()
            if taken is None:
                raise OfferClosed("This offer has been taken, has expired or was withdrawn.")
            await session.execute(
                text(
                    """
                    UPDATE call SET status = 'accepted', responder_id = :me, team_id = :team
                    WHERE id = :id
                    """
                ),
                {"id": offer.call_id, "me": person.person_id, "team": offer.team_id},
            )
    except IntegrityError as exc:
        raise ResponderBusy("You are already responding to another call.") from exc
    await dispatch.publish_offer(session, offer_id, EventType.offer_closed)
    await dispatch.withdraw_open_offers(session, offer.call_id)
    full = await dispatch.publish_call(session, offer.call_id)
    await _release_offers_only_i_could_take(session, settings, person)
    return call_view.redact(full, Viewer.responder)


async def _release_offers_only_i_could_take(
    session: AsyncSession, settings: Settings, person: PersonPrincipal
) -> None:
    """The responder is busy now: offers of their teams to other calls that
    nobody else of the team can take are withdrawn, and those calls move on.

    This transaction already holds its own call's lock, so another call is
    only locked if it is free (SKIP LOCKED): whoever holds it (another accept,
    a decline, the sweeper, a cancel) is settling it anyway, and an offer left
    open here still lapses at its deadline. Waiting instead deadlocks when two
    members who are the last possible takers accept two such offers at once."""
    others = (
        await session.execute(
            text(
                """
                SELECT id, call_id FROM offer
                WHERE team_id = ANY(CAST(:teams AS uuid[])) AND status = 'open'
                ORDER BY call_id
                """
            ),
            {"teams": list(person.team_ids)},
        )
    ).all()
    for other in others:
        if await dispatch.team_has_takers(session, settings, other.id):
            continue
        if await dispatch.try_lock_call(session, other.call_id) is None:
            continue
        if await dispatch.close_offer(session, other.id, OfferStatus.withdrawn):
            await dispatch.move_on(session, settings, other.call_id, other.id)


async def decline(
    session: AsyncSession,
    settings: Settings,
    person: PersonPrincipal,
    offer_id: uuid.UUID,
    reason: str | None,
) -> dict[str, Any]:
    offer = await _offer_of_mine(session, person, offer_id)
    await dispatch.lock_call(session, offer.call_id)
    state = (
        await session.execute(
            text("SELECT status, expires_at > now() AS live FROM offer WHERE id = :id"),
            {"id": offer_id},
        )
    ).one()
    if state.status != OfferStatus.open.value or not state.live:
        raise OfferClosed("This offer is no longer open.")
    await session.execute(
        text(
            """
            INSERT INTO offer_decline (offer_id, person_id, reason) VALUES (:o, :p, :r)
            ON CONFLICT DO NOTHING
            """
        ),
        {"o": offer_id, "p": person.person_id, "r": reason},
    )
    # When every on-duty member of the team has declined, the call moves on
    # at once rather than waiting for the deadline.
    if not await dispatch.team_has_takers(session, settings, offer_id):
        await dispatch.close_offer(session, offer_id, OfferStatus.declined)
        await dispatch.move_on(session, settings, offer.call_id, offer_id)
    return await dispatch.offer_view(session, offer_id)


# ---- dispatchers ------------------------------------------------------------------------


async def assign(
    session: AsyncSession,
    settings: Settings,
    person: PersonPrincipal,
    call_id: uuid.UUID,
    team_id: uuid.UUID,
) -> dict[str, Any]:
    viewer = await call_view.require_viewer(session, person, call_id)
    if viewer is not Viewer.staff:
        raise NotFound("No such call.")
    team = (
        await session.execute(
            text(
                """
                SELECT t.id, ST_Distance(t.base, c.location, false) AS base_distance,
                       ARRAY[g.id, b.id, cm.id, s.id] AS areas,
                       (SELECT min(ST_Distance(d.location, c.location, false))
                          FROM team_member m JOIN duty d ON d.person_id = m.person_id
                         WHERE m.team_id = t.id AND d.on_duty = true) AS member_distance
                FROM team t
                JOIN area g ON g.id = t.grid_id JOIN area b ON b.id = g.parent_id
                JOIN area cm ON cm.id = b.parent_id JOIN area s ON s.id = cm.parent_id
                JOIN call c ON c.id = :call
                WHERE t.id = :team
                """
            ),
            {"team": team_id, "call": call_id},
        )
    ).first()
    in_scope = team is not None and (
        person.is_admin
        or (person.dispatcher_area is not None and person.dispatcher_area.id in team.areas)
    )
    if team is None or not in_scope:
        raise Unprocessable("No team with this id in your area.", code="unknown_team")
    call = await dispatch.lock_call(session, call_id)
    check_transition(call.status, CallStatus.offered)
    await dispatch.withdraw_open_offers(session, call_id)
    distance = team.member_distance if team.member_distance is not None else team.base_distance
    await dispatch.create_offer(
        session,
        settings,
        call_id,
        team_id,
        float(distance),
        call.rounds + 1,
        assigned_by=person.person_id,
    )
    await session.execute(
        text(
            "UPDATE call SET status = 'offered', team_id = :team, rounds = rounds + 1 "
            "WHERE id = :id"
        ),
        {"id": call_id, "team": team_id},
    )
    full = await dispatch.publish_call(session, call_id)
    return call_view.redact(full, Viewer.staff)
