"""An offer's life: made to a team, announced, closed (accepted, declined,
expired, withdrawn). Each step appends its `offer.created` or
`offer.closed` event in the same transaction. The caller holds the call's
row lock (`app.calls.state.lock_call`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import visibility
from app.core import locks, sql
from app.core.config import Settings
from app.events import log as events
from app.models.call import EventType, OfferPublic, OfferStatus
from app.notifications import alerts

if TYPE_CHECKING:
    from app.calls.state import LockedCall

_VIEW_COLUMNS = """
    o.id, o.call_id, o.status, o.distance_m, o.expires_at, o.team_id, t.name AS team_name,
    c.category, ST_Y(c.location::geometry) AS lat, ST_X(c.location::geometry) AS lng
"""
_OFFER_VIEW = text(
    f"""
    SELECT {_VIEW_COLUMNS}
    FROM offer o JOIN team t ON t.id = o.team_id JOIN call c ON c.id = o.call_id
    WHERE o.id = :id
    """  # noqa: S608 - constant fragments, values are bound
)
# A new offer and its `offer.created` with its alerts, in one round trip:
# the event's data is the offer as made, which the maker knows whole (the
# call's category and place, the team's name, the transaction's time).
_CREATE = events.with_offer(
    """
    INSERT INTO offer (id, call_id, team_id, status, round, distance_m, assigned_by,
                       person_id, expires_at)
    VALUES (:offer_id, :call_id, :team_id, 'open', :round, :distance, :assigned_by,
            :person_id, :expires_at)
    """
)


@dataclass(frozen=True)
class Team:
    """A team as an offer names it."""

    id: uuid.UUID
    name: str


def offer_from_row(row: Any) -> OfferPublic:
    return OfferPublic.model_validate(
        {
            "id": str(row.id),
            "call_id": str(row.call_id),
            "team": {"id": str(row.team_id), "name": row.team_name},
            "status": row.status,
            "category": row.category,
            "distance_m": round(float(row.distance_m), 1),
            "expires_at": row.expires_at.isoformat(),
            "approx_location": visibility.rounded({"lat": row.lat, "lng": row.lng}),
        }
    )


async def offer_view(session: AsyncSession, offer_id: uuid.UUID) -> OfferPublic:
    return offer_from_row((await session.execute(_OFFER_VIEW, {"id": offer_id})).one())


async def create_offer(
    session: AsyncSession,
    settings: Settings,
    call: LockedCall,
    team: Team,
    distance_m: float,
    round_no: int,
    *,
    assigned_by: uuid.UUID | None = None,
    person_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """An open offer of the call (locked) to the team, expiring
    OFFER_TIMEOUT_SECONDS from the transaction's time; with `person_id`, to
    that member of it alone (a paired offer: only they are alerted and may
    take it)."""
    offer_id = uuid.uuid4()
    made = SimpleNamespace(
        id=offer_id,
        call_id=call.id,
        status=OfferStatus.open.value,
        distance_m=distance_m,
        expires_at=call.tx_now + timedelta(seconds=settings.offer_timeout_seconds),
        team_id=team.id,
        team_name=team.name,
        category=call.category.value,
        lat=call.lat,
        lng=call.lng,
    )
    await events.append_with(
        session,
        _CREATE,
        {
            "offer_id": offer_id,
            "call_id": call.id,
            "team_id": team.id,
            "round": round_no,
            "distance": distance_m,
            "assigned_by": assigned_by,
            "person_id": person_id,
            "expires_at": made.expires_at,
        },
        EventType.offer_created,
        call.id,
        offer_from_row(made).model_dump(mode="json"),
        offer_id=offer_id,
        settings=settings,
        offer_to=person_id,
    )
    return offer_id


# A call's open offers: its offers read through the call's index, the status
# filtered after (`OFFSET 0` keeps the planner from merging the two). With
# `call_id = :c AND status = 'open'` written together the planner answered
# from the partial index of every open offer of the district, read whole,
# whenever its statistics said open offers were few, which is what they say
# through a surge: ANALYZE waits for a tenth of the table to change.
def open_of_call(call: str) -> str:
    """A query of the open offers' ids of the call `call` (a SQL
    expression), in id order."""
    return f"""
    SELECT open_offer.id
    FROM (SELECT id, status FROM offer WHERE call_id = {call} OFFSET 0) open_offer
    WHERE open_offer.status = 'open' ORDER BY open_offer.id
    """  # noqa: S608 - a SQL expression of the caller's


def offered_teams(call: str) -> str:
    """A query of the teams the call `call` (a SQL expression) was offered
    to so far, each once (a paired offer was made to one member, not to the
    team): the teams a next round skips."""
    return f"SELECT DISTINCT team_id FROM offer WHERE call_id = {call} AND person_id IS NULL"  # noqa: S608


def closing(update: str) -> TextClause:
    """A statement that closes one offer by `update` (an UPDATE of `offer`
    ending `RETURNING *`), withdraws its pushes not yet sent
    (`alerts.withdraw_unsent`), reserves the id of the event that announces
    it, and returns the closed offer's view with that id
    (`reserved_event_id`), whether a dispatcher chose its team (`assigned`),
    the ids of the call's other open offers (`other_open_offers`, in id
    order; read as the statement began, when the one it closes was still
    open) and the teams it was offered to (`offered_teams`): what moving the
    call on asks (`app.dispatch.policy.move_on`), in one round trip. No row
    when `update` closed nothing. The caller holds the call's lock, which
    keeps the call's offers as the statement found them."""
    return text(
        f"""
        WITH closed AS ({update}),
        {alerts.withdraw_unsent("closed")},
        reserved AS MATERIALIZED ({locks.NEXT_EVENT_ID.text})
        SELECT {_VIEW_COLUMNS}, reserved.id AS reserved_event_id,
               o.assigned_by IS NOT NULL AS assigned,
               ARRAY(SELECT other.id FROM ({open_of_call("o.call_id")}) other
                     WHERE other.id <> o.id ORDER BY other.id) AS other_open_offers,
               ARRAY({offered_teams("o.call_id")}) AS offered_teams
        FROM closed o JOIN team t ON t.id = o.team_id JOIN call c ON c.id = o.call_id, reserved
        """  # noqa: S608 - constant fragments, values are bound
    )


_CLOSE = closing(
    "UPDATE offer SET status = :status, closed_at = now() "
    "WHERE id = :id AND status = 'open' RETURNING *"
)


async def announce_closed(session: AsyncSession, closed: Any) -> None:
    """Append `offer.closed` for an offer a `closing` statement closed (its
    row), with its alerts."""
    view = offer_from_row(closed)
    await events.append(
        session,
        EventType.offer_closed,
        view.call_id,
        view.model_dump(mode="json"),
        offer_id=view.id,
        event_id=closed.reserved_event_id,
    )


_OPEN_OF_CALL = text(open_of_call(":c"))


async def open_offers_of(session: AsyncSession, call_id: uuid.UUID) -> list[uuid.UUID]:
    """The ids of the call's open offers, in id order."""
    return [row.id for row in await sql.fetch(session, _OPEN_OF_CALL, {"c": call_id})]


async def close_offer(
    session: AsyncSession, offer_id: uuid.UUID, status: OfferStatus
) -> sql.Row | None:
    """Close an open offer and announce it; the row `closing` gave (what
    `app.dispatch.policy.move_on` needs to know), or None when it was no
    longer open."""
    closed = await sql.fetchrow(session, _CLOSE, {"id": offer_id, "status": status.value})
    if closed is not None:
        await announce_closed(session, closed)
    return closed


async def withdraw_open_offers(session: AsyncSession, call_id: uuid.UUID) -> None:
    """Withdraw the call's open offers."""
    await withdraw(session, await open_offers_of(session, call_id))


async def withdraw(session: AsyncSession, offer_ids: list[uuid.UUID]) -> None:
    """Withdraw these offers (of one call, in id order) where still open."""
    for offer_id in offer_ids:
        await close_offer(session, offer_id, OfferStatus.withdrawn)
