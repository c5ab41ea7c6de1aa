"""Who may see a call, and which of its events: every path that decides it
must give the same answer, for every principal of the authorization matrix
(and a street-level dispatcher, for the street clause).

The paths: the Python rule (`viewer_of`, used by GET /calls/{id}, the live
stream and redaction), the SQL of `list_calls` (GET /calls, GET
/dispatch/calls), the SQL of the WebSocket `resume`, and for events GET
/calls/{id}/events against the live stream. Each is run for real on the
same rows and checked against the others and against the tables below, so
a bug they share is caught too.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.calls import service as calls_service
from app.calls import visibility as call_view
from app.core.config import Settings
from app.events import hub
from app.identity import auth
from app.identity.auth import PersonPrincipal
from app.offers import lifecycle
from tests.authz_matrix import PRINCIPALS
from tests.principals import Cast, bearer, make_cast, make_person, token_for

STREET_DISPATCHER = "dispatcher_s"
EVERYONE = (*PRINCIPALS, STREET_DISPATCHER)
NOT_PEOPLE = {"anonymous": 401, "api_key": 403}

# The calls. A1o: resident A's, community 1, offered to team X. A1a: resident
# A's, answered by volunteer X. B2: resident B's, community 2, offered to team
# X (expired), then to team Y. B1a: resident B's, community 1, answered by
# volunteer Y. B3: resident B's, community 3 (no dispatcher of the matrix).
# BS2: resident B's, in another street. AdC2: the admin's own, community 2.
# Xown: volunteer X's own call, offered to team X. A1c: resident A's,
# resolved by volunteer X an hour ago. A1r: resident A's, resolved by
# volunteer X long enough ago that the sweeper released the responder.
CALLS = ("A1o", "A1a", "B2", "B1a", "B3", "BS2", "AdC2", "Xown", "A1c", "A1r")

# Every part each principal plays in each call, the one that counts first
# (C caller, R responder, S staff, T team with an open offer, r former
# responder, t former team; "." none).
ROLES = """
                A1o  A1a  B2   B1a  B3   BS2  AdC2 Xown A1c  A1r
anonymous       .    .    .    .    .    .    .    .    .    .
resident_a      C    C    .    .    .    .    .    .    C    C
resident_b      .    .    C    C    C    C    .    .    .    .
volunteer_x     T    Rt   t    .    .    .    .    CT   Rt   rt
volunteer_y     .    .    T    Rt   .    .    .    .    .    .
dispatcher_c1   S    S    .    S    .    .    .    S    S    S
dispatcher_c2   .    .    S    .    .    .    S    .    .    .
admin           S    S    S    S    S    S    CS   S    S    S
api_key         .    .    .    .    .    .    .    .    .    .
dispatcher_s    S    S    S    S    S    .    S    S    S    S
"""
LETTER = {
    "C": call_view.Viewer.caller,
    "R": call_view.Viewer.responder,
    "S": call_view.Viewer.staff,
    "T": call_view.Viewer.team,
    "r": call_view.Viewer.former_responder,
    "t": call_view.Viewer.former_team,
}


def _roles() -> dict[tuple[str, str], str]:
    head, *lines = ROLES.strip().splitlines()
    assert head.split() == list(CALLS)
    table = {}
    for line in lines:
        who, *cells = line.split()
        assert len(cells) == len(CALLS), who
        for call, cell in zip(CALLS, cells, strict=True):
            table[who, call] = cell.strip(".")
    assert {who for who, _ in table} == set(EVERYONE)
    return table


ROLE_TABLE = _roles()

# The events of each call, in order: "upd" call.updated, "loc"
# responder.location, "X1+" / "X1-" the offer X1 (to team X) made / closed.
EVENTS = {
    "A1o": ("upd", "X1+"),
    "A1a": ("X2+", "X2-", "upd", "loc"),
    "B2": ("X3+", "X3-", "Y4+", "upd"),
    "B1a": ("Y5+", "Y5-", "upd"),
    "B3": ("upd",),
    "BS2": ("upd",),
    "AdC2": ("upd",),
    "Xown": ("upd", "X6+"),
    "A1c": ("X7+", "X7-", "upd"),
    "A1r": ("X8+", "X8-", "upd"),
}
STAFF_OF_C1 = ("dispatcher_c1", "admin", STREET_DISPATCHER)
# Which of them each principal gets (anyone not named: none).
SEEN: dict[str, dict[str, str]] = {
    "A1o": {"resident_a": "upd", "volunteer_x": "upd X1+"} | dict.fromkeys(STAFF_OF_C1, "upd X1+"),
    "A1a": {"resident_a": "upd loc", "volunteer_x": "upd"}
    | dict.fromkeys(STAFF_OF_C1, "X2+ X2- upd"),
    # Team X's offer closed: volunteer X learns that, and nothing more of the call.
    "B2": {"resident_b": "upd", "volunteer_x": "X3+ X3-", "volunteer_y": "Y4+ upd"}
    | dict.fromkeys(("dispatcher_c2", "admin", STREET_DISPATCHER), "X3+ X3- Y4+ upd"),
    "B1a": {"resident_b": "upd", "volunteer_y": "upd"} | dict.fromkeys(STAFF_OF_C1, "Y5+ Y5- upd"),
    "B3": dict.fromkeys(("resident_b", "admin", STREET_DISPATCHER), "upd"),
    "BS2": dict.fromkeys(("resident_b", "admin"), "upd"),
    "AdC2": dict.fromkeys(("admin", "dispatcher_c2", STREET_DISPATCHER), "upd"),
    "Xown": {"volunteer_x": "upd"} | dict.fromkeys(STAFF_OF_C1, "upd X6+"),
    "A1c": {"resident_a": "upd", "volunteer_x": "upd"} | dict.fromkeys(STAFF_OF_C1, "X7+ X7- upd"),
    "A1r": {"resident_a": "upd", "volunteer_x": "upd"} | dict.fromkeys(STAFF_OF_C1, "X8+ X8- upd"),
}


@dataclass
class World:
    cast: Cast
    people: dict[str, PersonPrincipal]
    calls: dict[str, uuid.UUID]
    labels: dict[int, str]  # event id → "<call>:<event>"

    @property
    def call_names(self) -> dict[uuid.UUID, str]:
        return {call_id: name for name, call_id in self.calls.items()}


# ---- the rows ----------------------------------------------------------------------


async def _grid_of(session: AsyncSession, community: uuid.UUID) -> uuid.UUID:
    grid: uuid.UUID = (
        await session.execute(
            text(
                "SELECT g.id FROM area g JOIN area b ON b.id = g.parent_id "
                "WHERE b.parent_id = :c ORDER BY g.code LIMIT 1"
            ),
            {"c": community},
        )
    ).scalar_one()
    return grid


async def _other_street(session: AsyncSession) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A second street (the demo district has one), with a community and a grid."""
    ids: list[uuid.UUID] = []
    parent = None
    for level in ("street", "community", "grid_branch", "grid"):
        area_id = uuid.uuid4()
        await session.execute(
            text(
                "INSERT INTO area (id, level, parent_id, code, name, boundary) "
                "VALUES (:id, :level, :parent, :code, '别处', "
                "ST_Multi(ST_MakeEnvelope(113.0, 22.0, 113.01, 22.01, 4326)))"
            ),
            {"id": area_id, "level": level, "parent": parent, "code": f"VIS-{area_id.hex[:12]}"},
        )
        ids.append(area_id)
        parent = area_id
    return ids[0], ids[1], ids[3]


async def _call(
    session: AsyncSession,
    resident: uuid.UUID,
    status: str,
    grid: uuid.UUID,
    community: uuid.UUID,
    street: uuid.UUID,
    responder: uuid.UUID | None = None,
    closed_ago: timedelta | None = None,
    released: bool = False,
) -> uuid.UUID:
    """A call; `closed_ago`: closed that long ago; `released`: the sweeper has
    ended its responder's full view."""
    call_id = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO call (id, resident_id, status, category, note, location, grid_id,
                              community_id, street_id, responder_id, escalation_level, rounds,
                              closed_at, responder_released_at)
            SELECT :id, :resident, :status, 'visit', '门没锁',
                   ST_PointOnSurface(g.boundary)::geography,
                   g.id, :community, :street, :responder, 'grid', 1,
                   now() - CAST(:closed_ago AS interval),
                   CASE WHEN :released THEN now() END
            FROM area g WHERE g.id = :grid
            """
        ),
        {
            "id": call_id,
            "resident": resident,
            "status": status,
            "grid": grid,
            "community": community,
            "street": street,
            "responder": responder,
            "closed_ago": closed_ago,
            "released": released,
        },
    )
    return call_id


async def _offer(
    session: AsyncSession, call_id: uuid.UUID, team: uuid.UUID, status: str
) -> uuid.UUID:
    offer_id = uuid.uuid4()
    await session.execute(
        text(
            "INSERT INTO offer (id, call_id, team_id, status, round, distance_m, expires_at) "
            "VALUES (:id, :call, :team, :status, 1, 10, now() + interval '1 hour')"
        ),
        {"id": offer_id, "call": call_id, "team": team, "status": status},
    )
    return offer_id


async def _event(
    session: AsyncSession,
    call_id: uuid.UUID,
    kind: str,
    data: dict[str, Any],
    offer_id: uuid.UUID | None = None,
) -> int:
    event_id: int = (
        await session.execute(
            text(
                "INSERT INTO event (call_id, offer_id, type, data) "
                "VALUES (:call, :offer, :type, CAST(:data AS jsonb)) RETURNING id"
            ),
            {"call": call_id, "offer": offer_id, "type": kind, "data": json.dumps(data)},
        )
    ).scalar_one()
    return event_id


async def _principal(session: AsyncSession, settings: Settings, token: str) -> PersonPrincipal:
    return await auth.authenticate_bearer(session, settings, token)


async def build_world(session: AsyncSession, settings: Settings) -> World:
    cast = await make_cast(session, settings)
    street, c3 = (
        await session.execute(
            text(
                "SELECT parent_id, (SELECT id FROM area WHERE level = 'community' "
                "ORDER BY code OFFSET 2 LIMIT 1) FROM area WHERE id = :c1"
            ),
            {"c1": cast.community_1},
        )
    ).one()
    s2, s2_community, s2_grid = await _other_street(session)

    dispatcher_s = await make_person(session, "街道调度")
    await session.execute(
        text("INSERT INTO dispatcher (person_id, area_id) VALUES (:p, :a)"),
        {"p": dispatcher_s, "a": street},
    )
    cast.person_ids[STREET_DISPATCHER] = dispatcher_s
    cast.headers[STREET_DISPATCHER] = bearer(await token_for(session, settings, dispatcher_s))

    p = cast.person_ids
    g1, g2, g3 = [await _grid_of(session, c) for c in (cast.community_1, cast.community_2, c3)]
    in_c1 = (g1, cast.community_1, street)
    in_c2 = (g2, cast.community_2, street)
    calls = {
        "A1o": await _call(session, p["resident_a"], "offered", *in_c1),
        "A1a": await _call(
            session, p["resident_a"], "en_route", *in_c1, responder=p["volunteer_x"]
        ),
        "B2": await _call(session, p["resident_b"], "offered", *in_c2),
        "B1a": await _call(
            session, p["resident_b"], "accepted", *in_c1, responder=p["volunteer_y"]
        ),
        "B3": await _call(session, p["resident_b"], "searching", g3, c3, street),
        "BS2": await _call(session, p["resident_b"], "escalated", s2_grid, s2_community, s2),
        "AdC2": await _call(session, p["admin"], "searching", *in_c2),
        "Xown": await _call(session, p["volunteer_x"], "offered", *in_c1),
        "A1c": await _call(
            session,
            p["resident_a"],
            "resolved",
            *in_c1,
            responder=p["volunteer_x"],
            closed_ago=timedelta(hours=1),
        ),
        "A1r": await _call(
            session,
            p["resident_a"],
            "resolved",
            *in_c1,
            responder=p["volunteer_x"],
            closed_ago=timedelta(days=2),
            released=True,
        ),
    }
    offers = {
        "X1": await _offer(session, calls["A1o"], cast.team_x, "open"),
        "X2": await _offer(session, calls["A1a"], cast.team_x, "accepted"),
        "X3": await _offer(session, calls["B2"], cast.team_x, "expired"),
        "Y4": await _offer(session, calls["B2"], cast.team_y, "open"),
        "Y5": await _offer(session, calls["B1a"], cast.team_y, "accepted"),
        "X6": await _offer(session, calls["Xown"], cast.team_x, "open"),
        "X7": await _offer(session, calls["A1c"], cast.team_x, "accepted"),
        "X8": await _offer(session, calls["A1r"], cast.team_x, "accepted"),
    }

    labels: dict[int, str] = {}
    for name, kinds in EVENTS.items():
        call_id = calls[name]
        for label in kinds:
            if label == "upd":
                data = (await call_view.snapshot(session, call_id)).model_dump(mode="json")
                if data["responder"] is not None:
                    # On the way: only the caller may see where the responder is.
                    data["responder"]["location"] = {"lat": 22.7, "lng": 113.9, "accuracy_m": 5.0}
                event_id = await _event(session, call_id, "call.updated", data)
            elif label == "loc":
                point = {"lat": 22.7, "lng": 113.9, "accuracy_m": 5.0}
                event_id = await _event(session, call_id, "responder.location", point)
            else:
                offer_id = offers[label[:-1]]
                kind = "offer.created" if label.endswith("+") else "offer.closed"
                # What an offer event carries: the offer's view.
                view = (await lifecycle.offer_view(session, offer_id)).model_dump(mode="json")
                event_id = await _event(session, call_id, kind, view, offer_id)
            labels[event_id] = f"{name}:{label}"

    people = {}
    for who in EVERYONE:
        if who not in NOT_PEOPLE:
            token = cast.headers[who]["Authorization"].removeprefix("Bearer ")
            people[who] = await _principal(session, settings, token)
    return World(cast, people, calls, labels)


# ---- the paths under test (each the code the app runs) ----------------------------------


async def sql_sees(
    session: AsyncSession, person: PersonPrincipal, ids: list[uuid.UUID], condition: str
) -> set[uuid.UUID]:
    """The calls among `ids` that an SQL condition of call_view lets through."""
    rows = await session.execute(
        text(f"SELECT c.id FROM call c WHERE c.id = ANY(:ids) AND {condition}"),
        {"ids": ids, **call_view.NAMED.values(person)},
    )
    return set(rows.scalars())


async def replayed(
    conn: asyncpg.Connection, person: PersonPrincipal, after: int, upto: int
) -> list[dict[str, Any]]:
    """What the WebSocket `resume` sends this person."""
    return await hub.replay_on(conn, person, after, upto)


async def live(
    conn: asyncpg.Connection, person: PersonPrincipal, after: int, upto: int
) -> list[dict[str, Any]]:
    """What the live stream hands this person's socket, event by event."""
    rows = await conn.fetch(hub._FOLLOWING, after, [], after, hub.BATCH)
    out = []
    for row in rows:
        if row["id"] <= upto:
            message = hub.LiveEvent.from_record(row).message_for(person)
            if message is not None:
                out.append(message)
    return out


async def _listed(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[str]:
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        response = await http.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [call["id"] for call in page["data"]]
        if page["next_cursor"] is None:
            return ids
        params["cursor"] = page["next_cursor"]


# ---- the tests -------------------------------------------------------------------------


async def test_every_path_agrees_on_who_sees_a_call(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
) -> None:
    world = await build_world(session, settings)
    ids = list(world.calls.values())
    names = world.call_names
    wrong: list[str] = []

    for who in EVERYONE:
        headers = world.cast.headers[who]
        if who in NOT_PEOPLE:
            # Not a person: refused before any rule is asked (the matrix's answer).
            refused = NOT_PEOPLE[who]
            for path in ("/api/v1/calls", "/api/v1/dispatch/calls"):
                assert (await anon_client.get(path, headers=headers)).status_code == refused
            for name in CALLS:
                for suffix in ("", "/events"):
                    response = await anon_client.get(
                        f"/api/v1/calls/{world.calls[name]}{suffix}", headers=headers
                    )
                    assert response.status_code == refused, (who, name, suffix)
                assert ROLE_TABLE[who, name] == "", (who, name)
            continue

        person = world.people[who]
        # The very conditions list_calls runs (GET /calls, GET /dispatch/calls).
        sql_all = await sql_sees(session, person, ids, calls_service._VISIBLE)
        sql_staff = await sql_sees(session, person, ids, calls_service._STAFF_VISIBLE)
        sql_part = {
            viewer: await sql_sees(session, person, ids, call_view.visible_sql(viewers={viewer}))
            for viewer in call_view.Viewer
        }
        listed = {
            names[uuid.UUID(i)]
            for i in await _listed(anon_client, "/api/v1/calls", headers)
            if uuid.UUID(i) in names
        }
        for name in CALLS:
            expected = ROLE_TABLE[who, name]
            facts = await call_view.facts(session, world.calls[name])
            assert facts is not None
            viewer = call_view.viewer_of(person, facts)
            python = viewer.value if viewer else None
            want = LETTER[expected[0]].value if expected else None
            if python != want:
                wrong.append(f"{who} × {name}: viewer_of says {python}, the table {want}")
            roles = [LETTER[letter] for letter in expected]
            if call_view.roles_of(person, facts) != roles:
                wrong.append(f"{who} × {name}: roles_of says {call_view.roles_of(person, facts)}")
            for part, seen in sql_part.items():
                if (world.calls[name] in seen) != (part in roles):
                    wrong.append(f"{who} × {name}: the SQL of the {part} rules disagrees")
            if (world.calls[name] in sql_all) != bool(expected):
                wrong.append(f"{who} × {name}: list_calls' SQL says {not expected}")
            if (world.calls[name] in sql_staff) != ("S" in expected):
                wrong.append(f"{who} × {name}: the dispatch list's SQL says {'S' not in expected}")
            if (name in listed) != bool(expected):
                wrong.append(f"{who} × {name}: GET /calls lists it: {name in listed}")
            status = (
                await anon_client.get(f"/api/v1/calls/{world.calls[name]}", headers=headers)
            ).status_code
            if status != (200 if expected else 404):
                wrong.append(f"{who} × {name}: GET /calls/{{id}} answers {status}")

        dispatch = await anon_client.get("/api/v1/dispatch/calls", headers=headers)
        if person.is_admin or person.dispatcher_area is not None:
            on_desk = {
                names[uuid.UUID(i)]
                for i in await _listed(anon_client, "/api/v1/dispatch/calls", headers)
                if uuid.UUID(i) in names
            }
            want_desk = {name for name in CALLS if "S" in ROLE_TABLE[who, name]}
            if on_desk != want_desk:
                wrong.append(f"{who}: GET /dispatch/calls lists {sorted(on_desk)}")
        else:
            assert dispatch.status_code == 403, (who, dispatch.text)
    assert not wrong, "\n".join(wrong)


def _message(event: dict[str, Any]) -> tuple[int, str, str, str]:
    """An event as the client gets it, but for `at` (written as each path likes)."""
    data = json.dumps(event["data"], sort_keys=True, default=str)
    return event["id"], str(event["type"]), str(event["call_id"]), data


async def test_every_path_agrees_on_which_events_each_sees(
    anon_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
) -> None:
    world = await build_world(session, settings)
    after, upto = min(world.labels) - 1, max(world.labels)
    raw = (await connection.get_raw_connection()).driver_connection
    ids = {"ids": list(world.labels)}
    facts = {
        row.id: call_view.EventFacts(row.type, row.offer_id, row.offer_team)
        for row in await session.execute(
            text(
                "SELECT e.id, e.type, e.offer_id, o.team_id AS offer_team "
                "FROM event e LEFT JOIN offer o ON o.id = e.offer_id WHERE e.id = ANY(:ids)"
            ),
            ids,
        )
    }
    wrong: list[str] = []
    for who in EVERYONE:
        if who in NOT_PEOPLE:
            continue  # refused by every path (the test above)
        person = world.people[who]
        # Each part's filter, in SQL and in Python, whether or not the person
        # plays that part in these calls.
        for viewer in call_view.Viewer:
            check = call_view.event_filter(viewer)
            in_sql = set(
                (
                    await session.execute(
                        text(
                            "SELECT e.id FROM event e LEFT JOIN offer o ON o.id = e.offer_id "
                            f"WHERE e.id = ANY(:ids) AND {check.sql()}"
                        ),
                        {**ids, **call_view.NAMED.values(person)},
                    )
                ).scalars()
            )
            in_python = {i for i, event in facts.items() if check.admits(person, event)}
            if in_sql != in_python:
                odd = sorted(world.labels[i] for i in in_sql ^ in_python)
                wrong.append(f"{who} as {viewer}: the event filter's SQL and Python differ: {odd}")
        by_path: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for path, read in (("resume", replayed), ("live", live)):
            got: dict[str, list[dict[str, Any]]] = {name: [] for name in CALLS}
            for message in await read(raw, person, after, upto):
                if message["id"] in world.labels:
                    got[world.labels[message["id"]].split(":")[0]].append(message)
            by_path[path] = got
        listed: dict[str, list[dict[str, Any]]] = {}
        for name in CALLS:
            response = await anon_client.get(
                f"/api/v1/calls/{world.calls[name]}/events", headers=world.cast.headers[who]
            )
            listed[name] = response.json()["data"] if response.status_code == 200 else []
        by_path["GET /events"] = listed

        for name in CALLS:
            want = SEEN[name].get(who, "").split()
            for path, got in by_path.items():
                labels = [world.labels[m["id"]].split(":")[1] for m in got[name]]
                if labels != want:
                    wrong.append(f"{who} × {name}: {path} gives {labels}, the table {want}")
            # And each event reads the same whichever way it came (redaction).
            listed_messages = [_message(m) for m in by_path["GET /events"][name]]
            for path in ("resume", "live"):
                messages = [_message(m) for m in by_path[path][name]]
                same_ids = [m[0] for m in messages] == [m[0] for m in listed_messages]
                if same_ids and messages != listed_messages:
                    wrong.append(f"{who} × {name}: {path} and GET /events redact differently")
    assert not wrong, "\n".join(wrong)


# What each part sees of a call (`redact`): the exact point or the rounded
# one, the note, the responder (and where they are), the team.
EXACT = {"lat": 22.765432, "lng": 113.923456, "accuracy_m": 6.0}
ROUNDED = {"lat": 22.765, "lng": 113.923, "accuracy_m": 100.0}
ON_THE_WAY = {"lat": 22.7, "lng": 113.9, "accuracy_m": 5.0}
SEES_OF_A_CALL = {
    # part: (location, note, responder, responder's position, team)
    "caller": (EXACT, True, True, True, True),
    "responder": (EXACT, True, True, False, True),
    "staff": (EXACT, True, True, False, True),
    "team": (ROUNDED, False, False, False, True),
    "former_responder": (ROUNDED, False, True, False, True),
    "former_team": (ROUNDED, False, False, False, False),
}


def test_what_each_part_sees_of_a_call() -> None:
    assert set(SEES_OF_A_CALL) == {viewer.value for viewer in call_view.Viewer}
    full: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "status": "en_route",
        "note": "门没锁",
        "location": EXACT,
        "team": {"id": str(uuid.uuid4()), "name": "红小二"},
        "responder": {
            "id": str(uuid.uuid4()),
            "display_name": "志愿者",
            "phone_masked": "100****0001",
            "location": ON_THE_WAY,
        },
    }
    for viewer in call_view.Viewer:
        location, note, responder, position, team = SEES_OF_A_CALL[viewer.value]
        seen = call_view.redact(full, viewer)
        assert seen["location"] == location, viewer
        assert (seen["note"] is not None) == note, viewer
        assert (seen["responder"] is not None) == responder, viewer
        if seen["responder"] is not None:
            assert (seen["responder"]["location"] is not None) == position, viewer
        assert (seen["team"] is not None) == team, viewer
        # And of the notes said of its steps, on its events.
        event = call_view.event_view(
            viewer,
            event_id=1,
            event_type="call.updated",
            call_id=uuid.UUID(full["id"]),
            at="now",
            data=full,
            note="五分钟到",
        )
        assert (event["note"] is not None) == note, viewer
        assert event["data"] == seen
