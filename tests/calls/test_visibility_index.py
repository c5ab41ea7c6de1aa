"""The live hub finds an event's readers by key (`person_keys`,
`call_keys`), read off the same rules as `viewer_of`. Over every person of a
small cast and every shape of call: whoever plays a part in a call shares a
key with it (nobody who may see an event is skipped), and a person who plays
none usually shares none (the index narrows)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

from app.calls.visibility import CallFacts, call_keys, person_keys, roles_of
from app.identity.auth import PersonPrincipal
from app.models.auth import DispatcherArea, TeamMembership
from app.models.enums import AreaLevel, MemberKind

P1, P2, P3 = (uuid.UUID(int=n) for n in (1, 2, 3))
T1, T2 = (uuid.UUID(int=n) for n in (11, 12))
C1, C2, S1, S2 = (uuid.UUID(int=n) for n in (21, 22, 31, 32))


def _person(
    who: uuid.UUID,
    *,
    admin: bool = False,
    teams: tuple[uuid.UUID, ...] = (),
    area: uuid.UUID | None = None,
) -> PersonPrincipal:
    level = AreaLevel.street if area in (S1, S2) else AreaLevel.community
    return PersonPrincipal(
        person_id=who,
        session_id=uuid.uuid4(),
        display_name="x",
        phone="+8610000000000",
        is_admin=admin,
        teams=tuple(TeamMembership(id=t, name="t", kind=MemberKind.part_time) for t in teams),
        dispatcher_area=DispatcherArea(id=area, name="a", level=level) if area else None,
    )


CAST = [
    _person(P1),
    _person(P2),
    _person(P3, admin=True),
    _person(P2, teams=(T1,)),
    _person(P3, teams=(T1, T2)),
    _person(P1, area=C1),
    _person(P2, area=S1),
    _person(P3, area=C2),
]


def _calls() -> list[CallFacts]:
    shapes = itertools.product(
        (P1, P2),  # resident
        (None, P2, P3),  # responder
        (C1, C2),  # community
        (S1, S2),  # street
        (frozenset(), frozenset({T1}), frozenset({T1, T2})),  # offered
        (frozenset(), frozenset({T1}), frozenset({T2})),  # open now
        (None, datetime(2026, 1, 1, tzinfo=UTC)),  # responder released
    )
    return [
        CallFacts(
            id=uuid.uuid4(),
            resident_id=resident,
            responder_id=responder,
            community_id=community,
            street_id=street,
            offered_team_ids=offered | open_now,
            open_offer_team_ids=open_now,
            responder_released_at=released,
        )
        for resident, responder, community, street, offered, open_now, released in shapes
    ]


def test_whoever_plays_a_part_shares_a_key_with_the_call() -> None:
    calls = _calls()
    narrowed = 0
    for person, call in itertools.product(CAST, calls):
        keys = call_keys(call)
        assert keys is not None, "every rule names who it may hold for"
        shares = not keys.isdisjoint(person_keys(person))
        if roles_of(person, call):
            assert shares, (person, call)
        elif not shares:
            narrowed += 1
    assert narrowed > 500, "pairs without a part are never looked at"
    stranger_call = next(
        c
        for c in calls
        if c.resident_id == P2
        and c.responder_id is None
        and (c.community_id, c.street_id) == (C2, S2)
        and not c.offered_team_ids
    )
    keys = call_keys(stranger_call)
    assert keys is not None
    assert keys.isdisjoint(person_keys(CAST[0])), "a plain resident of another call"
