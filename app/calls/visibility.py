"""Who may see a call, and what each of them sees.

One full snapshot of a call is built (what the caller sees, responder
position included while the responder is on the way or on site); every
reader gets it through `redact`, by the part they play:

| viewer | location | note | responder | team | responder's position |
|---|---|---|---|---|---|
| caller (the resident) | exact | yes | yes | yes | while en route / on site |
| responder | exact | yes | yes | yes | no |
| staff (dispatcher of the area, admin) | exact | yes | yes | yes | no |
| team (an offer to one of its teams is open) | rounded to ~100 m | no | no | yes | no |
| former responder (`RESPONDER_ACCESS_HOURS` after closing) | rounded | no | yes | yes | no |
| former team (offered once, no offer open now) | rounded | no | no | no | no |

Anyone else is told the call does not exist (404). What a part needs ends
with its task: the responder needs the exact point and the note to help, not
once the call is long over (the sweeper stamps `responder_released_at`); an
offered team needs the call to decide, and once its offer is closed it only
learns that (its offer's events), nothing more of the call.

Who plays which part is written once, in `CALL_RULES`: each condition
there writes itself as SQL (`visible_sql`: list_calls, the dispatch list,
the WebSocket resume) and as Python (`viewer_of`, compiled from the rules:
reading one call, the live stream). The conditions look at columns and
rows only, never at the clock: what time changes, a job writes
(app/calls/retention.py). Which events each part gets is written once, in
`EVENT_FILTERS` (the event log's SQL, the live stream's check).
tests/calls/test_visibility.py holds every form to the same verdicts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import sql
from app.core.errors import NotFound
from app.core.phones import mask_phone
from app.identity.auth import PersonPrincipal
from app.models.call import CallPublic, CallStatus, EventType, OfferStatus

# About 100 m: three decimals of a degree of latitude are 111 m.
ROUND_DECIMALS = 3
ROUNDED_ACCURACY_M = 100.0
SHOWS_RESPONDER_POSITION = (CallStatus.en_route, CallStatus.on_site)


class Viewer(StrEnum):
    caller = "caller"
    responder = "responder"
    staff = "staff"
    team = "team"
    former_responder = "former_responder"
    former_team = "former_team"


# Which events each part in a call receives (the event log, the live stream).
# A former team gets its own offers' events only: it learns that its offer
# closed, and nothing of what the call did since.
EVENT_TYPES_FOR: dict[Viewer, frozenset[str]] = {
    Viewer.caller: frozenset({"call.updated", "responder.location"}),
    Viewer.responder: frozenset({"call.updated"}),
    Viewer.staff: frozenset({"call.updated", "offer.created", "offer.closed"}),
    Viewer.team: frozenset({"call.updated", "offer.created", "offer.closed"}),
    Viewer.former_responder: frozenset({"call.updated"}),
    Viewer.former_team: frozenset({"offer.created", "offer.closed"}),
}


@dataclass(frozen=True)
class CallFacts:
    """What visibility is decided on."""

    id: uuid.UUID
    # None for a call no resident made (a screen without a phone, Open311).
    resident_id: uuid.UUID | None
    responder_id: uuid.UUID | None
    community_id: uuid.UUID
    street_id: uuid.UUID
    offered_team_ids: frozenset[uuid.UUID]  # every team the call was ever offered to
    open_offer_team_ids: frozenset[uuid.UUID]  # the teams with an open offer of it now
    # Set by the sweeper RESPONDER_ACCESS_HOURS after the call closed.
    responder_released_at: datetime | None


@dataclass(frozen=True)
class EventFacts:
    """What an event's visibility is decided on, besides its call."""

    type: str
    offer_id: uuid.UUID | None
    offer_team: uuid.UUID | None  # the team the offer was made to


# ---- the rules: each condition as SQL and as Python -----------------------------------


def _compiled(source: str, name: str) -> Any:
    """`name` as defined by Python `source` written from the rules below."""
    namespace: dict[str, Any] = {"Viewer": Viewer}
    exec(compile(source, f"<{__name__} rules>", "exec"), namespace)  # noqa: S102 - our own text
    return namespace[name]


# An index key: a person value's name and one of its values (`("me", id)`,
# `("teams", team id)`, `("admin", True)`): who a socket's person is, and who
# a rule may hold for in one call (`person_keys`, `call_keys`).
Key = tuple[str, Any]


@dataclass(frozen=True)
class PersonValue:
    """Something of the person that a condition compares a call with. In SQL
    it is a bound parameter, so the text is the same for everyone."""

    name: str
    sql_type: str
    py: str  # the value in Python, an expression over the person `p`
    of: Callable[[PersonPrincipal], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        of = _compiled(f"def of(p):\n    return {self.py}\n", "of")
        object.__setattr__(self, "of", of)

    def keys(self, person: PersonPrincipal) -> frozenset[Key]:
        """The index keys this value gives the person (`person_keys`)."""
        value = self.of(person)
        if isinstance(value, frozenset):
            return frozenset((self.name, item) for item in value)
        if value is None or value is False:
            return frozenset()
        return frozenset({(self.name, value)})


ME = PersonValue("me", "uuid", "p.person_id")
ADMIN = PersonValue("admin", "boolean", "p.is_admin")
AREA = PersonValue(
    "area", "uuid", "(p.dispatcher_area.id if p.dispatcher_area is not None else None)"
)
TEAMS = PersonValue("teams", "uuid[]", "p.team_ids")
PERSON_VALUES = (ME, ADMIN, AREA, TEAMS)


def _bound(value: Any) -> Any:
    return sorted(value) if isinstance(value, frozenset) else value


class ParamStyle(Protocol):
    def ref(self, value: PersonValue) -> str:
        """How the SQL refers to the person's `value`."""
        ...


class Named:
    """SQLAlchemy text(): `:vis_me`, ...; bind `values(person)`."""

    def ref(self, value: PersonValue) -> str:
        return f":vis_{value.name}"

    def values(self, person: PersonPrincipal) -> dict[str, Any]:
        return {f"vis_{value.name}": _bound(value.of(person)) for value in PERSON_VALUES}


@dataclass(frozen=True)
class Positional:
    """asyncpg: the person's values are `$first`, `$first + 1`, ... in the
    order of PERSON_VALUES; pass `values(person)` there. Render all of
    CALL_RULES with it (PostgreSQL must see each of those numbers used)."""

    first: int

    def ref(self, value: PersonValue) -> str:
        return f"${self.first + PERSON_VALUES.index(value)}"

    def values(self, person: PersonPrincipal) -> list[Any]:
        return [_bound(value.of(person)) for value in PERSON_VALUES]


NAMED = Named()


def _param(style: ParamStyle, value: PersonValue) -> str:
    return f"CAST({style.ref(value)} AS {value.sql_type})"


# The conditions: SQL over the call `c`; Python over the person `p` and the
# call's facts `c`.


@dataclass(frozen=True)
class CallIs:
    """The call's `column` is the person's `value` (never when either is unset)."""

    column: str  # a field of CallFacts and a column of `call`
    value: PersonValue

    def sql(self, style: ParamStyle, c: str) -> str:
        return f"{c}.{self.column} = {_param(style, self.value)}"

    def py(self) -> str:
        return f"((mine := {self.value.py}) is not None and c.{self.column} == mine)"

    def keys(self, c: CallFacts) -> frozenset[Key] | None:
        value = getattr(c, self.column)
        return frozenset({(self.value.name, value)}) if value is not None else frozenset()


@dataclass(frozen=True)
class PersonIs:
    """The person's flag `value` is set, whatever the call."""

    value: PersonValue

    def sql(self, style: ParamStyle, c: str) -> str:
        return _param(style, self.value)

    def py(self) -> str:
        return f"bool({self.value.py})"

    def keys(self, c: CallFacts) -> frozenset[Key] | None:
        return frozenset({(self.value.name, True)})


@dataclass(frozen=True)
class OfferedToOneOf:
    """The call was offered (at any time, in any state) to one of the teams `value`."""

    value: PersonValue

    def sql(self, style: ParamStyle, c: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM offer vis_o WHERE vis_o.call_id = {c}.id"  # noqa: S608
            f" AND vis_o.team_id = ANY({_param(style, self.value)}))"
        )

    def py(self) -> str:
        return f"not c.offered_team_ids.isdisjoint({self.value.py})"

    def keys(self, c: CallFacts) -> frozenset[Key] | None:
        return frozenset((self.value.name, team) for team in c.offered_team_ids)


@dataclass(frozen=True)
class OpenOfferToOneOf:
    """An offer of the call to one of the teams `value` is open now."""

    value: PersonValue

    def sql(self, style: ParamStyle, c: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM offer vis_oo WHERE vis_oo.call_id = {c}.id"  # noqa: S608
            f" AND vis_oo.status = '{OfferStatus.open.value}'"
            f" AND vis_oo.team_id = ANY({_param(style, self.value)}))"
        )

    def py(self) -> str:
        return f"not c.open_offer_team_ids.isdisjoint({self.value.py})"

    def keys(self, c: CallFacts) -> frozenset[Key] | None:
        return frozenset((self.value.name, team) for team in c.open_offer_team_ids)


@dataclass(frozen=True)
class Stamped:
    """The call's timestamp `column` is set (`present`) or not. A job writes
    it when the time comes, so the rule itself never reads the clock."""

    column: str  # a field of CallFacts and a column of `call`
    present: bool = True

    def sql(self, style: ParamStyle, c: str) -> str:
        return f"{c}.{self.column} IS {'NOT ' if self.present else ''}NULL"

    def py(self) -> str:
        return f"(c.{self.column} is {'not ' if self.present else ''}None)"

    def keys(self, c: CallFacts) -> frozenset[Key] | None:
        return None  # about the call alone: it narrows no one down


@dataclass(frozen=True)
class NoneOf:
    """None of `condition` holds. Only over EXISTS conditions, which are
    true or false in SQL, never NULL: NOT NULL would not be Python's `not`."""

    condition: OpenOfferToOneOf

    def sql(self, style: ParamStyle, c: str) -> str:
        return f"NOT {self.condition.sql(style, c)}"

    def py(self) -> str:
        return f"(not {self.condition.py()})"

    def keys(self, c: CallFacts) -> frozenset[Key] | None:
        return None  # a "not" grants nothing, so it narrows no one down


@dataclass(frozen=True)
class Both:
    """`first` and `second` hold."""

    first: Condition
    second: Condition

    def sql(self, style: ParamStyle, c: str) -> str:
        return f"({self.first.sql(style, c)} AND {self.second.sql(style, c)})"

    def py(self) -> str:
        return f"({self.first.py()} and {self.second.py()})"

    def keys(self, c: CallFacts) -> frozenset[Key] | None:
        # Whoever both hold for, the first already holds for.
        first = self.first.keys(c)
        return first if first is not None else self.second.keys(c)


Condition = CallIs | PersonIs | OfferedToOneOf | OpenOfferToOneOf | Stamped | NoneOf | Both

RESPONDER = CallIs("responder_id", ME)
RELEASED = "responder_released_at"

# Who sees a call, as which part: the first rule that holds decides the part
# (and so what they see, `redact`), the most entitled first; any rule that
# holds lets them see it. The parts of one kind exclude each other (a
# responder is released or not; a team's offer is open or not), so
# `roles_of` lists what a person is, not what they once were.
CALL_RULES: tuple[tuple[Viewer, Condition], ...] = (
    (Viewer.caller, CallIs("resident_id", ME)),
    (Viewer.responder, Both(RESPONDER, Stamped(RELEASED, present=False))),
    (Viewer.staff, PersonIs(ADMIN)),
    (Viewer.staff, CallIs("community_id", AREA)),
    (Viewer.staff, CallIs("street_id", AREA)),
    (Viewer.team, OpenOfferToOneOf(TEAMS)),
    (Viewer.former_responder, Both(RESPONDER, Stamped(RELEASED))),
    (Viewer.former_team, Both(OfferedToOneOf(TEAMS), NoneOf(OpenOfferToOneOf(TEAMS)))),
)


def _python_of_rules() -> str:
    """`viewer_of` and `roles_of`, written out from CALL_RULES. The live
    stream asks `viewer_of` for every event and socket, so it is one plain
    function of comparisons rather than a walk over the rules."""
    first = ["def viewer_of(p, c):"]
    every = ["def roles_of(p, c):", "    roles = []"]
    for viewer, condition in CALL_RULES:
        first += [f"    if {condition.py()}:", f"        return Viewer.{viewer.name}"]
        every += [f"    if {condition.py()}:", f"        roles.append(Viewer.{viewer.name})"]
    first.append("    return None")
    every.append("    return list(dict.fromkeys(roles))")
    return "\n".join([*first, "", *every]) + "\n"


RULES_PYTHON = _python_of_rules()

# The part the person plays in the call (the first rule that holds), or None.
viewer_of: Callable[[PersonPrincipal, CallFacts], Viewer | None] = _compiled(
    RULES_PYTHON, "viewer_of"
)
# Every part the person plays in the call, the one that counts first.
roles_of: Callable[[PersonPrincipal, CallFacts], list[Viewer]] = _compiled(RULES_PYTHON, "roles_of")


def person_keys(person: PersonPrincipal) -> frozenset[Key]:
    """Who the person is, as index keys (the live hub files sockets by them)."""
    return frozenset().union(*(value.keys(person) for value in PERSON_VALUES))


def call_keys(c: CallFacts) -> frozenset[Key] | None:
    """The keys of everyone some rule may hold for in this call: a person
    whose `person_keys` share none of them plays no part in it (the same
    rules as `viewer_of`, read the other way round). None: a rule holds for
    people no key names, so anyone may."""
    found: set[Key] = set()
    for _, condition in CALL_RULES:
        keys = condition.keys(c)
        if keys is None:
            return None
        found |= keys
    return frozenset(found)


def visible_sql(
    style: ParamStyle = NAMED, *, c: str = "c", viewers: Collection[Viewer] = tuple(Viewer)
) -> str:
    """The SQL condition over the call `c` that holds when the person plays
    one of `viewers` in it: the rules of CALL_RULES for those parts."""
    terms = [condition.sql(style, c) for viewer, condition in CALL_RULES if viewer in viewers]
    return "(" + "\n     OR ".join(terms) + ")"


# ---- which events of a call each part gets ---------------------------------------------

# Which parts get the events of every offer of a call; the others get only
# those of offers to one of their own teams.
SEES_EVERY_OFFER = frozenset({Viewer.staff})


@dataclass(frozen=True)
class EventFilter:
    """Which events of a call one part gets: the types it receives
    (EVENT_TYPES_FOR) and, of an offer's events, all or only those of offers
    to the person's teams (SEES_EVERY_OFFER)."""

    types: frozenset[str]
    every_offer: bool

    def admits(self, person: PersonPrincipal, event: EventFacts) -> bool:
        if event.type not in self.types:
            return False
        return self.every_offer or event.offer_id is None or event.offer_team in TEAMS.of(person)

    def sql(self, style: ParamStyle = NAMED, *, e: str = "e", o: str = "o") -> str:
        """The condition over the event `e` and its offer `o` (a LEFT JOIN on
        `e.offer_id`)."""
        # The types are this module's constants, written out as literals.
        types = ", ".join("'" + kind.replace("'", "''") + "'" for kind in sorted(self.types))
        offers = (
            "TRUE"
            if self.every_offer
            else f"({e}.offer_id IS NULL OR {o}.team_id = ANY({_param(style, TEAMS)}))"
        )
        return f"({e}.type IN ({types}) AND {offers})"


EVENT_FILTERS = {
    viewer: EventFilter(EVENT_TYPES_FOR[viewer], viewer in SEES_EVERY_OFFER) for viewer in Viewer
}


def event_filter(viewer: Viewer) -> EventFilter:
    return EVENT_FILTERS[viewer]


def offer_teams(call: str) -> str:
    """SQL to join after the call aliased `call`: its `offered_team_ids` and
    `open_offer_team_ids` (CallFacts), in one pass over its offers by
    `call_id`. Asked apart (the open ones by `status`), PostgreSQL also
    read the partial index of every open offer for each call: hundreds of
    entries each in a surge (docs/benchmarks.md, "What PostgreSQL spends a
    call of the whole loop on"). No braces: snapshot SQL is `str.format`ted."""
    if not call.isidentifier():
        raise ValueError("a table alias is expected")
    return f"""
    CROSS JOIN LATERAL (
        SELECT coalesce(array_agg(DISTINCT x.team_id), ARRAY[]::uuid[]) AS offered_team_ids,
               coalesce(array_agg(DISTINCT x.team_id)
                          FILTER (WHERE x.status = '{OfferStatus.open.value}'),
                        ARRAY[]::uuid[]) AS open_offer_team_ids
        FROM offer x WHERE x.call_id = {call}.id
    ) AS offer_teams
    """  # noqa: S608 - an alias checked above and constant literals


# The columns `facts_from_row` reads but the call's id, of the call `c`
# joined with `offer_teams("c")` (`app.calls.state` locks the call with them).
FACTS_COLUMNS = """
    c.resident_id, c.responder_id, c.community_id, c.street_id, c.responder_released_at,
    offer_teams.offered_team_ids, offer_teams.open_offer_team_ids
"""
_FACTS = text(
    f"""
    SELECT c.id, {FACTS_COLUMNS}
    FROM call c
    {offer_teams("c")}
    WHERE c.id = :id
    """  # noqa: S608 - a constant of this module
)


async def facts(session: AsyncSession, call_id: uuid.UUID) -> CallFacts | None:
    row = await sql.fetchrow(session, _FACTS, {"id": call_id})
    return facts_from_row(row) if row is not None else None


@dataclass(frozen=True)
class VisibleCall:
    """A call the person may see, with every part they play in it (an admin
    who called plays caller and staff): what they may do is asked of
    `plays`, what they see is decided by `viewer`, the part that counts
    first."""

    id: uuid.UUID
    person: PersonPrincipal
    roles: tuple[Viewer, ...]

    @property
    def viewer(self) -> Viewer:
        return self.roles[0]

    def plays(self, *viewers: Viewer) -> bool:
        return any(viewer in self.roles for viewer in viewers)


async def require_visible(
    session: AsyncSession, person: PersonPrincipal, call_id: uuid.UUID
) -> VisibleCall:
    """The call as this person may see it; 404, as if it did not exist, when
    they play no part in it."""
    return seen_by(person, call_id, await facts(session, call_id))


def seen_by(person: PersonPrincipal, call_id: uuid.UUID, call: CallFacts | None) -> VisibleCall:
    """The call (its facts, None when there is no such call) as this person
    may see it; 404 when they play no part in it."""
    roles = roles_of(person, call) if call is not None else []
    if not roles:
        raise NotFound("No such call.")
    return VisibleCall(call_id, person, tuple(roles))


def snapshot_sql(source: str = "call") -> str:
    """The snapshot's query over `source` as `c`: the `call` table, or rows
    of it a statement is writing (an UPDATE's RETURNING, `app.calls.state`)."""
    return _SNAPSHOT_SQL.format(source=source)


_SNAPSHOT_SQL = f"""
    SELECT c.id, c.status, c.category, c.note, c.escalation_level, c.created_at, c.updated_at,
           c.last_event_id, c.accuracy_m, c.disputed_at IS NOT NULL AS disputed,
           ST_Y(c.location::geometry) AS lat, ST_X(c.location::geometry) AS lng,
           g.id AS grid_id, g.name AS grid_name,
           t.id AS team_id, t.name AS team_name,
           p.id AS responder_id, p.display_name AS responder_name, p.phone AS responder_phone,
           ST_Y(d.location::geometry) AS responder_lat, ST_X(d.location::geometry) AS responder_lng,
           d.accuracy_m AS responder_accuracy,
           c.resident_id, c.screen_id, c.community_id, c.street_id, c.responder_released_at,
           offer_teams.offered_team_ids, offer_teams.open_offer_team_ids
    FROM {{source}} c
    JOIN area g ON g.id = c.grid_id
    LEFT JOIN team t ON t.id = c.team_id
    LEFT JOIN person p ON p.id = c.responder_id
    LEFT JOIN duty d ON d.person_id = c.responder_id AND d.on_duty = true
    {offer_teams("c")}
"""  # noqa: S608 - a constant of this module
SNAPSHOT_SQL = snapshot_sql()
_ONE = text(SNAPSHOT_SQL + " WHERE c.id = :id")


def facts_from_row(row: Any) -> CallFacts:
    """The visibility facts of a row of SNAPSHOT_SQL."""
    return CallFacts(
        id=row.id,
        resident_id=row.resident_id,
        responder_id=row.responder_id,
        community_id=row.community_id,
        street_id=row.street_id,
        offered_team_ids=frozenset(row.offered_team_ids),
        open_offer_team_ids=frozenset(row.open_offer_team_ids),
        responder_released_at=row.responder_released_at,
    )


def snapshot_from_row(row: Any) -> CallPublic:
    """The full view of a call: what its `call.updated` event carries, and
    what each reader gets through `redacted`. The row's values go in as the
    database typed them (UUIDs, datetimes): validated, not parsed again
    from text."""
    responder = None
    if row.responder_id is not None:
        position = None
        if row.status in SHOWS_RESPONDER_POSITION and row.responder_lat is not None:
            position = {
                "lat": row.responder_lat,
                "lng": row.responder_lng,
                "accuracy_m": row.responder_accuracy,
            }
        responder = {
            "id": row.responder_id,
            "display_name": row.responder_name,
            "phone_masked": mask_phone(row.responder_phone),
            "location": position,
        }
    return CallPublic.model_validate(
        {
            "id": row.id,
            "status": row.status,
            "category": row.category,
            "note": row.note,
            "location": {"lat": row.lat, "lng": row.lng, "accuracy_m": row.accuracy_m},
            "grid": {"id": row.grid_id, "name": row.grid_name},
            "team": {"id": row.team_id, "name": row.team_name} if row.team_id else None,
            "responder": responder,
            "escalation_level": row.escalation_level,
            "disputed": row.disputed,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "last_event_id": row.last_event_id,
        }
    )


async def snapshot(session: AsyncSession, call_id: uuid.UUID) -> CallPublic:
    row = (await session.execute(_ONE, {"id": call_id})).one()
    return snapshot_from_row(row)


def rounded(point: dict[str, Any]) -> dict[str, Any]:
    return {
        "lat": round(point["lat"], ROUND_DECIMALS),
        "lng": round(point["lng"], ROUND_DECIMALS),
        "accuracy_m": ROUNDED_ACCURACY_M,
    }


# Who sees the whole snapshot, the responder's position included.
SEES_ALL = Viewer.caller
# Who reads what people wrote: the call's note, a step's progress note.
SHOWS_NOTES = frozenset({Viewer.caller, Viewer.responder, Viewer.staff})
# Who sees the exact point; the others see it rounded (`rounded`).
SHOWS_EXACT_LOCATION = frozenset({Viewer.caller, Viewer.responder, Viewer.staff})
# Who sees who responds (name, masked phone); their position is the caller's alone.
SHOWS_RESPONDER = frozenset(
    {Viewer.caller, Viewer.responder, Viewer.staff, Viewer.former_responder}
)
# Who sees which team took the call.
SHOWS_TEAM = frozenset(set(Viewer) - {Viewer.former_team})


def redact(full: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """What `viewer` may see of a full snapshot, as JSON-ready data (the
    form the event log stores and the live stream sends)."""
    view = dict(full)
    if viewer is SEES_ALL:
        return view
    if view.get("responder") is not None:
        view["responder"] = {**view["responder"], "location": None}
    if viewer not in SHOWS_NOTES:
        view["note"] = None
    if viewer not in SHOWS_EXACT_LOCATION:
        view["location"] = rounded(view["location"])
    if viewer not in SHOWS_RESPONDER:
        view["responder"] = None
    if viewer not in SHOWS_TEAM:
        view["team"] = None
    return view


def redacted(full: CallPublic, viewer: Viewer) -> CallPublic:
    """`redact`, for the typed snapshot (the caller's is the snapshot
    itself: no round trip through JSON on the path of a press)."""
    if viewer is SEES_ALL:
        return full
    return CallPublic.model_validate(redact(full.model_dump(mode="json"), viewer))


def event_view(
    viewer: Viewer,
    *,
    event_id: int,
    event_type: str,
    call_id: uuid.UUID,
    at: Any,
    data: dict[str, Any],
    note: str | None,
) -> dict[str, Any]:
    """An event as `viewer` gets it, the same on the live stream, on resume
    and from GET /calls/{id}/events (which events they get at all is
    `event_filter`'s)."""
    if event_type == EventType.call_updated.value:
        data = redact(data, viewer)
    return {
        "id": event_id,
        "type": event_type,
        "call_id": str(call_id),
        "at": at,
        "data": data,
        "note": note if viewer in SHOWS_NOTES else None,
    }
