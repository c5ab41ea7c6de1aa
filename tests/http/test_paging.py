"""One paging shape for every list (issue 12, item 5): `data` and a
`next_cursor` that is always present, null on the last page; the next page
is asked for with `cursor`, the events of a call too (`after` still works)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import openapi_document
from tests.problems import assert_problem
from tests.scene import clear_duty_near, make_resident, make_team, offset

LAT, LNG = 22.775, 113.935


def _list_schemas(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every schema a 200 answers with whose `data` is an array: a list."""
    schemas = spec["components"]["schemas"]
    found = {}
    for item in spec["paths"].values():
        for operation in item.values():
            content = operation["responses"].get("200", {}).get("content", {})
            ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
            name = ref.rsplit("/", 1)[-1]
            data = schemas.get(name, {}).get("properties", {}).get("data", {})
            if data.get("type") == "array":
                found[name] = schemas[name]
    return found


# Lists whose answer says more than its page (API.md 1.1 writes their shape).
ABOUT_THE_LIST = {
    "QuotaReport": {"month", "required"},
    "MyMonth": {"month", "required", "full_time", "counted", "short_by"},
}


def test_every_list_has_a_required_nullable_next_cursor() -> None:
    lists = _list_schemas(openapi_document())
    assert {"CallList", "OfferList", "EventList", "NotificationList", "NearbyTeamList"} <= set(
        lists
    )
    for name, schema in lists.items():
        expected = {"data", "next_cursor"} | ABOUT_THE_LIST.get(name, set())
        assert set(schema["required"]) == expected, name
        assert schema["properties"]["next_cursor"]["anyOf"] == [
            {"type": "string"},
            {"type": "null"},
        ], name


def test_every_paged_list_takes_a_cursor() -> None:
    spec = openapi_document()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            names = {p["name"] for p in operation.get("parameters", ())}
            if "limit" in names and path != "/api/v1/teams/nearby":
                assert "cursor" in names, (method, path)


async def test_events_page_by_cursor_or_after(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=2)
    resident = await make_resident(session, settings)
    pressed = await anon_client.post(
        "/api/v1/calls", json={"location": {"lat": LAT, "lng": LNG}}, headers=resident.headers
    )
    assert pressed.status_code == 201, pressed.text
    path = f"/api/v1/calls/{pressed.json()['id']}/events"

    whole = (await anon_client.get(path, headers=resident.headers)).json()
    ids = [e["id"] for e in whole["data"]]
    assert len(ids) >= 2
    assert whole["next_cursor"] is None

    seen: list[int] = []
    params: dict[str, Any] = {"limit": 1}
    for _ in ids:
        page = (await anon_client.get(path, params=params, headers=resident.headers)).json()
        seen += [e["id"] for e in page["data"]]
        if page["next_cursor"] is None:
            break
        params = {"limit": 1, "cursor": page["next_cursor"]}
    assert seen == ids, "the cursor must move the page on"

    by_after = await anon_client.get(path, params={"after": ids[0]}, headers=resident.headers)
    both = await anon_client.get(
        path, params={"after": ids[0], "cursor": str(ids[0])}, headers=resident.headers
    )
    assert [e["id"] for e in by_after.json()["data"]] == ids[1:]
    assert both.json()["data"] == by_after.json()["data"]

    disagree = await anon_client.get(
        path, params={"after": ids[0], "cursor": str(ids[1])}, headers=resident.headers
    )
    assert_problem(disagree, 422, "invalid_cursor")
    for bad in ("x", "-1", "1.5", "99999999999999999999999"):
        response = await anon_client.get(path, params={"cursor": bad}, headers=resident.headers)
        assert_problem(response, 422, "invalid_cursor")
