from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.core.cursors import Cursor, PageLimit
from app.http.deps import CurrentUser, SessionDep, SettingsDep
from app.http.prefix import API_PREFIX
from app.models.call import CallPublic, OfferDeclineBody, OfferList, OfferPublic, OfferStatus
from app.offers import service as offers
from app.offers.plain_routes import AcceptRoute

OfferId = Annotated[uuid.UUID, Path(description="the offer's id")]

router = APIRouter(prefix=f"{API_PREFIX}/offers", tags=["offers"])


@router.get("")
async def list_offers(
    user: CurrentUser,
    session: SessionDep,
    status: Annotated[OfferStatus | None, Query(description="only offers in this state")] = None,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> OfferList:
    """Offers made to the caller's teams, newest first (an open offer past its
    deadline is not listed); empty for someone on no team."""
    data, next_cursor = await offers.list_offers(session, user, status, limit=limit, cursor=cursor)
    return OfferList(data=data, next_cursor=next_cursor)


async def accept_offer(
    offer_id: OfferId, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> CallPublic:
    """Take the call: the caller becomes its responder. Already taken, expired
    or withdrawn → 409 `offer_closed`; already responding to an open call →
    409 `responder_busy`."""
    return await offers.accept(session, settings, user, offer_id)


# A plain accept skips the dependency solver (app/offers/plain_routes.py).
router.add_api_route(
    "/{offer_id}/accept", accept_offer, methods=["POST"], route_class_override=AcceptRoute
)


@router.post("/{offer_id}/decline")
async def decline_offer(
    offer_id: OfferId,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    body: OfferDeclineBody | None = None,
) -> OfferPublic:
    """Decline for oneself; when every on-duty member of the team has declined,
    the call moves on to the next team at once."""
    reason = body.reason if body else None
    return await offers.decline(session, settings, user, offer_id, reason)
