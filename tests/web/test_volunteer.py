"""The volunteer's view in the browser: going on duty with the phone's
position, an offer that rings, accepting it and taking the call through to
resolved (catching up after a lost connection), declining, the households
paired with the member, logging an activity and the month against the quota."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from tests.conftest import make_settings
from tests.live import (
    Ledger,
    LiveServer,
    committed_person,
    committed_team,
    park,
    phone_of,
    spots,
)
from tests.scene import Member, SceneTeam, offset
from tests.web.browser import (
    DESKTOP,
    PHONE,
    cut_live,
    looked_at,
    person_page,
    shot,
    sign_in,
)

pytestmark = pytest.mark.processes

SETTINGS = {"search_radius_m": 400, "double_tap_seconds": 0, "run_sweeper": "false"}

# Every Notification the page makes, recorded before the real one is shown.
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notes = [];
  class Recorded extends Real {
    constructor(title, options) {
      window.__notes.push({ title, body: options && options.body });
      super(title, options);
    }
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""


@dataclass
class Scene:
    server: LiveServer
    settings: Settings
    spot: tuple[float, float]
    team: SceneTeam
    member: Member
    phone: str


@asynccontextmanager
async def scene(
    engine: AsyncEngine, database_url: str, ledger: Ledger, tmp_path: Path, index: int, **team: Any
) -> AsyncIterator[Scene]:
    """A server, a spot of the district with no seeded volunteer on duty
    near it, and a committed one-member team based 30 m from it."""
    settings = make_settings(database_url)
    spot = (await spots(engine, 3, 2500))[index]
    await park(engine, ledger, *spot, 1500)
    made = await committed_team(engine, settings, ledger, *offset(*spot, 30, 0), members=1, **team)
    server = LiveServer(database_url, tmp_path / "server.log", SETTINGS)
    try:
        await server.wait_ready()
        member = made.members[0]
        yield Scene(server, settings, spot, made, member, await phone_of(engine, member.person_id))
    finally:
        server.stop()


async def press(engine: AsyncEngine, s: Scene, ledger: Ledger, category: str = "visit") -> str:
    """A resident presses the button 20 m from the spot; the call's id."""
    resident = await committed_person(engine, s.settings, ledger)
    async with httpx.AsyncClient(base_url=s.server.url) as client:
        pressed = await client.post(
            "/api/v1/calls",
            json={"location": _point(offset(*s.spot, 0, 20)), "category": category},
            headers=resident.headers,
        )
    assert pressed.status_code == 201, pressed.text
    return str(pressed.json()["id"])


def _point(at: tuple[float, float]) -> dict[str, float]:
    return {"lat": at[0], "lng": at[1], "accuracy_m": 8.0}


async def open_volunteer(page: Page, phone: str) -> None:
    await page.add_init_script(RECORD_NOTIFICATIONS)
    await sign_in(page, phone, view="volunteer")
    await expect(page.locator("[data-live=live]")).to_be_visible(timeout=10_000)


async def test_on_duty_an_offer_rings_and_is_taken_to_resolved_across_a_lost_connection(
    browser: Browser, engine: AsyncEngine, database_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    async with scene(engine, database_url, ledger, tmp_path, 0, on_duty=0) as s:
        here = offset(*s.spot, 25, 0)
        async with person_page(browser, s.server.url, size=PHONE, at=here) as page:
            await open_volunteer(page, s.phone)
            duty = page.locator(".duty-card")
            await expect(duty).to_have_attribute("data-on-duty", "false")
            await looked_at(page, "volunteer-off-duty-phone", top=False)

            await page.get_by_role("button", name="开始上岗").click()
            await expect(duty).to_have_attribute("data-on-duty", "true")
            await expect(page.get_by_text("正在等待呼叫…")).to_be_visible()
            async with engine.connect() as conn:
                row = (
                    await conn.execute(
                        text(
                            "SELECT on_duty, ST_Y(location::geometry) AS lat, "
                            "ST_X(location::geometry) AS lng FROM duty WHERE person_id = :p"
                        ),
                        {"p": s.member.person_id},
                    )
                ).one()
            assert row.on_duty is True
            assert (round(row.lat, 6), round(row.lng, 6)) == (
                round(here[0], 6),
                round(here[1], 6),
            ), "the browser's position is the duty's"
            await looked_at(page, "volunteer-waiting-phone", top=False)

            call_id = await press(engine, s, ledger, "visit")
            offer = page.locator(".offer-card")
            await expect(offer).to_be_visible(timeout=10_000)
            await expect(offer).to_contain_text("上门探访")
            await expect(offer).to_contain_text("米")
            await expect(offer).to_contain_text("大约位置")
            notes = await page.evaluate("window.__notes")
            assert len(notes) == 1, notes
            assert "上门探访" in notes[0]["title"]
            said = notes[0]["title"] + notes[0]["body"]
            assert "呼叫居民" not in said, "no personal data in a notification"
            await looked_at(page, "volunteer-offer-phone", top=False)

            await offer.get_by_role("button", name="接单").click()
            card = page.locator(".call-card")
            await expect(card).to_have_attribute("data-call", call_id)
            exact = offset(*s.spot, 0, 20)
            await expect(card.locator(".exact-point")).to_contain_text(f"{exact[0]:.6f}")
            navigate = card.get_by_role("link", name="高德地图导航")
            assert await navigate.get_attribute("target") == "_blank"
            href = await navigate.get_attribute("href") or ""
            assert href.startswith("https://uri.amap.com/marker?position=")
            assert f"{exact[1]},{exact[0]}" in href
            assert (
                await card.get_by_role("link", name="用手机地图打开").get_attribute("href") or ""
            ).startswith(f"geo:{exact[0]},{exact[1]}")
            await looked_at(page, "volunteer-call-phone", top=False)

            await card.get_by_role("button", name="出发").click()
            await expect(card).to_have_attribute("data-status", "en_route")

            # The connection is lost; meanwhile the call moves on (the member's
            # other phone says they arrived). Back online, the page catches up
            # without a reload.
            await page.context.set_offline(True)
            await cut_live(page)
            await expect(page.locator("[data-live=live]")).to_have_count(0)
            async with httpx.AsyncClient(base_url=s.server.url) as client:
                moved = await client.post(
                    f"/api/v1/calls/{call_id}/progress",
                    json={"status": "on_site"},
                    headers=s.member.headers,
                )
            assert moved.status_code == 200, moved.text
            await page.wait_for_timeout(1000)
            await expect(card).to_have_attribute("data-status", "en_route")
            await page.context.set_offline(False)
            await expect(card).to_have_attribute("data-status", "on_site", timeout=15_000)
            await expect(page.locator("[data-live=live]")).to_be_visible()

            await card.get_by_role("button", name="已解决").click()
            await expect(page.get_by_text("呼叫已解决，谢谢您的服务！")).to_be_visible()
            await expect(page.locator(".call-card")).to_have_count(0)
            await expect(page.get_by_text("正在等待呼叫…")).to_be_visible()
            # The resolved call is an activity of the month, from a call.
            month = page.locator(".my-month")
            await expect(month).to_contain_text("本月已参加 1 次服务活动")
            await expect(month).to_contain_text("来自呼叫")
            await looked_at(page, "volunteer-resolved-phone", top=False)

            await page.get_by_role("button", name="下岗休息").click()
            await expect(duty).to_have_attribute("data-on-duty", "false")
        async with engine.connect() as conn:
            status = (
                await conn.execute(text("SELECT status FROM call WHERE id = :c"), {"c": call_id})
            ).scalar_one()
            on_duty = (
                await conn.execute(
                    text("SELECT on_duty FROM duty WHERE person_id = :p"),
                    {"p": s.member.person_id},
                )
            ).scalar_one()
        assert (status, on_duty) == ("resolved", False)


async def test_a_volunteer_declines_then_takes_the_next_call_on_a_desktop(
    browser: Browser, engine: AsyncEngine, database_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    async with scene(engine, database_url, ledger, tmp_path, 1) as s:
        here = offset(*s.spot, 30, 0)
        async with person_page(browser, s.server.url, size=DESKTOP, at=here) as page:
            await open_volunteer(page, s.phone)
            # On duty already (the roster says so): waiting, position shared.
            await expect(page.locator(".duty-card")).to_have_attribute("data-on-duty", "true")
            await expect(page.get_by_text("正在等待呼叫…")).to_be_visible()
            await looked_at(page, "volunteer-waiting-desktop", top=False)

            first = await press(engine, s, ledger, "urgent")
            offer = page.locator(".offer-card")
            await expect(offer).to_contain_text("紧急求助", timeout=10_000)
            await looked_at(page, "volunteer-offer-desktop", top=False)
            await offer.get_by_role("button", name="不接").click()
            await offer.get_by_label("不接的原因（可不填）").fill("正在医院，走不开")
            await looked_at(page, "volunteer-decline-desktop", top=False)
            await offer.get_by_role("button", name="确认不接").click()
            await expect(page.get_by_text("已告知：您这次不接")).to_be_visible()
            await expect(page.locator(".offer-card")).to_have_count(0)
            async with httpx.AsyncClient(base_url=s.server.url) as client:
                offers = await client.get("/api/v1/offers", headers=s.member.headers)
            mine = [o for o in offers.json()["data"] if o["call_id"] == first]
            assert [o["status"] for o in mine] == ["declined"], mine

            second = await press(engine, s, ledger, "safety")
            await expect(page.locator(".offer-card")).to_contain_text("平安守护", timeout=10_000)
            await page.locator(".offer-card").get_by_role("button", name="接单").click()
            await expect(page.locator(".call-card")).to_have_attribute("data-call", second)
            await looked_at(page, "volunteer-call-desktop", top=False)
            # English too, on the same state.
            await page.get_by_role("button", name="Switch to English").click()
            await expect(page.get_by_role("button", name="On my way")).to_be_visible()
            await looked_at(page, "volunteer-call-desktop-en", top=False)


async def _paired_household(engine: AsyncEngine, s: Scene) -> uuid.UUID:
    household_id = uuid.uuid4()
    async with engine.begin() as conn:
        grid = (
            await conn.execute(text("SELECT grid_id FROM team WHERE id = :t"), {"t": s.team.id})
        ).scalar_one()
        await conn.execute(
            text(
                """
                INSERT INTO household (id, address, grid_id, location, vulnerabilities)
                VALUES (:id, '光明街道翠湖社区12栋301', :grid,
                        ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography,
                        '{elderly,disabled}')
                """
            ),
            {"id": household_id, "grid": grid, "lat": s.spot[0], "lng": s.spot[1]},
        )
        await conn.execute(
            text("INSERT INTO household_pairing (person_id, household_id) VALUES (:p, :h)"),
            {"p": s.member.person_id, "h": household_id},
        )
    return household_id


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_households_an_activity_logged_and_the_month_against_the_quota(
    browser: Browser,
    engine: AsyncEngine,
    database_url: str,
    ledger: Ledger,
    tmp_path: Path,
    size: str,
) -> None:
    async with scene(engine, database_url, ledger, tmp_path, 2, on_duty=0) as s:
        household = await _paired_household(engine, s)
        try:
            viewport = PHONE if size == "phone" else DESKTOP
            async with person_page(browser, s.server.url, size=viewport, at=s.spot) as page:
                await open_volunteer(page, s.phone)
                month = page.locator(".my-month")
                await expect(month).to_contain_text("本月已参加 0 次服务活动")
                await expect(month).to_contain_text("每月要求 3 次，还差 3 次")
                item = page.locator(f"[data-household='{household}']")
                await expect(item).to_contain_text("光明街道翠湖社区12栋301")
                await expect(item).to_contain_text("高龄老人")
                await expect(item).to_contain_text("残疾")

                await item.get_by_role("button", name="为这户记一次服务").click()
                form = page.locator(".activity-form")
                await expect(form.locator("select[name=household]")).to_have_value(str(household))
                await form.locator("select[name=kind]").select_option("visit")
                await form.locator("input[name=duration]").fill("45")
                await form.locator("textarea[name=note]").fill("陪老人去社康复诊")
                await form.get_by_role("button", name="保存记录").click()
                await expect(form.get_by_text("已记录，谢谢您！")).to_be_visible()
                await expect(month).to_contain_text("本月已参加 1 次服务活动")
                await expect(month).to_contain_text("还差 2 次")
                await expect(month).to_contain_text("陪老人去社康复诊")
                async with engine.connect() as conn:
                    logged = (
                        await conn.execute(
                            text(
                                "SELECT kind, duration_min, household_id, source FROM activity "
                                "WHERE person_id = :p"
                            ),
                            {"p": s.member.person_id},
                        )
                    ).one()
                assert tuple(logged) == ("visit", 45, household, "logged")
                await page.evaluate("window.scrollTo(0, 0)")
                await looked_at(page, f"volunteer-service-{size}", top=False)
                await form.scroll_into_view_if_needed()
                await shot(page, f"volunteer-activity-form-{size}")
        finally:
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM household WHERE id = :h"), {"h": household})
