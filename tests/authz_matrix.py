"""The authorization matrix: every route × every kind of caller → status.

`tests/test_authz_matrix.py` checks each cell against the running app and
fails when a route has no row. `docs/security.md` shows this table; refresh
it with `python -m tests.authz_matrix --write`.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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


async def _member_of_x(_: AsyncSession, cast: Cast) -> Call:
    body = {"phone": next_phone(), "display_name": "矩阵队员", "kind": "part_time"}
    return Call(f"/api/v1/admin/teams/{cast.team_x}/members", json=body)


async def _dispatcher(_: AsyncSession, cast: Cast) -> Call:
    body = {"phone": next_phone(), "display_name": "矩阵调度", "area_id": str(cast.community_1)}
    return Call("/api/v1/admin/dispatchers", json=body)


async def _disable(session: AsyncSession, _: Cast) -> Call:
    target = await make_person(session, "被停用者")
    return Call(f"/api/v1/admin/persons/{target}/disable")


DEVICE = "matrix-device-token:0123456789"

# Rows run in this order for each caller; logout comes last, since it ends
# the caller's session.
ROWS: tuple[Row, ...] = (
    Row("GET", "/healthz", cells(200), fixed("/healthz"), "public"),
    Row("GET", "/readyz", cells(200), fixed("/readyz"), "public"),
    Row("GET", "/metrics", cells(200), fixed("/metrics"), "public (scrape)"),
    Row("GET", "/openapi.json", cells(200), fixed("/openapi.json"), "public"),
    Row("GET", "/docs", cells(200), fixed("/docs"), "public"),
    Row("GET", "/docs/oauth2-redirect", cells(200), fixed("/docs/oauth2-redirect"), "public"),
    Row("GET", "/redoc", cells(200), fixed("/redoc"), "public"),
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
        cells(403, anonymous=401, volunteer_x=204, volunteer_y=204),
        fixed("/api/v1/me/location", json=POINT),
        "team members on duty (409 `not_on_duty` otherwise)",
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
