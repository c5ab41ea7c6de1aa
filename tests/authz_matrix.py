"""The authorization matrix: every route × every kind of caller → status.

`tests/http/test_authz_matrix.py` checks each cell against the running app and
fails when a route has no row. `docs/security.md` shows this table; refresh
it with `python -m tests.authz_matrix --write`.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.principals import Cast, make_person, next_phone

PRINCIPALS = (
    "anonymous",
    "resident_a",
    "resident_b",
    "volunteer_x",
    "volunteer_y",
    "dispatcher_c1",
    "dispatcher_c2",
    "admin",
    "api_key",
)
PEOPLE = PRINCIPALS[1:-1]
LABELS = {
    "anonymous": "anon",
    "resident_a": "res A",
    "resident_b": "res B",
    "volunteer_x": "vol X",
    "volunteer_y": "vol Y",
    "dispatcher_c1": "disp C1",
    "dispatcher_c2": "disp C2",
    "admin": "admin",
    "api_key": "API key",
}


@dataclass(frozen=True)
class Call:
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


Builder = Callable[[AsyncSession, Cast], Awaitable[Call]]


def fixed(path: str, **kwargs: Any) -> Builder:
    async def build(_: AsyncSession, __: Cast) -> Call:
        return Call(path, **kwargs)

    return build


@dataclass(frozen=True)
class Row:
    method: str
    template: str
    expected: dict[str, int]
    build: Builder
    note: str = ""


def cells(default: int | None = None, **by_principal: int) -> dict[str, int]:
    """Expected statuses: `people=` for the seven people, `everyone=` for all."""
    table: dict[str, int] = {}
    if default is not None:
        table = dict.fromkeys(PRINCIPALS, default)
    people = by_principal.pop("people", None)
    if people is not None:
        table.update(dict.fromkeys(PEOPLE, people))
    table.update(by_principal)
    assert set(table) == set(PRINCIPALS), sorted(set(PRINCIPALS) - set(table))
    return table


LAT, LNG = 22.77, 113.93
POINT = {"lat": LAT, "lng": LNG, "accuracy_m": 10}
PEOPLE_ONLY = cells(people=200, anonymous=401, api_key=403)
READERS = cells(200, anonymous=401)
STAFF_ONLY = {"admin": 201, "dispatcher_c1": 201}


def _staff(**overrides: int) -> dict[str, int]:
    table = cells(403, anonymous=401)
    table.update(overrides)
    return table


async def _otp(_: AsyncSession, __: Cast) -> Call:
    return Call("/api/v1/auth/otp", json={"phone": next_phone()})


async def _team_in_c1(session: AsyncSession, cast: Cast) -> Call:
    # Team X's base lies in community 1.
    base = (
        await session.execute(
            text("SELECT ST_Y(base::geometry), ST_X(base::geometry) FROM team WHERE id = :id"),
            {"id": cast.team_x},
        )
    ).one()
    body = {"name": "矩阵队", "base": {"lat": base[0], "lng": base[1]}}
    return Call("/api/v1/admin/teams", json=body)


async def _map_of_c1(_: AsyncSession, cast: Cast) -> Call:
    return Call("/api/v1/dispatch/map", params={"area_id": str(cast.community_1)})


async def _member_of_x(_: AsyncSession, cast: Cast) -> Call:
    body = {"phone": next_phone(), "display_name": "矩阵队员", "kind": "part_time"}
    return Call(f"/api/v1/admin/teams/{cast.team_x}/members", json=body)


async def _team_x(_: AsyncSession, cast: Cast) -> Call:
    return Call(f"/api/v1/teams/{cast.team_x}")


async def _change_member_x(_: AsyncSession, cast: Cast) -> Call:
    member = cast.person_ids["volunteer_x"]
    return Call(f"/api/v1/admin/teams/{cast.team_x}/members/{member}", json={"roles": ["server"]})


async def _remove_a_member_of_x(session: AsyncSession, cast: Cast) -> Call:
    # A new member each time, so that team X keeps its roster (and stays active).
    member = await make_person(session, "将离队者")
    await session.execute(
        text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, 'part_time')"),
        {"t": cast.team_x, "p": member},
    )
    return Call(f"/api/v1/admin/teams/{cast.team_x}/members/{member}")


async def _dispatcher(_: AsyncSession, cast: Cast) -> Call:
    body = {"phone": next_phone(), "display_name": "矩阵调度", "area_id": str(cast.community_1)}
    return Call("/api/v1/admin/dispatchers", json=body)


async def _disable(session: AsyncSession, _: Cast) -> Call:
    target = await make_person(session, "被停用者")
    return Call(f"/api/v1/admin/persons/{target}/disable")


async def _free(session: AsyncSession, cast: Cast, member: str) -> None:
    """A member responds to one call at a time: close the one they have."""
    await session.execute(
        text(
            "UPDATE call SET status = 'resolved' WHERE responder_id = :p "
            "AND status IN ('accepted', 'en_route', 'on_site')"
        ),
        {"p": cast.person_ids[member]},
    )


async def _new_call(
    session: AsyncSession, cast: Cast, status: str, *, responder: str | None = None
) -> tuple[str, str | None]:
    """A call of resident A at team X's base (community 1), in `status`,
    offered to team X (the offer open while the call is offered)."""
    if responder is not None:
        await _free(session, cast, responder)
    call_id, offer_id = uuid.uuid4(), uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO call (id, resident_id, status, category, location, grid_id, community_id,
                              street_id, team_id, responder_id, escalation_level, rounds)
            SELECT :id, :resident, CAST(:status AS varchar), 'urgent', t.base,
                   g.id, c.id, s.id, t.id, :responder,
                   CASE WHEN CAST(:status AS varchar) = 'escalated'
                        THEN 'community' ELSE 'grid' END,
                   1
            FROM team t JOIN area g ON g.id = t.grid_id JOIN area b ON b.id = g.parent_id
            JOIN area c ON c.id = b.parent_id JOIN area s ON s.id = c.parent_id
            WHERE t.id = :team
            """
        ),
        {
            "id": call_id,
            "resident": cast.person_ids["resident_a"],
            "status": status,
            "responder": cast.person_ids[responder] if responder else None,
            "team": cast.team_x,
        },
    )
    await session.execute(
        text(
            """
            INSERT INTO offer (id, call_id, team_id, status, round, distance_m, expires_at)
            VALUES (:id, :call, :team, :status, 1, 10, now() + interval '1 hour')
            """
        ),
        {
            "id": offer_id,
            "call": call_id,
            "team": cast.team_x,
            "status": "open" if status == "offered" else "accepted",
        },
    )
    return str(call_id), str(offer_id)


def _on_call(suffix: str, status: str, responder: str | None = None, **kwargs: Any) -> Builder:
    async def build(session: AsyncSession, cast: Cast) -> Call:
        call_id, _ = await _new_call(session, cast, status, responder=responder)
        return Call(f"/api/v1/calls/{call_id}{suffix}", **kwargs)

    return build


def _on_offer(suffix: str) -> Builder:
    async def build(session: AsyncSession, cast: Cast) -> Call:
        await _free(session, cast, "volunteer_x")
        _, offer_id = await _new_call(session, cast, "offered")
        return Call(f"/api/v1/offers/{offer_id}{suffix}")

    return build


_shared_calls: dict[int, str] = {}


def _shared_call(suffix: str) -> Builder:
    """One offered call of resident A per cast, for the read-only rows."""

    async def build(session: AsyncSession, cast: Cast) -> Call:
        key = id(cast)
        if key not in _shared_calls:
            _shared_calls[key], _ = await _new_call(session, cast, "offered")
        return Call(f"/api/v1/calls/{_shared_calls[key]}{suffix}")

    return build


async def _assign(session: AsyncSession, cast: Cast) -> Call:
    call_id, _ = await _new_call(session, cast, "escalated")
    await session.execute(
        text("UPDATE offer SET status = 'expired' WHERE call_id = :c"), {"c": call_id}
    )
    return Call(f"/api/v1/dispatch/calls/{call_id}/assign", json={"team_id": str(cast.team_x)})


async def _activity(_: AsyncSession, cast: Cast) -> Call:
    body = {
        "team_id": str(cast.team_x),
        "kind": "visit",
        "at": datetime.now(UTC).isoformat(),
        "duration_min": 30,
    }
    return Call("/api/v1/activities", json=body)


async def _team_x_activities(_: AsyncSession, cast: Cast) -> Call:
    return Call(f"/api/v1/teams/{cast.team_x}/activities")


async def _dispute(session: AsyncSession, cast: Cast) -> Call:
    """Resident A's call, resolved by volunteer X a moment ago."""
    call_id, _ = await _new_call(session, cast, "resolved", responder="volunteer_x")
    await session.execute(text("UPDATE call SET closed_at = now() WHERE id = :id"), {"id": call_id})
    return Call(f"/api/v1/calls/{call_id}/dispute", json={"reason": "没有解决"})


async def _kpis_of_c1(_: AsyncSession, cast: Cast) -> Call:
    return Call(
        "/api/v1/dispatch/kpis",
        params={"area_id": str(cast.community_1), "from": "2024-06-01", "to": "2024-06-03"},
    )


async def _report_of_c1(_: AsyncSession, cast: Cast) -> Call:
    return Call("/api/v1/dispatch/reports/2024-06.xlsx", params={"area_id": str(cast.community_1)})


async def _stars(_: AsyncSession, cast: Cast) -> Call:
    return Call("/api/v1/stars", params={"area_id": str(cast.community_1)})


async def _screen(_: AsyncSession, cast: Cast) -> Call:
    return Call(f"/api/v1/public/screens/{cast.community_1}")


async def _screen_stream(_: AsyncSession, cast: Cast) -> Call:
    return Call(f"/api/v1/public/screens/{cast.community_1}/stream")


async def _press(_: AsyncSession, __: Cast) -> Call:
    spot = {"lat": LAT + _press_count.__next__() * 0.0005, "lng": LNG}
    return Call("/api/v1/calls", json={"location": spot, "category": "visit"})


async def _household_in_c1(
    session: AsyncSession, cast: Cast, *, paired: str | None = None
) -> uuid.UUID:
    """A household at team X's base (community 1), paired with `paired`."""
    household = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO household (id, address, grid_id, location, vulnerabilities)
            SELECT :h, '矩阵小区1栋101室', grid_id, base, ARRAY['elderly'] FROM team WHERE id = :t
            """
        ),
        {"h": household, "t": cast.team_x},
    )
    if paired is not None:
        await session.execute(
            text("INSERT INTO household_pairing (person_id, household_id) VALUES (:p, :h)"),
            {"p": cast.person_ids[paired], "h": household},
        )
    return household


async def _new_household(session: AsyncSession, cast: Cast) -> Call:
    base = (
        await session.execute(
            text("SELECT ST_Y(base::geometry), ST_X(base::geometry) FROM team WHERE id = :id"),
            {"id": cast.team_x},
        )
    ).one()
    body = {
        "address": "矩阵小区2栋",
        "location": {"lat": base[0], "lng": base[1]},
        "tags": ["elderly"],
    }
    return Call("/api/v1/admin/households", json=body)


async def _screen_in_c1(session: AsyncSession, cast: Cast) -> uuid.UUID:
    """A screen at team X's base, of community 1 (its key unknown to all)."""
    screen = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO screen (id, name, area_id, location, prefix, key_hash)
            SELECT :s, '矩阵服务屏', :area, base, 'hs_matrix', :hash FROM team WHERE id = :t
            """
        ),
        {"s": screen, "area": cast.community_1, "hash": uuid.uuid4().hex, "t": cast.team_x},
    )
    return screen


async def _new_screen(session: AsyncSession, cast: Cast) -> Call:
    base = (
        await session.execute(
            text("SELECT ST_Y(base::geometry), ST_X(base::geometry) FROM team WHERE id = :id"),
            {"id": cast.team_x},
        )
    ).one()
    body = {
        "name": "矩阵服务屏",
        "area_id": str(cast.community_1),
        "location": {"lat": base[0], "lng": base[1]},
    }
    return Call("/api/v1/admin/screens", json=body)


async def _revoke_screen(session: AsyncSession, cast: Cast) -> Call:
    return Call(f"/api/v1/admin/screens/{await _screen_in_c1(session, cast)}")


async def _screen_press(session: AsyncSession, cast: Cast) -> Call:
    screen = await _screen_in_c1(session, cast)
    return Call(f"/api/v1/public/screens/{screen}/calls", json={"category": "visit"})


async def _follow_screen_call(session: AsyncSession, cast: Cast) -> Call:
    screen = await _screen_in_c1(session, cast)
    return Call(f"/api/v1/public/screens/{screen}/calls/{uuid.uuid4()}")


async def _read_household(session: AsyncSession, cast: Cast) -> Call:
    household = await _household_in_c1(session, cast, paired="volunteer_x")
    return Call(f"/api/v1/admin/households/{household}")


async def _pairing(session: AsyncSession, cast: Cast) -> Call:
    household = await _household_in_c1(session, cast)
    member = await make_person(session, "矩阵党员")
    await session.execute(
        text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, 'full_time')"),
        {"t": cast.team_x, "p": member},
    )
    return Call(f"/api/v1/admin/households/{household}/pairings", json={"person_id": str(member)})


async def _unpairing(session: AsyncSession, cast: Cast) -> Call:
    household = await _household_in_c1(session, cast, paired="volunteer_x")
    return Call(f"/api/v1/admin/households/{household}/pairings/{cast.person_ids['volunteer_x']}")


async def _household_audit(session: AsyncSession, cast: Cast) -> Call:
    household = await _household_in_c1(session, cast, paired="volunteer_x")
    return Call("/api/v1/admin/audit", params={"subject": f"household:{household}"})


_press_count = iter(range(1, 10_000))

# What a caller of each kind may do with resident A's call (offered to team X,
# in community 1): the caller, team X and community 1's dispatcher see it;
# everyone else is told it does not exist.
SEES_A = cells(
    anonymous=401,
    resident_a=200,
    resident_b=404,
    volunteer_x=200,
    volunteer_y=404,
    dispatcher_c1=200,
    dispatcher_c2=404,
    admin=200,
    api_key=403,
)
# An offer to team X: its members act on it; to anyone else it does not exist.
OFFERED_TEAM_ONLY = cells(404, anonymous=401, api_key=403, volunteer_x=200)

DEVICE = "matrix-device-token:0123456789"

# Rows run in this order for each caller; logout comes last, since it ends
# the caller's session.
ROWS: tuple[Row, ...] = (
    Row("GET", "/healthz", cells(200), fixed("/healthz"), "public"),
    Row("GET", "/readyz", cells(200), fixed("/readyz"), "public"),
    Row("HEAD", "/healthz", cells(200), fixed("/healthz"), "public"),
    Row("HEAD", "/readyz", cells(200), fixed("/readyz"), "public"),
    Row(
        "GET",
        "/metrics",
        cells(200),
        fixed("/metrics"),
        "public unless `METRICS_TOKEN` is set (production must): then that bearer only",
    ),
    Row("GET", "/openapi.json", cells(200), fixed("/openapi.json"), "public"),
    Row("GET", "/asyncapi.json", cells(200), fixed("/asyncapi.json"), "public"),
    Row("GET", "/docs", cells(200), fixed("/docs"), "public"),
    Row("GET", "/docs/oauth2-redirect", cells(200), fixed("/docs/oauth2-redirect"), "public"),
    Row("GET", "/redoc", cells(200), fixed("/redoc"), "public"),
    Row(
        "GET",
        "/docs/assets/{name}",
        cells(200),
        fixed("/docs/assets/swagger-ui.css"),
        "public; the docs' files (the docs are off in production unless `DOCS_ENABLED`)",
    ),
    Row("POST", "/api/v1/auth/otp", cells(202), _otp, "public; rate-limited"),
    Row(
        "POST",
        "/api/v1/auth/token",
        cells(401),
        fixed("/api/v1/auth/token", json={"phone": "+8610000000000", "code": "000000"}),
        "public; 401 here because the code is wrong",
    ),
    Row(
        "POST",
        "/api/v1/auth/refresh",
        cells(401),
        fixed("/api/v1/auth/refresh", json={"refresh_token": "not-a-token"}),
        "public; 401 here because the token is not valid",
    ),
    Row("GET", "/api/v1/me", PEOPLE_ONLY, fixed("/api/v1/me"), "people only"),
    Row(
        "PUT",
        "/api/v1/me/devices/{token}",
        cells(people=204, anonymous=401, api_key=403),
        fixed(f"/api/v1/me/devices/{DEVICE}", json={"platform": "android"}),
        "people only",
    ),
    Row(
        "DELETE",
        "/api/v1/me/devices/{token}",
        cells(people=204, anonymous=401, api_key=403),
        fixed(f"/api/v1/me/devices/{DEVICE}"),
        "people only; only one's own device is removed",
    ),
    Row(
        "PUT",
        "/api/v1/me/duty",
        cells(403, anonymous=401, volunteer_x=200, volunteer_y=200),
        fixed("/api/v1/me/duty", json={"on_duty": True, "location": POINT}),
        "team members only",
    ),
    Row(
        "PUT",
        "/api/v1/me/location",
        cells(409, anonymous=401, api_key=403, volunteer_x=204, volunteer_y=204),
        fixed("/api/v1/me/location", json=POINT),
        "team members on duty; anyone else 409 `not_on_duty`",
    ),
    Row(
        "GET",
        "/api/v1/me/notifications",
        PEOPLE_ONLY,
        fixed("/api/v1/me/notifications"),
        "people: their own alerts",
    ),
    Row(
        "GET",
        "/api/v1/areas",
        READERS,
        fixed("/api/v1/areas", params={"level": "community"}),
        "people; keys with `areas:read`",
    ),
    Row(
        "GET",
        "/api/v1/areas/locate",
        READERS,
        fixed("/api/v1/areas/locate", params={"lat": LAT, "lng": LNG}),
        "people; keys with `areas:read`",
    ),
    Row(
        "GET",
        "/api/v1/teams/nearby",
        READERS,
        fixed("/api/v1/teams/nearby", params={"lat": LAT, "lng": LNG}),
        "people; keys with `teams:read`",
    ),
    Row(
        "GET",
        "/api/v1/teams/{team_id}",
        PEOPLE_ONLY,
        _team_x,
        "people (no phone of anyone in it)",
    ),
    Row("POST", "/api/v1/calls", cells(people=201, anonymous=401, api_key=403), _press, "people"),
    Row(
        "GET",
        "/api/v1/calls",
        PEOPLE_ONLY,
        fixed("/api/v1/calls"),
        "people: the calls each may see",
    ),
    Row(
        "GET",
        "/api/v1/calls/{call_id}",
        SEES_A,
        _shared_call(""),
        "the caller, the offered team, the area's staff; others 404",
    ),
    Row(
        "GET",
        "/api/v1/calls/{call_id}/events",
        SEES_A,
        _shared_call("/events"),
        "as the call itself",
    ),
    Row(
        "POST",
        "/api/v1/calls/{call_id}/cancel",
        {**SEES_A, "volunteer_x": 403},
        _on_call("/cancel", "offered"),
        "the caller or the area's staff",
    ),
    Row(
        "POST",
        "/api/v1/calls/{call_id}/progress",
        {**SEES_A, "resident_a": 403},
        _on_call("/progress", "accepted", responder="volunteer_x", json={"status": "en_route"}),
        "the responder (vol X here) or the area's staff",
    ),
    Row(
        "POST",
        "/api/v1/calls/{call_id}/rating",
        {**SEES_A, "resident_a": 201, "volunteer_x": 403, "dispatcher_c1": 403, "admin": 403},
        _on_call("/rating", "resolved", json={"stars": 5}),
        "the resident who called, once resolved",
    ),
    Row(
        "POST",
        "/api/v1/calls/{call_id}/dispute",
        {**SEES_A, "volunteer_x": 403, "dispatcher_c1": 403, "admin": 403},
        _dispute,
        "the resident who called, once resolved, within `DISPUTE_WINDOW_HOURS`",
    ),
    Row(
        "GET",
        "/api/v1/stars",
        PEOPLE_ONLY,
        _stars,
        "people: stars are public recognition",
    ),
    Row(
        "GET",
        "/api/v1/public/screens/{area_id}",
        cells(200),
        _screen,
        "public: anonymised, cached per area; rate-limited per client address",
    ),
    Row(
        "GET",
        "/api/v1/public/screens/{area_id}/stream",
        cells(200),
        _screen_stream,
        "public: the same feed as Server-Sent Events; rate-limited per client address",
    ),
    Row(
        "GET",
        "/api/v1/offers",
        PEOPLE_ONLY,
        fixed("/api/v1/offers"),
        "people: their teams' offers (none for someone on no team)",
    ),
    Row(
        "POST",
        "/api/v1/offers/{offer_id}/accept",
        OFFERED_TEAM_ONLY,
        _on_offer("/accept"),
        "members of the offered team; others 404",
    ),
    Row(
        "POST",
        "/api/v1/offers/{offer_id}/decline",
        OFFERED_TEAM_ONLY,
        _on_offer("/decline"),
        "members of the offered team; others 404",
    ),
    Row(
        "GET",
        "/api/v1/dispatch/calls",
        _staff(admin=200, dispatcher_c1=200, dispatcher_c2=200),
        fixed("/api/v1/dispatch/calls"),
        "staff: the calls of their area",
    ),
    Row(
        "GET",
        "/api/v1/dispatch/map",
        _staff(admin=200, dispatcher_c1=200, dispatcher_c2=403),
        _map_of_c1,
        "the area's dispatchers (C1's map; C2 → 403 `outside_your_area`), admins",
    ),
    Row(
        "POST",
        "/api/v1/dispatch/calls/{call_id}/assign",
        _staff(admin=200, dispatcher_c1=200, dispatcher_c2=404),
        _assign,
        "the area's staff; a call outside it 404",
    ),
    Row(
        "POST",
        "/api/v1/activities",
        cells(403, anonymous=401, volunteer_x=201),
        _activity,
        "a member of the team named (vol X of team X); anyone else 403 `not_a_member`",
    ),
    Row(
        "GET",
        "/api/v1/teams/{team_id}/activities",
        cells(403, anonymous=401, volunteer_x=200, dispatcher_c1=200, admin=200),
        _team_x_activities,
        "the team's members, its area's dispatchers, admins; others 403 `not_allowed`",
    ),
    Row(
        "GET",
        "/api/v1/me/activities",
        PEOPLE_ONLY,
        fixed("/api/v1/me/activities"),
        "people: their own month against the quota (an empty one for most)",
    ),
    Row(
        "GET",
        "/api/v1/dispatch/quota",
        _staff(admin=200, dispatcher_c1=200, dispatcher_c2=200),
        fixed("/api/v1/dispatch/quota"),
        "staff: the full-time members short of the quota in their area",
    ),
    Row(
        "GET",
        "/api/v1/dispatch/kpis",
        _staff(admin=200, dispatcher_c1=200, dispatcher_c2=403),
        _kpis_of_c1,
        "staff of the area (C2 → 403 `outside_your_area`), admins",
    ),
    Row(
        "GET",
        "/api/v1/dispatch/reports/{month}.xlsx",
        _staff(admin=200, dispatcher_c1=200, dispatcher_c2=403),
        _report_of_c1,
        "staff of the area (C2 → 403 `outside_your_area`), admins",
    ),
    Row(
        "POST",
        "/api/v1/admin/teams",
        _staff(**STAFF_ONLY),
        _team_in_c1,
        "admin; a dispatcher within its area (C2 → 403 `outside_your_area`)",
    ),
    Row(
        "POST",
        "/api/v1/admin/teams/{team_id}/members",
        _staff(**STAFF_ONLY, dispatcher_c2=404),
        _member_of_x,
        "admin; a dispatcher within its area (a team outside it → 404)",
    ),
    Row(
        "GET",
        "/api/v1/admin/teams",
        _staff(admin=200, dispatcher_c1=200, dispatcher_c2=200),
        fixed("/api/v1/admin/teams", params={"status": "incomplete"}),
        "staff: the teams of their area (an admin: all)",
    ),
    Row(
        "PUT",
        "/api/v1/admin/teams/{team_id}/members/{person_id}",
        _staff(admin=200, dispatcher_c1=200, dispatcher_c2=404),
        _change_member_x,
        "admin; a dispatcher within its area (a team outside it → 404)",
    ),
    Row(
        "DELETE",
        "/api/v1/admin/teams/{team_id}/members/{person_id}",
        _staff(admin=204, dispatcher_c1=204, dispatcher_c2=404),
        _remove_a_member_of_x,
        "admin; a dispatcher within its area (a team outside it → 404)",
    ),
    Row(
        "POST",
        "/api/v1/admin/dispatchers",
        _staff(admin=201),
        _dispatcher,
        "admin only",
    ),
    Row(
        "POST",
        "/api/v1/admin/persons/{person_id}/disable",
        _staff(admin=200),
        _disable,
        "admin only",
    ),
    Row(
        "POST",
        "/api/v1/admin/households",
        _staff(**STAFF_ONLY),
        _new_household,
        "admin; a dispatcher within its area (C2 → 403 `outside_your_area`)",
    ),
    Row(
        "GET",
        "/api/v1/admin/households/{household_id}",
        cells(404, anonymous=401, api_key=403, volunteer_x=200, dispatcher_c1=200, admin=200),
        _read_household,
        "its paired members (vol X here), its area's dispatchers, admins; others 404; "
        "every read audited",
    ),
    Row(
        "POST",
        "/api/v1/admin/households/{household_id}/pairings",
        _staff(**STAFF_ONLY, dispatcher_c2=404),
        _pairing,
        "admin; a dispatcher of the household's area (others 404)",
    ),
    Row(
        "DELETE",
        "/api/v1/admin/households/{household_id}/pairings/{person_id}",
        _staff(admin=204, dispatcher_c1=204, dispatcher_c2=404),
        _unpairing,
        "admin; a dispatcher of the household's area (others 404)",
    ),
    Row(
        "POST",
        "/api/v1/admin/screens",
        _staff(**STAFF_ONLY),
        _new_screen,
        "admin; a dispatcher within its area (C2 → 403 `outside_your_area`)",
    ),
    Row(
        "DELETE",
        "/api/v1/admin/screens/{screen_id}",
        _staff(admin=204, dispatcher_c1=204, dispatcher_c2=404),
        _revoke_screen,
        "admin; a dispatcher of the screen's area (others 404)",
    ),
    Row(
        "POST",
        "/api/v1/public/screens/{screen_id}/calls",
        cells(401),
        _screen_press,
        "the screen's own key (X-Screen-Key) only: no token or API key opens it "
        "(401 `invalid_screen_key`); tests/screens test the key",
    ),
    Row(
        "GET",
        "/api/v1/public/screens/{screen_id}/calls/{call_id}",
        cells(401),
        _follow_screen_call,
        "the screen's own key (X-Screen-Key) only, and only its recent calls "
        "(401 `invalid_screen_key`); tests/screens test the key and the window",
    ),
    Row(
        "GET",
        "/api/v1/me/households",
        PEOPLE_ONLY,
        fixed("/api/v1/me/households"),
        "people: the households paired with them (none for most)",
    ),
    Row(
        "GET",
        "/api/v1/dispatch/pairing-shortfalls",
        _staff(admin=200, dispatcher_c1=200, dispatcher_c2=200),
        fixed("/api/v1/dispatch/pairing-shortfalls"),
        "staff: the party members of their area short of PAIRING_MIN",
    ),
    Row(
        "GET",
        "/api/v1/admin/audit",
        _staff(admin=200, dispatcher_c1=200, dispatcher_c2=404),
        _household_audit,
        "admin; a dispatcher, of a household of its area only",
    ),
    Row(
        "POST",
        "/api/v1/auth/logout",
        cells(people=204, anonymous=401, api_key=403),
        fixed("/api/v1/auth/logout"),
        "people only (ends the session)",
    ),
)


def render() -> str:
    """The Markdown table of docs/security.md."""
    head = "| route | " + " | ".join(LABELS[p] for p in PRINCIPALS) + " | who |"
    rule = "|---|" + "---|" * len(PRINCIPALS) + "---|"
    lines = [head, rule]
    for row in ROWS:
        statuses = " | ".join(str(row.expected[p]) for p in PRINCIPALS)
        lines.append(f"| `{row.method} {row.template}` | {statuses} | {row.note} |")
    return "\n".join(lines) + "\n"


DOC = Path(__file__).resolve().parents[1] / "docs" / "security.md"
START, END = "<!-- matrix:start -->\n", "<!-- matrix:end -->"


def documented() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index(START) + len(START) : text.index(END)]


def write() -> None:
    text = DOC.read_text(encoding="utf-8")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    DOC.write_text(before + START + render() + END + after, encoding="utf-8")


if __name__ == "__main__":
    if "--write" in sys.argv:
        write()
    else:
        sys.stdout.write(render())
