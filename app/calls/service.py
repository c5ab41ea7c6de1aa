"""The one-tap call: opening it, reading it, and its life after acceptance.
Statuses change only through `app.calls.state` (the state machine)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import TextClause, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.activities.calls import mark_disputed as dispute_call_activity
from app.activities.calls import resolved as resolved_call_activity
from app.areas import service as areas
from app.calls import idempotency, state
from app.calls import visibility as call_view
from app.calls.idempotency import Opened
from app.calls.state import InvalidTransition, LockedVisibleCall
from app.calls.visibility import Viewer, VisibleCall
from app.core import cursors, locks, sql
from app.core.config import Settings
from app.core.errors import Conflict, Forbidden, TooManyRequests
from app.core.locks import Lock
from app.dispatch import policy as dispatch
from app.identity.auth import PersonPrincipal
from app.models.call import (
    CallCancel,
    CallCreate,
    CallProgress,
    CallPublic,
    CallStatus,
    DisputeCreate,
    EventPublic,
    RatingCreate,
    RatingPublic,
)
from app.models.enums import sql_values
from app.offers import lifecycle

S = CallStatus
# A call that is still open: not in one of the state machine's closed states.
_CLOSED = sql_values(state.CLOSED)


# ---- opening a call ------------------------------------------------------------------


class OriginKind(StrEnum):
    """Who pressed: the column of `call` that names them, whose calls the
    double-tap guard (and, for a resident, the open-call limit) counts."""

    resident = "resident_id"
    screen = "screen_id"
    api_key = "api_key_id"


@dataclass(frozen=True)
class Origin:
    """Where a call comes from (docs/dispatch-platform.md, "Calls from
    screens and other systems"): a resident's own press, a public screen's
    button (with the walk-up caller's person when a phone was left), or
    another system's key. Every door opens calls through `open_call`."""

    kind: OriginKind
    key: uuid.UUID  # the resident, screen or API key
    resident_id: uuid.UUID | None

    @classmethod
    def of_resident(cls, person: PersonPrincipal) -> Origin:
        return cls(OriginKind.resident, person.person_id, person.person_id)

    @classmethod
    def of_screen(cls, screen_id: uuid.UUID, resident_id: uuid.UUID | None) -> Origin:
        return cls(OriginKind.screen, screen_id, resident_id)

    @classmethod
    def of_api_key(cls, key_id: uuid.UUID, resident_id: uuid.UUID | None = None) -> Origin:
        return cls(OriginKind.api_key, key_id, resident_id)

    @property
    def guards_double_tap(self) -> bool:
        """A person, or a screen's passers-by, pressing twice: the first
        call. A system files for many people, who may be metres apart at
        once: each request is a call."""
        return self.kind is not OriginKind.api_key

    @property
    def limits_open_calls(self) -> bool:
        """Only a resident has an open-call limit; a screen serves every
        passer-by and a system many people (each has a rate limit instead)."""
        return self.kind is OriginKind.resident

    def insert_values(self) -> dict[str, uuid.UUID | None]:
        return {
            "resident": self.resident_id,
            "screen": self.key if self.kind is OriginKind.screen else None,
            "api_key": self.key if self.kind is OriginKind.api_key else None,
        }


# What a press checks before it opens a call, in one round trip: a call of
# the same origin opened moments ago metres away (a double tap), how many
# of its calls are open, where the point lies (`app.areas`' one locate),
# whether the caller has paired members (the paired round's query is
# skipped for everyone else), and the transaction's time (a new call's
# `created_at`, which its first event carries). One statement per origin
# column (of OriginKind, never of input).
#
# A check that does not apply (no double-tap guard; no resident to have
# paired members) is left out of the statement, not switched off by a
# value: PostgreSQL plans a prepared statement for its values five times,
# then keeps one generic plan only while that plan costs no more than the
# plans for values did. A check switched off by a value (`CAST(:tap AS
# boolean) AND …`, `person_id = NULL`) made every plan for values cheaper
# than the generic one, so every press was planned anew (about 1.5 ms of
# PostgreSQL's CPU; docs/benchmarks.md, "A plan per press").
_PRESS_CHECKS_SQL = f"""
    SELECT
        {{duplicate}} AS duplicate,
        (SELECT count(*) FROM call WHERE {{who}} = :p AND status NOT IN {_CLOSED})
            AS open_calls,
        here.grid_id, here.grid_name, here.community_id, here.street_id, now() AS tx_now,
        {{paired}} AS paired
    FROM (SELECT 1) AS one LEFT JOIN LATERAL ({areas.LOCATE_SQL}) AS here ON true
    """  # noqa: S608 - constant literals, values are bound
_DUPLICATE_SQL = f"""(SELECT id FROM call
         WHERE {{who}} = :p
           AND created_at > clock_timestamp() - CAST(:window AS interval)
           AND status NOT IN {_CLOSED}
           AND ST_DWithin(location, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                          :meters, false)
         ORDER BY created_at DESC LIMIT 1)"""  # noqa: S608 - constant literals, values are bound
_PRESS_CHECKS = {
    (kind, tap, resident): text(
        _PRESS_CHECKS_SQL.format(
            who=kind.value,
            duplicate=_DUPLICATE_SQL.format(who=kind.value) if tap else "CAST(NULL AS uuid)",
            paired=dispatch.has_paired_members("CAST(:resident AS uuid)") if resident else "false",
        )
    )
    for kind in OriginKind
    for tap in (False, True)
    for resident in (False, True)
}


def press_checks(kind: OriginKind, *, tap: bool, resident: bool) -> TextClause:
    """The press's checks for an origin of `kind`: with the double-tap
    guard when `tap`, with the paired-members check when the origin names a
    `resident`."""
    return _PRESS_CHECKS[kind, tap, resident]


async def open_call(
    session: AsyncSession,
    settings: Settings,
    origin: Origin,
    body: CallCreate,
    idempotency_key: str | None = None,
) -> Opened:
    """Open a call at `body.location` and offer it at once; or, for a double
    tap (the same origin, moments ago, metres away), the call already open.
    `Opened.created` tells which. The one path of every door: a resident's
    press, a screen's button, an Open311 request. An Idempotency-Key is a
    resident's (keyed by the person)."""
    digest = ""  # the body's hash, which only a keyed press needs
    if idempotency_key is not None:
        digest = idempotency.request_hash(body)
        if origin.kind is not OriginKind.resident:
            raise ValueError("an Idempotency-Key belongs to a resident's press")
        await idempotency.claim(session, origin.key, idempotency_key)
        replay = await idempotency.replay(session, origin.key, idempotency_key, digest)
        if replay is not None:
            return replay

    # One origin's calls are opened one at a time: the open-call limit and
    # the double-tap check below cannot both pass for two requests at once.
    # (The lock is its own statement: a statement's snapshot is taken when
    # it starts, so checks in the same statement could miss a call that
    # was committed while it waited.) A resident's key is the person id as
    # before; a screen's and a key's are prefixed, never equal to one.
    lock_key = str(origin.key)
    if origin.kind is not OriginKind.resident:
        lock_key = f"{origin.kind.name}:{lock_key}"
    await locks.xact_lock(session, Lock.resident_calls, lock_key)
    double_tap = (
        origin.guards_double_tap
        and settings.double_tap_seconds > 0
        and settings.double_tap_meters > 0
    )
    checked = await sql.one(
        session,
        press_checks(origin.kind, tap=double_tap, resident=origin.resident_id is not None),
        {
            "p": origin.key,
            "resident": origin.resident_id,
            "window": timedelta(seconds=settings.double_tap_seconds),
            "lat": body.location.lat,
            "lng": body.location.lng,
            "meters": float(settings.double_tap_meters),
        },
    )
    if checked.duplicate is not None:
        # A double tap: the same call (nothing new was made).
        full = await call_view.snapshot(session, checked.duplicate)
        return Opened(call_view.redacted(full, Viewer.caller), created=False)
    if origin.limits_open_calls and checked.open_calls >= settings.max_open_calls_per_resident:
        raise TooManyRequests(
            f"At most {settings.max_open_calls_per_resident} calls may be open at once.",
            retry_after=60,
            code="too_many_open_calls",
        )
    if checked.grid_id is None:
        raise areas.not_covered()

    call_id = uuid.uuid4()
    call = await state.insert(
        session,
        call_id,
        **origin.insert_values(),
        category=body.category,
        note=body.note,
        lat=body.location.lat,
        lng=body.location.lng,
        accuracy=body.location.accuracy_m,
        grid=checked.grid_id,
        grid_name=checked.grid_name,
        at=checked.tx_now,
        community=checked.community_id,
        street=checked.street_id,
    )
    # A call just made was offered to nobody yet.
    full = await dispatch.run_round(session, settings, call, paired=checked.paired, offered=[])
    opened = Opened(call_view.redacted(full, Viewer.caller), created=True)
    if idempotency_key is not None:
        await idempotency.remember(session, settings, origin.key, idempotency_key, digest, opened)
    return opened


# ---- reading --------------------------------------------------------------------------


async def read_call(session: AsyncSession, call: VisibleCall) -> CallPublic:
    return call_view.redacted(await call_view.snapshot(session, call.id), call.viewer)


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
) -> tuple[list[CallPublic], str | None]:
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
    views: list[CallPublic] = []
    for row in page:
        viewer = call_view.viewer_of(person, call_view.facts_from_row(row))
        if viewer is None:
            continue  # the SQL and viewer_of disagree: show nothing rather than too much
        views.append(call_view.redacted(call_view.snapshot_from_row(row), viewer))
    next_cursor = cursors.next_cursor(rows, limit)
    return views, next_cursor


async def list_events(
    session: AsyncSession, call: VisibleCall, after: int | None, limit: int
) -> tuple[list[EventPublic], str | None]:
    # The same filter the live stream applies event by event.
    seen = call_view.event_filter(call.viewer).sql()
    rows = (
        await session.execute(
            text(
                f"""
                SELECT e.id, e.type, e.call_id, e.at, e.data, e.note
                FROM event e LEFT JOIN offer o ON o.id = e.offer_id
                WHERE e.call_id = :call AND e.id > :after AND {seen}
                ORDER BY e.id
                LIMIT :limit
                """  # noqa: S608 - the filter is built from constants, values are bound
            ),
            {
                "call": call.id,
                "after": after or 0,
                **call_view.NAMED.values(call.person),
                "limit": limit + 1,
            },
        )
    ).all()
    page = rows[:limit]
    out = [
        EventPublic.model_validate(
            call_view.event_view(
                call.viewer,
                event_id=row.id,
                event_type=row.type,
                call_id=row.call_id,
                at=row.at,
                data=row.data,
                note=row.note,
            )
        )
        for row in page
    ]
    return out, (str(page[-1].id) if len(rows) > limit else None)


# ---- after acceptance -------------------------------------------------------------------


# A call's record of where its responder was, erased (`forget_track`): the
# `responder.location` events, and the positions inside earlier snapshots.
_FORGET_TRACK = """
    {p}moves AS (DELETE FROM event WHERE call_id = :id AND type = 'responder.location'),
    {p}seen AS (
        UPDATE event SET data = jsonb_set(data, '{{responder,location}}', 'null'::jsonb)
        WHERE call_id = :id AND type = 'call.updated'
          AND jsonb_typeof(data -> 'responder' -> 'location') = 'object'
    )
"""


def forget_track(call_id: uuid.UUID) -> sql.Write:
    """The call has ended: its record of where the responder was goes.
    Exact positions are kept only while someone needs them."""
    return sql.Write(_FORGET_TRACK, (), {"id": call_id})


async def cancel(session: AsyncSession, visible: LockedVisibleCall, body: CallCancel) -> CallPublic:
    if not visible.plays(Viewer.caller, Viewer.staff):
        raise Forbidden("Only the caller or a dispatcher can cancel a call.", code="not_allowed")
    call = visible.call
    state.check_transition(call.status, S.cancelled)
    await lifecycle.withdraw_open_offers(session, call.id)
    await sql.execute_writes(session, [forget_track(call.id)])
    # The move and its snapshot in one statement, after the withdrawals it
    # shows; the reason stays on its event.
    full = await state.transition(
        session, call, S.cancelled, cancel_reason=body.reason, note=body.reason
    )
    return call_view.redacted(full, visible.viewer)


async def progress(
    session: AsyncSession, visible: LockedVisibleCall, body: CallProgress
) -> CallPublic:
    if not visible.plays(Viewer.responder, Viewer.staff):
        raise Forbidden(
            "Only the responder or a dispatcher can report progress.", code="not_allowed"
        )
    call_id, call = visible.id, visible.call
    target = CallStatus(body.status)
    state.check_transition(call.status, target)
    if target is S.resolved:
        # The responder's activity and the track's erasure: one statement,
        # before the move (the activity reads the responder and team the
        # accept set, which the move leaves as they are).
        await sql.execute_writes(session, [resolved_call_activity(call_id), forget_track(call_id)])
    # The move and its snapshot in one statement; what the responder or
    # dispatcher said of the step stays on its event.
    full = await state.transition(session, call, target, note=body.note)
    return call_view.redacted(full, visible.viewer)


async def rate(
    session: AsyncSession, visible: LockedVisibleCall, body: RatingCreate
) -> RatingPublic:
    if not visible.plays(Viewer.caller):
        raise Forbidden("Only the resident who called can rate it.", code="not_the_caller")
    call_id, call = visible.id, visible.call
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


async def dispute(
    session: AsyncSession, settings: Settings, visible: LockedVisibleCall, body: DisputeCreate
) -> CallPublic:
    """The resident who called says a resolved call was not: within
    DISPUTE_WINDOW_HOURS of the resolution, once, it goes back to the
    community's dispatchers (the escalation alerts of any escalation) and the
    responder's activity for it is marked disputed, in one transaction."""
    if not visible.plays(Viewer.caller):
        raise Forbidden("Only the resident who called can dispute it.", code="not_the_caller")
    call = visible.call
    await state.reopen_disputed(
        session, call, body.reason, timedelta(hours=settings.dispute_window_hours)
    )
    await dispute_call_activity(session, call.id)
    # The reason stays on the dispute's event, as a progress note does.
    full = await state.publish_call(session, call.id, note=body.reason)
    return call_view.redacted(full, visible.viewer)
