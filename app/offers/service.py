"""The volunteer's side: offers to one's teams, accepting, declining.

Accepting is decided by one conditional UPDATE (`status = 'open' AND
expires_at > now()`), under the call's row lock: of two members accepting at
once exactly one wins, and an accept racing the deadline either wins before
it or finds the offer closed, never both. A member already responding to a
call cannot accept another: the partial unique index on
`call(responder_id)` settles even two accepts by one member at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import state
from app.calls import visibility as call_view
from app.calls.visibility import Viewer
from app.core import cursors, locks, sql
from app.core.config import Settings
from app.core.errors import Conflict, NotFound
from app.core.locks import Lock
from app.dispatch import policy as dispatch
from app.duty import availability
from app.duty.service import NotOnDuty
from app.identity.auth import PersonPrincipal
from app.models.call import CallPublic, CallStatus, OfferPublic, OfferStatus
from app.offers import lifecycle


class OfferClosed(Conflict):
    code = "offer_closed"
    title = "Offer closed"


class ResponderBusy(Conflict):
    code = "responder_busy"
    title = "Already responding"


class OfferDeclined(Conflict):
    code = "offer_declined"
    title = "Offer declined"


# Why the person (`:person`) may not take the offer (the row aliased `o`),
# or NULL when they may: the rules below, in the order a refusal names
# them. One expression, asked by the statement that takes the offer (which
# takes it only when this is NULL) and, when that took nothing, by
# `_WHY_NOT`, to tell which refusal it was.
#
# - never a member who declined the offer;
# - never a member already responding to a call (`responder_busy`);
# - for an offer of dispatch's rounds, only a member available now by the
#   rule of app/duty/availability.py, which chose the team and alerted its
#   members: off duty, or with a position too old to have counted, is
#   `not_on_duty`;
# - for an offer a dispatcher assigned, any member of the team: the
#   dispatcher chose the team knowing who is on duty, and may have reached
#   its members by phone.
#
# Asked under the call's lock, so a decline of the same offer comes either
# before, refused here, or after, finding it taken.
_REFUSAL = f"""
    CASE
        WHEN EXISTS (SELECT 1 FROM offer_decline declined
                     WHERE declined.offer_id = o.id AND declined.person_id = :person)
            THEN '{OfferDeclined.code}'
        WHEN {availability.busy(":person")} THEN '{ResponderBusy.code}'
        WHEN o.assigned_by IS NULL
             AND NOT EXISTS (SELECT 1 FROM duty d WHERE d.person_id = :person
                             AND {availability.available_member("d")})
            THEN '{NotOnDuty.code}'
    END
"""  # noqa: S608 - constant fragments, values are bound
_WHY_NOT = text(f"SELECT {_REFUSAL} AS refused FROM offer o WHERE o.id = :offer")  # noqa: S608


def _refused(code: str | None) -> Conflict:
    """The answer to an accept that took nothing, by `_REFUSAL`'s code."""
    if code == OfferDeclined.code:
        return OfferDeclined("You declined this offer; the rest of your team may still take it.")
    if code == ResponderBusy.code:
        return ResponderBusy("You are already responding to another call.")
    if code == NotOnDuty.code:
        return NotOnDuty(
            "Go on duty with a current position (PUT /me/duty, PUT /me/location) to take a call."
        )
    return OfferClosed("This offer has been taken, has expired or was withdrawn.")


async def list_offers(
    session: AsyncSession,
    person: PersonPrincipal,
    status: OfferStatus | None,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[OfferPublic], str | None]:
    """Offers to the person's teams, newest first, a page at a time; a
    paired offer only to the member it was made to."""
    rows = (
        await session.execute(
            text(
                f"""
                SELECT o.id, o.call_id, o.status, o.distance_m, o.expires_at, o.team_id,
                       o.created_at, t.name AS team_name, c.category,
                       ST_Y(c.location::geometry) AS lat, ST_X(c.location::geometry) AS lng
                FROM offer o JOIN team t ON t.id = o.team_id JOIN call c ON c.id = o.call_id
                WHERE {_MINE}
                  AND (CAST(:status AS varchar) IS NULL OR o.status = :status)
                  AND (o.status <> 'open' OR o.expires_at > now())
                  AND (CAST(:after_at AS timestamptz) IS NULL
                       OR (o.created_at, o.id)
                          < (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
                ORDER BY o.created_at DESC, o.id DESC
                LIMIT :limit
                """  # noqa: S608 - a constant fragment, values are bound
            ),
            {
                **_mine(person),
                "status": status.value if status else None,
                **cursors.bounds(cursor),
                "limit": limit + 1,
            },
        )
    ).all()
    page = rows[:limit]
    more = cursors.next_cursor(rows, limit)
    return [lifecycle.offer_from_row(row) for row in page], more


# Whether the offer `o` is one of the person's: made to one of their teams
# (`:teams`), and a paired offer only to the member it was made to (to the
# rest of the team it is not an offer of theirs); binds `:teams` and `:me`
# (`_mine`).
_MINE = "o.team_id = ANY(CAST(:teams AS uuid[])) AND (o.person_id IS NULL OR o.person_id = :me)"


def _mine(person: PersonPrincipal) -> dict[str, Any]:
    """The values `_MINE` binds."""
    return {"teams": list(person.team_ids), "me": person.person_id}


_OFFER = text(f"SELECT o.call_id FROM offer o WHERE o.id = :id AND {_MINE}")  # noqa: S608
# The offer, the person's accept lock (`accept`) and the call's row lock,
# in one round trip. The row lock is taken on the rows the join gives, so
# after the accept lock; the offer's columns never change once it is made.
_ACCEPTING = text(
    f"""
    SELECT o.team_id AS offer_team_id, {state.LOCKED_COLUMNS}
    FROM offer o, LATERAL (SELECT {locks.XACT_LOCK_SQL}) AS locked, call c
    WHERE o.id = :id AND {_MINE} AND c.id = o.call_id
    FOR UPDATE OF c
    """  # noqa: S608 - constant fragments, values are bound
)
# The offer taken, if `_REFUSAL` lets the person take it and it is still
# open and live; its unsent pushes withdrawn, its view read for its event
# and the call's other open offers for the accept to withdraw, in the same
# statement (`lifecycle.closing`).
_TAKE = lifecycle.closing(
    f"""
    UPDATE offer o SET status = 'accepted', accepted_by = :person, closed_at = now()
    WHERE o.id = :offer AND o.status = 'open' AND o.expires_at > now()
      AND ({_REFUSAL}) IS NULL
    RETURNING o.*
    """  # noqa: S608 - constant fragments, values are bound
)


async def _call_of_my_offer(
    session: AsyncSession, person: PersonPrincipal, offer_id: uuid.UUID
) -> uuid.UUID:
    """The call of the offer; 404 when it is not one of the person's."""
    row = await sql.fetchrow(session, _OFFER, {"id": offer_id, **_mine(person)})
    if row is None:
        raise NotFound("No such offer.")
    call_id: uuid.UUID = row.call_id
    return call_id


async def accept(
    session: AsyncSession, settings: Settings, person: PersonPrincipal, offer_id: uuid.UUID
) -> CallPublic:
    # One accept per person at a time, taken with the offer, before any
    # call's lock. Without it, one member accepting two offers at once
    # deadlocks: each transaction holds its own call, one waits on the
    # other's responder index entry and the other wants the first's call to
    # withdraw the offer only this member could take. With it, the second
    # accept finds the member busy (or that offer withdrawn), as if it had
    # come a moment later.
    lock = locks.lock_values(Lock.accept, str(person.person_id))
    offer = await sql.fetchrow(session, _ACCEPTING, {"id": offer_id, **_mine(person), **lock})
    if offer is None:
        raise NotFound("No such offer.")
    call = state.LockedCall.from_row(offer)
    values = {"offer": offer_id, "person": person.person_id, **availability.params(settings)}
    taken = await sql.fetchrow(session, _TAKE, values)
    if taken is None:
        raise _refused((await sql.one(session, _WHY_NOT, values)).refused)
    await lifecycle.announce_closed(session, taken)
    await lifecycle.withdraw(session, taken.other_open_offers)
    try:
        # The move and the snapshot it leaves (after the withdrawals, which
        # it shows) in one statement.
        full = await state.transition(
            session,
            call,
            CallStatus.accepted,
            responder_id=person.person_id,
            team_id=offer.offer_team_id,
        )
    except IntegrityError as exc:
        # Made the responder of another call by a transaction that committed
        # after the checks above (one call in progress per responder, an
        # index of `call`). Neither error keeps changes: the unit of work
        # rolls back the taken offer and the withdrawals too, and the offer
        # stays open for the rest of the team (no savepoint needed, and none
        # sent).
        raise ResponderBusy("You are already responding to another call.") from exc
    await _release_offers_only_i_could_take(session, settings, person)
    return call_view.redacted(full, Viewer.responder)


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
    await release_offers_nobody_can_take(session, settings, person.team_ids, holding_a_call=True)


async def release_offers_nobody_can_take(
    session: AsyncSession,
    settings: Settings,
    team_ids: Iterable[uuid.UUID],
    *,
    holding_a_call: bool,
) -> None:
    """Withdraw the open offers of these teams that no member can take any
    more (their last available member became busy, or was disabled), and
    move those calls on. A path that holds no call's lock yet waits for the
    first call it needs; after that (or when `holding_a_call`) it only takes
    a call's lock if it is free (`state.try_lock_call`): see the module
    docstring of `app.calls.state`."""
    others = await dispatch.offers_without_takers(session, settings, list(team_ids))
    for other in others:
        if holding_a_call:
            call = await state.try_lock_call(session, other.call_id)
            if call is None:
                continue
        else:
            call = await state.lock_call(session, other.call_id)
            holding_a_call = True
            # Whoever held the call may have changed who can take the offer.
            if call is None or await dispatch.team_has_takers(session, settings, other.id):
                continue
        closed = await lifecycle.close_offer(session, other.id, OfferStatus.withdrawn)
        if closed is not None:
            await dispatch.move_on(session, settings, call, closed)


async def decline(
    session: AsyncSession,
    settings: Settings,
    person: PersonPrincipal,
    offer_id: uuid.UUID,
    reason: str | None,
) -> OfferPublic:
    call_id = await _call_of_my_offer(session, person, offer_id)
    call = await state.lock_call(session, call_id)
    if call is None:
        raise NotFound("No such offer.")
    offer_state = (
        await session.execute(
            text("SELECT status, expires_at > now() AS live FROM offer WHERE id = :id"),
            {"id": offer_id},
        )
    ).one()
    if offer_state.status != OfferStatus.open.value or not offer_state.live:
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
        closed = await lifecycle.close_offer(session, offer_id, OfferStatus.declined)
        if closed is not None:
            await dispatch.move_on(session, settings, call, closed)
    return await lifecycle.offer_view(session, offer_id)
