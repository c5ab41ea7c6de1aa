"""The one-tap call: opening it, reading it, and its life after acceptance.
Statuses change only through `app.calls.state` (the state machine)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import service as areas
from app.calls import state
from app.calls import visibility as call_view
from app.calls.state import InvalidTransition, LockedCall
from app.calls.visibility import Viewer
from app.core import cursors, locks
from app.core.config import Settings
from app.core.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unprocessable
from app.core.locks import Lock
from app.dispatch import policy as dispatch
from app.identity.auth import PersonPrincipal
from app.models.call import (
    CallCancel,
    CallCreate,
    CallProgress,
    CallStatus,
    EventType,
    RatingCreate,
    RatingPublic,
)
from app.offers import lifecycle

S = CallStatus


# ---- opening a call ------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    status_code: int
    body: dict[str, Any]


def request_hash(body: CallCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _replay(
    session: AsyncSession, person_id: uuid.UUID, key: str, digest: str
) -> Opened | None:
    row = (
        await session.execute(
            text(
                """
                SELECT request_hash, response_status, response_body FROM idempotency_key
                WHERE person_id = :p AND key = :k AND expires_at > now()
                """
            ),
            {"p": person_id, "k": key},
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != digest:
        raise Unprocessable(
            "This Idempotency-Key was used with another request body.",
            code="idempotency_key_reused",
        )
    return Opened(row.response_status, row.response_body)


async def open_call(
    session: AsyncSession,
    settings: Settings,
    person: PersonPrincipal,
    body: CallCreate,
    idempotency_key: str | None,
) -> Opened:
    digest = request_hash(body)
    if idempotency_key is not None:
        # Held until commit: a second request with the key while this one runs
        # is told so at once rather than waiting.
        key = f"{person.person_id}:{idempotency_key}"
        if not await locks.try_xact_lock(session, Lock.idempotency_key, key):
            raise Conflict(
                "A request with this Idempotency-Key is still in flight.",
                code="idempotency_key_in_flight",
            )
        replay = await _replay(session, person.person_id, idempotency_key, digest)
        if replay is not None:
            return replay

    # One resident's calls are opened one at a time: the open-call limit and
    # the double-tap check below cannot both pass for two requests at once.
    await locks.xact_lock(session, Lock.resident_calls, str(person.person_id))
    duplicate = None
    if settings.double_tap_seconds > 0 and settings.double_tap_meters > 0:
        duplicate = (
            await session.execute(
                text(
                    """
                    SELECT id FROM call
                    WHERE resident_id = :p
                      AND created_at > clock_timestamp() - CAST(:window AS interval)
                      AND status NOT IN ('cancelled', 'resolved')
                      AND ST_DWithin(
                          location,
                          ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                          :meters, false)
                    ORDER BY created_at DESC LIMIT 1
                    """
                ),
                {
                    "p": person.person_id,
                    "window": timedelta(seconds=settings.double_tap_seconds),
                    "lat": body.location.lat,
                    "lng": body.location.lng,
                    "meters": settings.double_tap_meters,
                },
            )
        ).scalar()
    if duplicate is not None:
        # A double tap: the same call, answered 200 (nothing new was made).
        full = await call_view.snapshot(session, duplicate)
        return Opened(200, call_view.redact(full, Viewer.caller))

    open_calls = (
        await session.execute(
            text(
                """
                SELECT count(*) FROM call WHERE resident_id = :p
                AND status NOT IN ('cancelled', 'resolved')
                """
            ),
            {"p": person.person_id},
        )
    ).scalar_one()
    if open_calls >= settings.max_open_calls_per_resident:
        raise TooManyRequests(
            f"At most {settings.max_open_calls_per_resident} calls may be open at once.",
            retry_after=60,
            code="too_many_open_calls",
        )

    where = await areas.locate_ids(session, body.location.lat, body.location.lng)

    call_id = uuid.uuid4()
    await state.insert(
        session,
        call_id,
        resident=person.person_id,
        category=body.category.value,
        note=body.note,
        lat=body.location.lat,
        lng=body.location.lng,
        accuracy=body.location.accuracy_m,
        grid=where.grid,
        community=where.community,
        street=where.street,
    )
    await state.publish_call(session, call_id)
    call = await state.lock_call(session, call_id)
    assert call is not None  # inserted just above, in this transaction
    full = await dispatch.run_round(session, settings, call)
    answer = Opened(201, call_view.redact(full, Viewer.caller))
    if idempotency_key is not None:
        await session.execute(
            text(
                """
                INSERT INTO idempotency_key (person_id, key, request_hash, response_status,
                                             response_body, expires_at)
                VALUES (:p, :k, :h, :s, CAST(:b AS jsonb), now() + CAST(:ttl AS interval))
                ON CONFLICT (person_id, key) DO UPDATE
                   SET request_hash = excluded.request_hash,
                       response_status = excluded.response_status,
                       response_body = excluded.response_body,
                       created_at = now(), expires_at = excluded.expires_at
                """
            ),
            {
                "p": person.person_id,
                "k": idempotency_key,
                "h": digest,
                "s": answer.status_code,
                "b": json.dumps(answer.body),
                "ttl": timedelta(hours=settings.idempotency_ttl_hours),
            },
        )
    return answer


# ---- reading --------------------------------------------------------------------------


async def read_call(
    session: AsyncSession, person: PersonPrincipal, call_id: uuid.UUID
) -> dict[str, Any]:
    viewer = await call_view.require_viewer(session, person, call_id)
    return call_view.redact(await call_view.snapshot(session, call_id), viewer)


# Who sees which calls (call_view.CALL_RULES), as SQL over `c` (the call);
# the dispatch list keeps only the staff rules.
_VISIBLE = call_view.visible_sql()
_STAFF_VISIBLE = call_view.visible_sql(viewers={Viewer.staff})


async def list_calls(
    session: AsyncSession,
    person: PersonPrincipal,
    *,
    status: CallStatus | None,
    limit: int,
    cursor: str | None,
    staff_only: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    """Calls the person may see, newest first. `staff_only`: only those of
    the dispatcher's area (or all, for an admin)."""
    visible = _STAFF_VISIBLE if staff_only else _VISIBLE
    rows = (
        await session.execute(
            text(
                call_view.SNAPSHOT_SQL
                + f"""
                WHERE {visible}
                  AND (CAST(:status AS varchar) IS NULL OR c.status = :status)
                  AND (CAST(:after_at AS timestamptz) IS NULL
                       OR (c.created_at, c.id)
                          < (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
                ORDER BY c.created_at DESC, c.id DESC
                LIMIT :limit
                """
            ),
            {
                **call_view.NAMED.values(person),
                "status": status.value if status else None,
                **cursors.bounds(cursor),
                "limit": limit + 1,
            },
        )
    ).all()
    page = rows[:limit]
    views: list[dict[str, Any]] = []
    for row in page:
        viewer = call_view.viewer_of(person, call_view.facts_from_row(row))
        if viewer is None:
            continue  # the SQL and viewer_of disagree: show nothing rather than too much
        views.append(call_view.redact(call_view.snapshot_from_row(row), viewer))
    next_cursor = cursors.next_cursor(rows, limit)
    return views, next_cursor


async def list_events(
    session: AsyncSession,
    person: PersonPrincipal,
    call_id: uuid.UUID,
    after: int | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    viewer = await call_view.require_viewer(session, person, call_id)
    # The same filter the live stream applies event by event.
    seen = call_view.event_filter(viewer).sql()
    rows = (
        await session.execute(
            text(
                f"""
                SELECT e.id, e.type, e.call_id, e.at, e.data
                FROM event e LEFT JOIN offer o ON o.id = e.offer_id
                WHERE e.call_id = :call AND e.id > :after AND {seen}
                ORDER BY e.id
                LIMIT :limit
                """  # noqa: S608 - the filter is built from constants, values are bound
            ),
            {
                "call": call_id,
                "after": after or 0,
                **call_view.NAMED.values(person),
                "limit": limit + 1,
            },
        )
    ).all()
    page = rows[:limit]
    out = []
    for row in page:
        data = row.data
        if row.type == EventType.call_updated.value:
            data = call_view.redact(data, viewer)
        out.append(
            {"id": row.id, "type": row.type, "call_id": row.call_id, "at": row.at, "data": data}
        )
    return out, (str(page[-1].id) if len(rows) > limit else None)


# ---- after acceptance -------------------------------------------------------------------


async def _locked(session: AsyncSession, call_id: uuid.UUID) -> LockedCall:
    call = await state.lock_call(session, call_id)
    if call is None:
        raise NotFound("No such call.")
    return call


async def forget_track(session: AsyncSession, call_id: uuid.UUID) -> None:
    """The call has ended: its record of where the responder was goes (the
    `responder.location` events, and the positions inside earlier snapshots).
    Exact positions are kept only while someone needs them."""
    await session.execute(
        text("DELETE FROM event WHERE call_id = :id AND type = 'responder.location'"),
        {"id": call_id},
    )
    await session.execute(
        text(
            """
            UPDATE event SET data = jsonb_set(data, '{responder,location}', 'null'::jsonb)
            WHERE call_id = :id AND type = 'call.updated'
              AND jsonb_typeof(data -> 'responder' -> 'location') = 'object'
            """
        ),
        {"id": call_id},
    )


async def cancel(
    session: AsyncSession, person: PersonPrincipal, call_id: uuid.UUID, body: CallCancel
) -> dict[str, Any]:
    viewer = await call_view.require_viewer(session, person, call_id)
    if viewer not in (Viewer.caller, Viewer.staff):
        raise Forbidden("Only the caller or a dispatcher can cancel a call.", code="not_allowed")
    call = await _locked(session, call_id)
    state.check_transition(call.status, S.cancelled)
    await lifecycle.withdraw_open_offers(session, call_id)
    await state.transition(session, call, S.cancelled, cancel_reason=body.reason)
    await forget_track(session, call_id)
    full = await state.publish_call(session, call_id)
    return call_view.redact(full, viewer)


async def progress(
    session: AsyncSession, person: PersonPrincipal, call_id: uuid.UUID, body: CallProgress
) -> dict[str, Any]:
    viewer = await call_view.require_viewer(session, person, call_id)
    if viewer not in (Viewer.responder, Viewer.staff):
        raise Forbidden(
            "Only the responder or a dispatcher can report progress.", code="not_allowed"
        )
    call = await _locked(session, call_id)
    target = CallStatus(body.status)
    await state.transition(session, call, target)
    if target is S.resolved:
        # A resolved call is a service activity of its responder.
        await session.execute(
            text(
                """
                INSERT INTO activity (id, person_id, team_id, call_id, kind)
                SELECT :aid, responder_id, team_id, id, 'call' FROM call WHERE id = :id
                ON CONFLICT (call_id) DO NOTHING
                """
            ),
            {"aid": uuid.uuid4(), "id": call_id},
        )
        await forget_track(session, call_id)
    full = await state.publish_call(session, call_id)
    return call_view.redact(full, viewer)


async def rate(
    session: AsyncSession, person: PersonPrincipal, call_id: uuid.UUID, body: RatingCreate
) -> RatingPublic:
    viewer = await call_view.require_viewer(session, person, call_id)
    if viewer is not Viewer.caller:
        raise Forbidden("Only the resident who called can rate it.", code="not_the_caller")
    call = await _locked(session, call_id)
    if call.status is not S.resolved:
        raise InvalidTransition("A call can be rated once it is resolved.")
    try:
        async with session.begin_nested():
            row = (
                await session.execute(
                    text(
                        """
                        INSERT INTO rating (call_id, resident_id, responder_id, stars, comment)
                        SELECT id, resident_id, responder_id, :stars, :comment
                        FROM call WHERE id = :id
                        RETURNING created_at
                        """
                    ),
                    {"id": call_id, "stars": body.stars, "comment": body.comment},
                )
            ).one()
    except IntegrityError as exc:
        raise Conflict("This call has been rated already.", code="already_rated") from exc
    return RatingPublic(
        call_id=call_id, stars=body.stars, comment=body.comment, created_at=row.created_at
    )
