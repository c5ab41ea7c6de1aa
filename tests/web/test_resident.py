"""The resident's view (web/src/views/resident/) in a real browser against a
real server: press with the phone's position (or a chosen point when it is
refused), follow the call live through a lost connection, cancel, rate,
dispute; every state checked by axe, for 48 px targets, and photographed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tests.live import Ledger, LiveServer, column, committed_team, park, person_with, spots
from tests.principals import next_phone
from tests.scene import SceneTeam, offset
from tests.web.browser import (
    DESKTOP,
    PHONE,
    cut_live,
    looked_at,
    person_page,
    sign_in,
)

pytestmark = pytest.mark.processes

SETTINGS = {"search_radius_m": 400, "double_tap_seconds": 0, "run_sweeper": "false"}
API = "/api/v1"


@pytest.fixture(scope="module")
async def server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    live = LiveServer(database_url, tmp_path_factory.mktemp("resident") / "server.log", SETTINGS)
    try:
        await live.wait_ready()
        yield live
    finally:
        live.stop()


async def scene(
    engine: AsyncEngine, database_url: str, ledger: Ledger, index: int
) -> tuple[tuple[float, float], SceneTeam]:
    """A spot of the district with the test's own team 30 m from it (the
    seeded volunteers near it parked), so that a press there is offered to it."""
    spot = (await spots(engine, 6, 1500))[index]
    await park(engine, ledger, *spot, 1500)
    team = await committed_team(
        engine, make_settings(database_url), ledger, *offset(*spot, 30, 0), members=3
    )
    return spot, team


async def signed_in_resident(page: Page, engine: AsyncEngine, ledger: Ledger) -> uuid.UUID:
    phone = next_phone()
    await sign_in(page, phone, "resident")
    person: uuid.UUID = await person_with(engine, phone)
    ledger.persons.append(person)
    return person


async def press(page: Page) -> str:
    """Press the button; the id of the call the page then follows."""
    await page.locator("button.call-button").click()
    view = page.locator(".call-view")
    await expect(view).to_be_visible(timeout=10_000)
    call_id = await view.get_attribute("data-call-id")
    assert call_id
    return call_id


async def accept(http: httpx.AsyncClient, member: Any, call_id: str) -> dict[str, Any]:
    """The member finds the open offer of the call and accepts it."""
    offers = (
        await http.get(f"{API}/offers", params={"status": "open"}, headers=member.headers)
    ).json()
    (offer,) = [o for o in offers["data"] if o["call_id"] == call_id]
    answer = await http.post(f"{API}/offers/{offer['id']}/accept", headers=member.headers)
    assert answer.status_code == 200, answer.text
    call: dict[str, Any] = answer.json()
    return call


async def progress(http: httpx.AsyncClient, member: Any, call_id: str, status: str) -> None:
    answer = await http.post(
        f"{API}/calls/{call_id}/progress", json={"status": status}, headers=member.headers
    )
    assert answer.status_code == 200, answer.text


async def execute(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


HEADLINES = {
    "zh": {"offered": "已通知附近的党员服务队", "en_route": "正在赶来", "resolved": "已完成"},
    "en": {
        "offered": "A team near you has been alerted",
        "en_route": "is on the way",
        "resolved": "Done",
    },
}


@pytest.mark.parametrize(
    ("label", "size", "locale"),
    [("phone", PHONE, "zh-CN"), ("desktop", DESKTOP, "zh-CN"), ("phone-en", PHONE, "en-GB")],
)
async def test_a_resident_presses_follows_the_call_live_through_a_cut_and_rates_it(
    browser: Browser,
    engine: AsyncEngine,
    database_url: str,
    ledger: Ledger,
    server: LiveServer,
    label: str,
    size: dict[str, int],
    locale: str,
) -> None:
    spot, team = await scene(engine, database_url, ledger, 0)
    words = HEADLINES[locale[:2]]
    member = team.members[0]
    async with (
        person_page(browser, server.url, size=size, at=spot, locale=locale) as page,
        httpx.AsyncClient(base_url=server.url, timeout=10) as http,
    ):
        await signed_in_resident(page, engine, ledger)
        await expect(page.locator(".where-gps")).to_be_visible(timeout=10_000)
        # The team next to the spot, with its members ("see and find").
        own = page.locator(".nearby .team").filter(has_text="测试队")
        await expect(own.locator(".team-name")).to_have_text("测试队", timeout=10_000)
        await own.locator("button[aria-expanded]").click()
        roster = len(team.members) + len(team.reserves)
        await expect(own.locator(".members li")).to_have_count(roster)
        await looked_at(page, f"resident-press-{label}")

        await page.locator("button.chip[data-category=visit]").click()
        call_id = await press(page)
        status = page.locator(".call-status")
        await expect(status).to_contain_text(words["offered"])
        await expect(page.locator(".step[data-step=offered]")).to_have_class("step step-current")
        assert await column(engine, "SELECT category FROM call WHERE id = :c", c=call_id) == "visit"
        await looked_at(page, f"resident-offered-{label}")

        name = (await accept(http, member, call_id))["responder"]["display_name"]
        await expect(page.locator(".call-view")).to_have_attribute("data-status", "accepted")
        await expect(page.locator(".responder-name")).to_have_text(name)
        await expect(status).to_contain_text(name)

        there = offset(*spot, 25, 5)
        point = {"lat": there[0], "lng": there[1], "accuracy_m": 8}
        duty = await http.put(
            f"{API}/me/duty", json={"on_duty": True, "location": point}, headers=member.headers
        )
        assert duty.status_code == 200, duty.text
        await progress(http, member, call_id, "en_route")
        moved = await http.put(f"{API}/me/location", json=point, headers=member.headers)
        assert moved.status_code == 204, moved.text
        await expect(status).to_contain_text(words["en_route"])
        responder_pin = page.locator(".pin-responder")
        await expect(responder_pin).to_have_text(name, timeout=15_000)
        await expect(page.locator(".resident-map[data-state=ready]")).to_have_attribute(
            "data-responder", f"{there[0]},{there[1]}"
        )
        await page.wait_for_timeout(300)  # the map's first frame
        await looked_at(page, f"resident-en-route-{label}")

        # The socket goes down; the last two steps happen meanwhile.
        await page.context.set_offline(True)
        await cut_live(page)
        await expect(page.locator("[data-live=connecting]")).to_be_visible()
        await progress(http, member, call_id, "on_site")
        await progress(http, member, call_id, "resolved")
        await page.wait_for_timeout(1000)
        await expect(page.locator(".call-view")).to_have_attribute("data-status", "en_route")
        await page.context.set_offline(False)
        # Caught up without a reload: every step of the timeline reached.
        await expect(page.locator(".call-view")).to_have_attribute(
            "data-status", "resolved", timeout=15_000
        )
        await expect(status).to_contain_text(words["resolved"])
        for step in ("searching", "offered", "accepted", "en_route", "on_site", "resolved"):
            await expect(page.locator(f".step[data-step={step}] time")).to_be_visible()
        await expect(responder_pin).to_have_count(0)
        await looked_at(page, f"resident-rating-{label}")

        await page.locator("button.star").nth(4).click()
        await expect(page.locator("button.star[aria-pressed=true]")).to_have_count(1)
        await page.locator(".rating button.primary").click()
        await expect(page.locator(".rated")).to_be_visible()
        stars = await column(engine, "SELECT stars FROM rating WHERE call_id = :c", c=call_id)
        assert stars == 5
        await looked_at(page, f"resident-rated-{label}")


@pytest.mark.parametrize(("label", "size"), [("phone", PHONE), ("desktop", DESKTOP)])
async def test_when_the_position_is_refused_the_resident_chooses_a_point_and_the_call_is_there(
    browser: Browser,
    engine: AsyncEngine,
    ledger: Ledger,
    server: LiveServer,
    label: str,
    size: dict[str, int],
) -> None:
    (spot,) = (await spots(engine, 6, 1500))[1:2]
    async with engine.connect() as conn:
        grid_id, grid_name = (
            await conn.execute(
                text(
                    "SELECT id, name FROM area WHERE level = 'grid' AND ST_Contains(boundary,"
                    " ST_SetSRID(ST_MakePoint(:lng, :lat), 4326))"
                ),
                {"lat": spot[0], "lng": spot[1]},
            )
        ).one()
    async with person_page(browser, server.url, size=size, at=spot, geolocation=False) as page:
        await signed_in_resident(page, engine, ledger)
        await expect(page.locator(".where-refused")).to_be_visible(timeout=10_000)
        # Pressing before choosing a place asks for one; nothing is sent.
        await page.locator("button.call-button").click()
        await expect(page.get_by_role("alert")).to_contain_text("请先选择您的位置")
        map_box = page.locator(".resident-map-pick[data-state=ready]")
        await expect(map_box).to_be_visible(timeout=15_000)
        await map_box.click()
        await expect(page.locator(".pin-chosen")).to_be_visible()
        await expect(page.locator(".where-map")).to_be_visible()
        await page.wait_for_timeout(300)
        await looked_at(page, f"resident-choose-point-{label}")

        await page.locator("select[name=grid]").select_option(label=grid_name)
        await expect(page.locator(".where-grid")).to_contain_text(grid_name)
        call_id = await press(page)
        assert await column(engine, "SELECT resident_id FROM call WHERE id = :c", c=call_id)
        assert str(
            await column(engine, "SELECT grid_id FROM call WHERE id = :c", c=call_id)
        ) == str(grid_id)
        assert await column(
            engine,
            "SELECT ST_Contains(a.boundary, c.location::geometry) FROM call c, area a"
            " WHERE c.id = :c AND a.id = :g",
            c=call_id,
            g=grid_id,
        )
        await expect(page.locator(".call-view .hint")).to_contain_text(grid_name)
        await looked_at(page, f"resident-chosen-call-{label}")


async def test_a_resident_reopens_on_the_open_call_and_cancels_it(
    browser: Browser, engine: AsyncEngine, database_url: str, ledger: Ledger, server: LiveServer
) -> None:
    spot, _team = await scene(engine, database_url, ledger, 2)
    async with person_page(browser, server.url, at=spot) as page:
        await signed_in_resident(page, engine, ledger)
        await expect(page.locator(".where-gps")).to_be_visible(timeout=10_000)
        call_id = await press(page)
        await expect(page.locator(".call-view")).to_have_attribute("data-status", "offered")
        # Coming back to the app opens on the open call.
        await page.reload()
        await expect(page.locator(f".call-view[data-call-id='{call_id}']")).to_be_visible()
        await expect(page.locator(".step[data-step=searching] time")).to_be_visible()

        await page.get_by_role("button", name="取消呼叫").click()
        await expect(page.get_by_role("alertdialog")).to_be_in_viewport()
        await looked_at(page, "resident-cancel-confirm-phone", top=False)
        await page.get_by_role("button", name="是，取消呼叫").click()
        await expect(page.locator(".call-view")).to_have_attribute("data-status", "cancelled")
        await expect(page.locator(".call-status")).to_have_text("呼叫已取消")
        await expect(page.locator(".step[data-step=cancelled] time")).to_be_visible()
        assert (
            await column(engine, "SELECT status FROM call WHERE id = :c", c=call_id) == "cancelled"
        )
        await page.get_by_role("button", name="返回首页").click()
        await expect(page.locator("button.call-button")).to_be_visible()


async def test_a_resident_disputes_a_resolved_call_within_the_window_and_not_after(
    browser: Browser, engine: AsyncEngine, database_url: str, ledger: Ledger, server: LiveServer
) -> None:
    spot, team = await scene(engine, database_url, ledger, 3)
    member = team.members[1]
    async with (
        person_page(browser, server.url, size=DESKTOP, at=spot) as page,
        httpx.AsyncClient(base_url=server.url, timeout=10) as http,
    ):
        await signed_in_resident(page, engine, ledger)
        await expect(page.locator(".where-gps")).to_be_visible(timeout=10_000)
        call_id = await press(page)
        await accept(http, member, call_id)
        await progress(http, member, call_id, "on_site")
        await progress(http, member, call_id, "resolved")
        await expect(page.locator(".call-view")).to_have_attribute("data-status", "resolved")

        # Past the window: the API's answer is shown, nothing changes.
        await execute(
            engine,
            "UPDATE call SET closed_at = now() - interval '100 hours' WHERE id = :c",
            c=call_id,
        )
        await page.get_by_role("button", name="问题没有解决？申诉").click()
        await page.locator("textarea[name=reason]").fill("水管还在漏水")
        await page.get_by_role("button", name="提交申诉").click()
        await expect(page.locator(".dispute .error")).to_have_text("已过了申诉期限")
        await looked_at(page, "resident-dispute-closed-desktop")
        assert await column(engine, "SELECT disputed_at FROM call WHERE id = :c", c=call_id) is None

        # Within it: the call goes back to the community.
        await execute(engine, "UPDATE call SET closed_at = now() WHERE id = :c", c=call_id)
        await page.get_by_role("button", name="提交申诉").click()
        await expect(page.locator(".call-view")).to_have_attribute("data-status", "escalated")
        await expect(page.locator(".call-status")).to_have_text("您的申诉已转交社区处理")
        await expect(page.locator(".step[data-step=escalated]")).to_have_class("step step-current")
        assert await column(engine, "SELECT dispute_reason FROM call WHERE id = :c", c=call_id) == (
            "水管还在漏水"
        )
        await looked_at(page, "resident-disputed-desktop")
