"""Registering public screens, revoking their keys, and the call button.

A screen's key is kept as a SHA-256 digest (as API keys are) and looked up
in the database on every press, in the press's own transaction: nothing
caches it, so a revoked key stops at once in every process. A press goes
through `app.calls.service.open_call` with the screen as its origin
(docs/dispatch-platform.md, "Calls from screens and other systems")."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.areas import tree
from app.calls import service as calls
from app.calls.idempotency import Opened
from app.core.config import Settings
from app.core.errors import Forbidden, NotFound, Unauthorized, Unprocessable
from app.identity import ratelimit, tokens
from app.identity.auth import PersonPrincipal
from app.identity.enrolment import person_for_phone
from app.models.call import ACTIVE_RESPONSE, CallCreate, CallStatus
from app.models.enums import sql_values
from app.models.geo import Point
from app.models.screen import (
    ScreenCallCreate,
    ScreenCallProgress,
    ScreenCreate,
    ScreenCreated,
)

KEY_PREFIX = "hs_"
# The name a walk-up caller's person gets when their phone is new: they
# may change nothing of it, and it names no one.
WALK_UP_NAME = "服务屏来电居民"


class InvalidScreenKey(Unauthorized):
    code = "invalid_screen_key"
    title = "Invalid screen key"


async def create(
    session: AsyncSession, actor: PersonPrincipal, body: ScreenCreate
) -> ScreenCreated:
    """A new screen and its key (shown once). Its location must lie in its
    area; a dispatcher registers screens only in its own area (the area
    itself or one inside it)."""
    point = {"lat": body.location.lat, "lng": body.location.lng}
    located = (await areas.locate_ids(session, body.location.lat, body.location.lng)).chain
    chain = located.of(body.area_id)
    if chain is None:
        raise Unprocessable(
            "The screen's location does not lie in its area.", code="location_outside_area"
        )
    if not actor.is_admin and (
        actor.dispatcher_area is None or not chain.within(actor.dispatcher_area.id)
    ):
        raise Forbidden("Screens can be placed only within your area.", code="outside_your_area")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    screen_id = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO screen (id, name, area_id, location, prefix, key_hash, created_by)
            VALUES (:id, :name, :area, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                    :prefix, :hash, :actor)
            """
        ),
        {
            "id": screen_id,
            "name": body.name,
            "area": body.area_id,
            **point,
            "prefix": key[:10],
            "hash": tokens.digest(key),
            "actor": actor.person_id,
        },
    )
    return ScreenCreated(id=screen_id, key=key)


# A dispatcher's screens: those whose area is its own or lies inside it.
_REVOKE = text(
    f"""
    WITH inside AS ({tree.inside(":mine")})
    UPDATE screen SET revoked_at = now()
    WHERE id = :id AND revoked_at IS NULL
      AND (CAST(:admin AS boolean) OR area_id IN (SELECT id FROM inside))
    RETURNING id
    """  # noqa: S608 - a fragment of app.areas.tree, values are bound
)


async def revoke(session: AsyncSession, actor: PersonPrincipal, screen_id: uuid.UUID) -> None:
    """Revoke a screen's key; its next press is refused. A screen outside a
    dispatcher's area, or revoked already → 404."""
    mine = actor.dispatcher_area.id if actor.dispatcher_area is not None else None
    row = (
        await session.execute(_REVOKE, {"id": screen_id, "mine": mine, "admin": actor.is_admin})
    ).first()
    if row is None:
        raise NotFound("No live screen has this id in your area.")


@dataclass(frozen=True)
class ScreenAt:
    id: uuid.UUID
    location: Point


_AUTHENTICATE = text(
    """
    SELECT id, ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lng
    FROM screen WHERE id = :id AND key_hash = :hash AND revoked_at IS NULL
    """
)


async def authenticate(session: AsyncSession, screen_id: uuid.UUID, key: str | None) -> ScreenAt:
    """The screen, if `key` is its live key; else 401 `invalid_screen_key`
    (the same for a wrong key, a revoked one and an unknown screen)."""
    if not key:
        raise InvalidScreenKey("This needs the screen's key in X-Screen-Key.")
    row = (
        await session.execute(_AUTHENTICATE, {"id": screen_id, "hash": tokens.digest(key)})
    ).first()
    if row is None:
        raise InvalidScreenKey("The screen key is not valid.")
    return ScreenAt(row.id, Point(lat=row.lat, lng=row.lng))


RATE_WINDOW = timedelta(hours=1)


async def press(
    session: AsyncSession,
    settings: Settings,
    screen_id: uuid.UUID,
    key: str | None,
    body: ScreenCallCreate,
) -> Opened:
    """The screen's call button: a call located at the screen, opened and
    dispatched as any press (`open_call`, with the screen as origin). A
    phone left makes its person (found or created as enrolment does) the
    call's resident: they get its acceptance and resolution by SMS, and
    can log in later to see it."""
    screen = await authenticate(session, screen_id, key)
    await ratelimit.hit(
        session,
        f"screen-calls:{screen.id}",
        settings.screen_calls_per_hour,
        RATE_WINDOW,
        what="calls from this screen",
    )
    resident: uuid.UUID | None = None
    if body.phone is not None:
        resident, _, _ = await person_for_phone(session, settings, body.phone, WALK_UP_NAME)
    call = CallCreate(location=screen.location, category=body.category, note=body.note)
    origin = calls.Origin.of_screen(screen.id, resident)
    return await calls.open_call(session, settings, origin, call)


# A call of this screen, pressed within the window; the team's name only
# once a member took it (a team merely offered the call may decline it).
_TAKEN = sql_values((*ACTIVE_RESPONSE, CallStatus.resolved))
_FOLLOW = text(
    f"""
    SELECT c.status, CASE WHEN c.status IN {_TAKEN} THEN t.name END AS team
    FROM call c LEFT JOIN team t ON t.id = c.team_id
    WHERE c.id = :call AND c.screen_id = :screen
      AND c.created_at > now() - make_interval(secs => :window)
    """  # noqa: S608 - literals of the CallStatus enum, values are bound
)


async def follow(
    session: AsyncSession,
    settings: Settings,
    screen_id: uuid.UUID,
    key: str | None,
    call_id: uuid.UUID,
) -> ScreenCallProgress:
    """How a call pressed at this screen stands, for the screen to show the
    walk-up caller: its status and, once a member took it, the team's name.
    Only the screen's own calls, and only for SCREEN_CALL_FOLLOW_SECONDS
    after the press; any other call → 404."""
    screen = await authenticate(session, screen_id, key)
    row = (
        await session.execute(
            _FOLLOW,
            {"call": call_id, "screen": screen.id, "window": settings.screen_call_follow_seconds},
        )
    ).first()
    if row is None:
        raise NotFound("No call pressed at this screen lately has this id.")
    return ScreenCallProgress(status=row.status, team=row.team)
