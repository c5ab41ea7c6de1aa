"""The accept, `POST /api/v1/offers/{offer_id}/accept`, answered without
the dependency solver (app/http/plain_route.py); its declaration is in
app/offers/routes.py."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from starlette.requests import Request

from app.http import plain_route
from app.http.plain_route import NOT_PLAIN, Endpoint, PlainRoute


class AcceptRoute(PlainRoute):
    """A plain accept: the offer's id and a bearer token (the route reads no
    body, as FastAPI's handler does not)."""

    passes = frozenset({"offer_id", "user", "session", "settings"})

    async def plain(
        self, request: Request, token: str, endpoint: Endpoint, response: Response
    ) -> Any:
        offer_id = plain_route.path_uuid(request, "offer_id")
        if offer_id is None:
            return NOT_PLAIN
        async with plain_route.person(request, token) as asking:
            return await endpoint(
                offer_id=offer_id,
                user=asking.user,
                session=asking.session,
                settings=asking.settings,
            )
