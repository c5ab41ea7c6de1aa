"""Who is alerted of what: every event of the log passes through `on_event`,
in the transaction that writes it, and becomes in-app notifications and push
deliveries (rows the push worker sends after commit), written by the event's
own statement (`sql.Write`: no round trip of their own).

The rules (docs/live.md, "Push notifications"):

- `offer.created`: every available member of the offered team (only the
  member a paired offer was made to, `offer.person_id`) (on duty,
  position fresh, not disabled, not responding to a call: the one rule of
  `app.duty.availability`, the same dispatch chose the team by) gets kind
  `offer`, pushed with high priority,
  a time to live equal to the offer's time left and the collapse key
  `call-<call id>`.
- `offer.closed`: those alerted of the offer (but the member who took it)
  get kind `offer_closed`; their deliveries of the offer that have not left
  yet are `withdrawn` (by the statement that closes the offer,
  `withdraw_unsent`), and where it may have arrived a silent data message
  with the same collapse key says the offer is closed.
- `call.updated`: the resident who called gets kind `call_status` whenever
  the status changes (compared with the call's previous `call.updated`
  event); and when the call is escalated (or rises a level), the
  dispatchers of its community (level `community`) or of its community and
  street (level `street`) get kind `escalation` (with its own text when the
  call was resolved before: the caller disputed it).
- `call.updated` of a call from a public screen where the caller left a
  phone: its first `accepted` and its first `resolved` are texted to that
  phone (an `sms_outbox` row; docs/dispatch-platform.md).
- Alerts that no event brings: a full-time member short of the monthly
  activity quota gets kind `quota_reminder` once a month
  (`notify_people`, from app/activities/reminders.py); it names no call.
  When a team falls from active to incomplete (`app.teams.rules.watching`),
  the dispatchers whose area holds the team's grid (its community's and the
  street's) get kind `team_incomplete`, naming the team by id only.

Texts are in the person's locale (zh-CN unless a phone registered as en).
Neither texts nor push payloads carry anything personal: fixed phrases, the
category and ids; the app fetches the rest through the API.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import sql
from app.core.config import Settings
from app.duty import availability
from app.duty.availability import available_member
from app.models.call import CallStatus, EscalationLevel, EventType
from app.models.notification import NotificationKind, SmsKind

DEFAULT_LOCALE = "zh-CN"

# How long a push that is not an offer stays worth delivering.
STATUS_TTL = timedelta(minutes=15)
ESCALATION_TTL = timedelta(hours=1)
# The "offer closed" message: it must still reach a phone that showed the
# offer and was offline since.
CLOSE_TTL = timedelta(hours=1)

_CATEGORY: dict[str, dict[str, str]] = {
    "zh-CN": {
        "urgent": "紧急求助",
        "visit": "上门探访",
        "affairs": "事务代办",
        "mediation": "矛盾调解",
        "hardship": "困难帮扶",
        "safety": "安全隐患",
    },
    "en": {
        "urgent": "Urgent help",
        "visit": "Home visit",
        "affairs": "Errands",
        "mediation": "Mediation",
        "hardship": "Hardship help",
        "safety": "Safety hazard",
    },
}

# (title, body) by locale and key; `{category}` is the category's label.
_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "zh-CN": {
        "offer": ("附近有新的求助", "{category}：请尽快查看并接单。"),
        "offer_closed.accepted": ("求助邀请已结束", "这条求助已由队友接单。"),
        "offer_closed.expired": ("求助邀请已结束", "这条求助的邀请已超时。"),
        "offer_closed.declined": ("求助邀请已结束", "本队成员均已婉拒这条求助。"),
        "offer_closed.withdrawn": ("求助邀请已结束", "这条求助已撤回或已由他人处理。"),
        "status.offered": ("求助进展", "已通知附近的志愿者，请稍候。"),
        "status.accepted": ("求助进展", "志愿者已接单。"),
        "status.en_route": ("求助进展", "志愿者正在赶来。"),
        "status.on_site": ("求助进展", "志愿者已到达。"),
        "status.resolved": ("求助进展", "求助已办结，欢迎评价。"),
        "status.cancelled": ("求助进展", "求助已取消。"),
        "status.escalated": ("求助进展", "已转交社区工作人员处理。"),
        "escalation.community": ("有求助待调度", "{category}：附近暂无志愿者接单，请及时指派。"),
        "escalation.street": ("有求助待调度", "{category}：社区未及时处理，已上报街道。"),
        "team_incomplete": (
            "服务队成员不足",
            "一支服务队已不满足组队要求，暂停接收求助，请补充成员。",
        ),
        "quota_reminder": (
            "本月服务活动提醒",
            "您本月登记的服务活动尚未达到规定次数，请在月底前参加并登记。",
        ),
        "escalation.disputed": ("有求助待调度", "{category}：居民对办结结果有异议，请及时处理。"),
    },
    "en": {
        "offer": ("A new call near you", "{category}: please look and take it."),
        "offer_closed.accepted": ("Call closed", "A teammate has taken this call."),
        "offer_closed.expired": ("Call closed", "This call's offer has lapsed."),
        "offer_closed.declined": ("Call closed", "Everyone on your team declined this call."),
        "offer_closed.withdrawn": ("Call closed", "This call was withdrawn or taken elsewhere."),
        "status.offered": ("Your call", "Volunteers nearby have been alerted."),
        "status.accepted": ("Your call", "A volunteer has taken your call."),
        "status.en_route": ("Your call", "The volunteer is on the way."),
        "status.on_site": ("Your call", "The volunteer has arrived."),
        "status.resolved": ("Your call", "Your call is resolved; you may rate it."),
        "status.cancelled": ("Your call", "Your call was cancelled."),
        "status.escalated": ("Your call", "Your call was passed to community staff."),
        "escalation.community": (
            "A call needs dispatching",
            "{category}: no volunteer took it; please assign a team.",
        ),
        "escalation.street": (
            "A call needs dispatching",
            "{category}: the community did not act; it is now the street's.",
        ),
        "team_incomplete": (
            "A team is short of members",
            "A team no longer meets the team rule and is offered no calls; please complete it.",
        ),
        "quota_reminder": (
            "Monthly service reminder",
            "You have logged fewer service activities this month than the rule asks; "
            "please take part and log them before the month ends.",
        ),
        "escalation.disputed": (
            "A call needs dispatching",
            "{category}: the resident disputes its resolution; please see to it.",
        ),
    },
}


def texts(key: str, category: str, locale: str = DEFAULT_LOCALE) -> tuple[str, str]:
    """The (title, body) of an alert in a locale (zh-CN when unknown)."""
    table = _TEXTS.get(locale, _TEXTS[DEFAULT_LOCALE])
    labels = _CATEGORY.get(locale, _CATEGORY[DEFAULT_LOCALE])
    title, body = table[key]
    return title, body.format(category=labels.get(category, category))


def category_label(category: str, locale: str = DEFAULT_LOCALE) -> str:
    """A call category's name in a locale (Open311's service names too)."""
    return _CATEGORY.get(locale, _CATEGORY[DEFAULT_LOCALE]).get(category, category)


def status_text(status: str, locale: str = DEFAULT_LOCALE) -> str | None:
    """What the caller is told of a status (the body of its `call_status`
    alert), or None for a status nobody is told of (a call being born)."""
    table = _TEXTS.get(locale, _TEXTS[DEFAULT_LOCALE])
    found = table.get(f"status.{status}")
    return found[1] if found is not None else None


def collapse_key(call_id: uuid.UUID) -> str:
    return f"call-{call_id}"


def team_collapse_key(team_id: uuid.UUID) -> str:
    return f"team-{team_id}"


@dataclass(frozen=True)
class Alert:
    kind: NotificationKind
    text_key: str
    category: str
    call_id: uuid.UUID | None
    offer_id: uuid.UUID | None
    expires_at: datetime | None  # None: `ttl` from now
    ttl: timedelta = STATUS_TTL
    team_id: uuid.UUID | None = None  # the team an alert about a team is about
    # The push's collapse key when it is neither the call's nor the team's.
    collapse: str | None = None

    @property
    def collapse_key(self) -> str | None:
        if self.collapse is not None:
            return self.collapse
        if self.call_id is not None:
            return collapse_key(self.call_id)
        return team_collapse_key(self.team_id) if self.team_id is not None else None


async def on_event(
    session: AsyncSession,
    event_type: EventType,
    call_id: uuid.UUID,
    data: dict[str, Any],
    offer_id: uuid.UUID | None,
    *,
    settings: Settings | None = None,
    call: CallBefore | None = None,
    offer_to: uuid.UUID | None = None,
) -> list[sql.Write]:
    """Turn one event into alerts, in the event's transaction: the rows to
    write with the event (a subscriber of every event,
    app/events/subscribers.py). `offer.created` needs the settings (the
    availability rule depends on DUTY_POSITION_MAX_AGE_SECONDS) and, for a
    paired offer, the member it was made to (`offer_to`, which the offer's
    maker must pass: the offer's row is written by the event's own
    statement, which cannot read it); a change of
    a call's status (`call.updated`) the call as it was (`CallBefore`)."""
    kind = EventType(event_type)
    if kind is EventType.offer_created and offer_id is not None:
        if settings is None:
            raise ValueError("offer.created needs the settings to tell who is available")
        return _offer_created(settings, call_id, offer_id, data, offer_to)
    if kind is EventType.offer_closed and offer_id is not None:
        return _offer_closed(call_id, offer_id, data)
    if kind is EventType.call_updated:
        return _call_updated(call_id, data, call)
    return []


# ---- the rules ---------------------------------------------------------------------------

# The team's available members (`app.duty.availability`), as `who` of `_send`;
# of a paired offer, only the member it was made to, `:person`, as the
# offer's maker names them (`offer_to`): the offer's row is written by the
# same statement, which cannot read it.
_FREE_MEMBERS = f"""
    SELECT m.person_id
    FROM team_member m
    JOIN duty d ON d.person_id = m.person_id
    WHERE m.team_id = CAST(:team AS uuid) AND {available_member("d")}
      AND m.person_id = coalesce(CAST(:person AS uuid), m.person_id)
"""  # noqa: S608 - a constant fragment, values are bound


def _offer_created(
    settings: Settings,
    call_id: uuid.UUID,
    offer_id: uuid.UUID,
    data: dict[str, Any],
    offer_to: uuid.UUID | None,
) -> list[sql.Write]:
    # The offer as the event carries it (`OfferPublic`): nothing to read back.
    return _alert_write(
        _FREE_MEMBERS,
        {"team": data["team"]["id"], "person": offer_to, **availability.params(settings)},
        Alert(
            NotificationKind.offer,
            "offer",
            data["category"],
            call_id,
            offer_id,
            expires_at=datetime.fromisoformat(data["expires_at"]),
        ),
    )


# A closed offer's pushes not yet sent are withdrawn by the statement that
# closes it (`withdraw_unsent`, composed by app/offers/lifecycle.py), not by
# the event's: the offer's `offer_closed` alert reads which devices the
# offer may have reached, and must read them after any wait for the push
# worker's lock on a delivery (a statement sees the database as it was when
# it began, however long it then waits). The deliveries are locked in id
# order (the lock is taken above the sort), as the push worker's `record`
# does: the two never deadlock on one offer's deliveries. One the worker
# sent meanwhile is no longer pending when its lock is granted, and is left.
_WITHDRAW_UNSENT = """
    unsent AS MATERIALIZED (
        SELECT pd.id FROM push_delivery pd JOIN notification n ON n.id = pd.notification_id
        WHERE n.offer_id IN (SELECT id FROM {closed}) AND n.kind = 'offer'
          AND pd.status = 'pending'
        ORDER BY pd.id
        FOR UPDATE OF pd
    ), withdrawn AS (
        UPDATE push_delivery pd SET status = 'withdrawn'
        FROM unsent u WHERE pd.id = u.id AND pd.status = 'pending'
    )
"""


def withdraw_unsent(closed: str) -> str:
    """Common table expressions (`unsent`, `withdrawn`) that withdraw the
    pushes not yet sent of the offers whose ids the CTE `closed` returns:
    for the statement that closes them."""
    if not closed.isidentifier():
        raise ValueError("a CTE's name is expected")
    return _WITHDRAW_UNSENT.format(closed=closed)


# Those alerted of the offer but the member who took it (the accept wrote
# `accepted_by` earlier in the transaction), as `who` of `_alert_write`; of
# their devices, only those the offer may have reached: sent, or tried at
# least once (it may be in flight right now). In SQL, not as lists of
# people and tokens: nothing to read first, and a plan that does not
# depend on how many there are.
_OFFER_OTHERS = """
    SELECT n.person_id FROM notification n
    WHERE n.offer_id = CAST(:closed_offer AS uuid) AND n.kind = 'offer'
      AND n.person_id IS DISTINCT FROM (
          SELECT o.accepted_by FROM offer o WHERE o.id = CAST(:closed_offer AS uuid))
"""
_OFFER_REACHED = """
    d.token IN (SELECT pd.device_token FROM push_delivery pd
                JOIN notification n ON n.id = pd.notification_id
                WHERE n.offer_id = CAST(:closed_offer AS uuid) AND n.kind = 'offer'
                  AND n.person_id = d.person_id
                  AND (pd.status = 'sent' OR pd.attempts > 0))
"""


def _offer_closed(call_id: uuid.UUID, offer_id: uuid.UUID, data: dict[str, Any]) -> list[sql.Write]:
    # The offer as the event carries it (`OfferPublic`): how it closed, the
    # call's category. Nothing to read first.
    status = data["status"]
    if f"offer_closed.{status}" not in _TEXTS[DEFAULT_LOCALE]:
        status = "withdrawn"
    return _alert_write(
        _OFFER_OTHERS,
        {"closed_offer": offer_id},
        Alert(
            NotificationKind.offer_closed,
            f"offer_closed.{status}",
            data["category"],
            call_id,
            offer_id,
            expires_at=None,
            ttl=CLOSE_TTL,
        ),
        devices=_OFFER_REACHED,
    )


@dataclass(frozen=True)
class CallBefore:
    """What the alerts of a `call.updated` need besides its data: who called
    (a resident, or a screen's caller), the call's community and street, and
    the status and escalation level of the call's `call.updated` before this
    one (what "the status changed" is compared with). The statement that
    reads the call's snapshot for the event reads these too (`previous_update`,
    `app.calls.state`): no round trip of its own."""

    resident_id: uuid.UUID | None
    screen_id: uuid.UUID | None
    community_id: uuid.UUID
    street_id: uuid.UUID
    previous_status: str | None
    previous_level: str | None

    @classmethod
    def from_row(cls, row: Any) -> CallBefore:
        """From a row with a column of each field's name."""
        return cls(**{field.name: getattr(row, field.name) for field in fields(cls)})


def previous_update(call: str) -> str:
    """A LATERAL join giving `previous_status` and `previous_level`: those of
    the newest `call.updated` of the call `call` (an alias with an `id`), read
    before the new event is written, so the one before it."""
    return f"""
    LEFT JOIN LATERAL (
        SELECT e.data ->> 'status' AS previous_status,
               e.data ->> 'escalation_level' AS previous_level
        FROM event e
        WHERE e.call_id = {call}.id AND e.type = '{EventType.call_updated.value}'
        ORDER BY e.id DESC LIMIT 1
    ) previous ON true
    """  # noqa: S608 - a constant fragment


# The dispatchers of the call's community, and of its street when the call
# went up to the street (`street` null otherwise). Two values, not an
# array: the plan does not depend on how many (see `_ONE`).
_DISPATCHERS = """
    SELECT x.person_id FROM dispatcher x JOIN person p ON p.id = x.person_id
    WHERE x.area_id IN (CAST(:community AS uuid), CAST(:street AS uuid))
      AND p.disabled_at IS NULL
"""


def _call_updated(
    call_id: uuid.UUID, data: dict[str, Any], call: CallBefore | None
) -> list[sql.Write]:
    status = data.get("status")
    level = data.get("escalation_level")
    if status is None or status == CallStatus.searching.value:
        return []  # a call being born: nobody is told yet
    if call is None:
        raise ValueError("call.updated needs the call as it was to tell who is alerted")
    writes: list[sql.Write] = []
    if status != call.previous_status and call.screen_id is not None:
        writes += _text_walk_up_caller(call_id, call.resident_id, status)
    if status != call.previous_status and call.resident_id is not None:
        writes += _alert_write(
            _ONE,
            {"person": call.resident_id},
            Alert(
                NotificationKind.call_status,
                f"status.{status}",
                data["category"],
                call_id,
                None,
                expires_at=None,
            ),
        )
    rose = call.previous_status != CallStatus.escalated.value or call.previous_level != level
    if status == CallStatus.escalated.value and rose:
        street = level == EscalationLevel.street.value
        # A resolved call back at the dispatchers: the caller disputed it.
        disputed = call.previous_status == CallStatus.resolved.value
        key = "escalation.street" if street else "escalation.community"
        writes += _alert_write(
            _DISPATCHERS,
            {"community": call.community_id, "street": call.street_id if street else None},
            Alert(
                NotificationKind.escalation,
                "escalation.disputed" if disputed else key,
                data["category"],
                call_id,
                None,
                expires_at=None,
                ttl=ESCALATION_TTL,
            ),
        )
    return writes


# The statuses a walk-up caller at a screen is texted about, once each.
_TEXTED = {CallStatus.accepted.value: SmsKind.accepted, CallStatus.resolved.value: SmsKind.resolved}
_QUEUE_SMS = """
    {p}sms AS (
        INSERT INTO sms_outbox (id, call_id, kind, status, attempts, next_attempt_at)
        VALUES (gen_random_uuid(), :call, :kind, 'pending', 0, now())
        ON CONFLICT (call_id, kind) DO NOTHING
    )
"""


def _text_walk_up_caller(
    call_id: uuid.UUID, resident_id: uuid.UUID | None, status: str
) -> list[sql.Write]:
    """A call from a screen where the caller left a phone (its resident):
    the acceptance and the resolution go to that phone by SMS. A row of the
    outbox, in the event's transaction; the SMS worker sends it after
    commit (app/notifications/sms_worker.py). Once per call and kind: a
    dispute and a second resolution text nothing more."""
    kind = _TEXTED.get(status)
    if kind is None or resident_id is None:
        return []
    return [sql.Write(_QUEUE_SMS, (), {"call": call_id, "kind": kind.value})]


# The dispatchers whose area holds the team's grid: its community's and the
# street's (a dispatcher's area is one or the other).
_TEAM_DISPATCHERS = """
    SELECT x.person_id FROM team t
    JOIN area g ON g.id = t.grid_id JOIN area b ON b.id = g.parent_id
    JOIN area c ON c.id = b.parent_id
    JOIN dispatcher x ON x.area_id IN (c.id, c.parent_id)
    JOIN person p ON p.id = x.person_id
    WHERE t.id = CAST(:team AS uuid) AND p.disabled_at IS NULL
"""


async def team_incomplete(session: AsyncSession, team_id: uuid.UUID) -> None:
    """A team fell from active to incomplete (`app.teams.rules.watching`
    decides when): its area's dispatchers are told, in that transaction."""
    await _send(
        session,
        _TEAM_DISPATCHERS,
        {"team": team_id},
        Alert(
            NotificationKind.team_incomplete,
            "team_incomplete",
            "",
            None,
            None,
            expires_at=None,
            ttl=ESCALATION_TTL,
            team_id=team_id,
        ),
    )


# ---- writing the alerts ----------------------------------------------------------------

# People named by the caller, as `who` of `_send`.
_LISTED = "SELECT DISTINCT unnest(CAST(:people AS uuid[])) AS person_id"
# One person, as `who` of `_alert_write`: a plain value. PostgreSQL
# estimates `unnest` of an array from the array itself, so a statement with
# `_LISTED` was planned anew on every execution (its plan for the values
# beat the generic one); with a plain value the estimate is the same either
# way and the prepared statement keeps its generic plan (the event's
# statement with the alert: 1.42 -> 0.78 ms of the backend's CPU,
# bench/results/alert-plans/; tests/calls/test_generic_plans.py). Every
# status change of a call alerts its one caller this way.
_ONE = "SELECT CAST(:person AS uuid) AS person_id"

# The people `who` selects (a query with a `person_id` column), a
# notification each in their locale (`_TEXTS`, zh-CN when theirs has no
# texts), and a pending push delivery per device of theirs (those `devices`
# keeps, a condition on `d`): a `sql.Write`, sent in the statement of the event
# that brings the alert, or on its own (`_send`). `clock_timestamp()`, not
# `now()`: alerts written in one transaction still sort in the order they
# were made.
_SEND = """
    {p}who AS ({who}),
    {p}written AS (
        INSERT INTO notification (id, person_id, kind, title, body, call_id, offer_id,
                                  team_id, created_at)
        SELECT gen_random_uuid(), p.id, :kind,
               coalesce(t.title, :default_title), coalesce(t.body, :default_body),
               :call, :offer, :team_about, clock_timestamp()
        FROM (SELECT DISTINCT person_id FROM {p}who) w
        JOIN person p ON p.id = w.person_id
        LEFT JOIN unnest(CAST(:locales AS varchar[]), CAST(:titles AS varchar[]),
                         CAST(:bodies AS varchar[])) AS t(locale, title, body)
               ON t.locale = p.locale
        ORDER BY p.id
        RETURNING id, person_id
    ),
    {p}pushed AS (
        INSERT INTO push_delivery (id, notification_id, device_token, platform, status, attempts,
                                   next_attempt_at, collapse_key, expires_at)
        SELECT gen_random_uuid(), w.id, d.token, d.platform, 'pending', 0, now(), :collapse,
               coalesce(CAST(:expires_at AS timestamptz), now() + CAST(:ttl AS interval))
        FROM {p}written w JOIN device d ON d.person_id = w.person_id
        WHERE {devices}
    )
"""


def _alert_write(
    who: str,
    params: dict[str, Any],
    alert: Alert,
    *,
    devices: str = "true",
) -> list[sql.Write]:
    """One notification per person `who` selects (with `params`), and a
    pending push delivery per device of theirs that `devices` keeps;
    nothing for nobody."""
    if "people" in params and not params["people"]:
        return []
    locales = sorted(_TEXTS)
    written = [texts(alert.text_key, alert.category, locale) for locale in locales]
    default_title, default_body = texts(alert.text_key, alert.category)
    values = {
        **params,
        "kind": alert.kind.value,
        "call": alert.call_id,
        "offer": alert.offer_id,
        "team_about": alert.team_id,
        "locales": locales,
        "titles": [title for title, _ in written],
        "bodies": [body for _, body in written],
        "default_title": default_title,
        "default_body": default_body,
        "collapse": alert.collapse_key,
        "expires_at": alert.expires_at,
        "ttl": alert.ttl,
    }
    return [sql.Write(_SEND, send_fills(who, devices), values)]


def send_fills(who: str, devices: str = "true") -> tuple[tuple[str, str], ...]:
    """`_SEND`'s fills: who is alerted, which of their devices are pushed
    (the floor, bench/floor.py, composes the same statement)."""
    return (("who", who), ("devices", devices))


async def _send(
    session: AsyncSession,
    who: str,
    params: dict[str, Any],
    alert: Alert,
) -> None:
    """`_alert_write`, on its own: one round trip."""
    await sql.execute_writes(session, _alert_write(who, params, alert))


async def notify_people(session: AsyncSession, people: list[uuid.UUID], alert: Alert) -> None:
    """An alert that no event of a call brings, to these people, in the
    caller's transaction."""
    await _send(session, _LISTED, {"people": people}, alert)
