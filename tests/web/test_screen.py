"""The public screen view (#/screen/<area>[/<screen>]): today's figures kept
current by the feed's Server-Sent Events stream, nothing that names or
locates a resident, and on a registered screen the big call button, the
keypad, 'help is coming' with the team's name, and back to the figures."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.areas import service as areas
from tests.conftest import make_settings
from tests.live import (
    Ledger,
    LiveServer,
    committed_person,
    committed_team,
    park,
    person_with,
    phone_of,
    spots,
)
from tests.principals import next_phone
from tests.scene import SceneTeam, offset
from tests.web.browser import (
    PHONE,
    assert_accessible,
    figure,
    person_page,
    shot,
    small_touch_targets,
)

pytestmark = pytest.mark.processes

WALL = {"width": 1920, "height": 1080}
KIOSK = {"width": 1080, "height": 1920}
# The feed is computed at most every 0.3 s and the stream looks every 1 s,
# and calls are listed at once (the 300 s delay is for real screens).
SERVER = {
    "screen_delay_seconds": 0,
    "screen_cache_seconds": 0.3,
    "screen_stream_seconds": 1,
    "run_sweeper": "false",
}
RESIDENT_NAME = "屏幕测试居民欧阳秀英"
NOTE = "我家在幸福里七栋三单元，老伴摔倒了"


async def _scene(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> tuple[float, float, uuid.UUID, SceneTeam, str]:
    """A spot with only our team on duty nearby, its community and the team's name."""
    settings = make_settings(database_url)
    ((lat, lng),) = await spots(engine, 1, 2000)
    await park(engine, ledger, lat, lng, 3000)
    team = await committed_team(engine, settings, ledger, *offset(lat, lng, 40, 30), members=3)
    async with AsyncSession(engine) as session:
        community = (await areas.locate_ids(session, lat, lng)).community
        name = (
            await session.execute(text("SELECT name FROM team WHERE id = :t"), {"t": team.id})
        ).scalar_one()
    return lat, lng, community, team, name


async def _take(http: httpx.AsyncClient, team: SceneTeam, call_id: str, *steps: str) -> None:
    """A member of the team accepts the call's offer and moves it on."""
    member = team.members[0].headers
    offers = (await http.get("/api/v1/offers?status=open", headers=member)).json()["data"]
    offer = next(o for o in offers if o["call_id"] == call_id)
    accepted = await http.post(f"/api/v1/offers/{offer['id']}/accept", headers=member)
    assert accepted.status_code == 200, accepted.text
    for step in steps:
        moved = await http.post(
            f"/api/v1/calls/{call_id}/progress", json={"status": step}, headers=member
        )
        assert moved.status_code == 200, moved.text


async def test_a_community_screen_shows_today_and_follows_a_call_without_reload(
    browser: Browser, engine: AsyncEngine, database_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    settings = make_settings(database_url)
    lat, lng, community, team, _ = await _scene(engine, database_url, ledger)
    resident = await committed_person(engine, settings, ledger, RESIDENT_NAME)
    phone = await phone_of(engine, resident.person_id)
    server = LiveServer(database_url, tmp_path / "server.log", SERVER)
    try:
        await server.wait_ready()
        async with (
            person_page(browser, server.url, size=WALL) as page,
            httpx.AsyncClient(base_url=server.url) as http,
        ):
            await page.goto(f"/app/#/screen/{community}")
            await expect(page.locator("[data-stream=live]")).to_be_visible(timeout=10_000)
            await expect(page.get_by_role("heading", name="党群亮服务")).to_be_visible()
            calls, resolved = await figure(page, "calls"), await figure(page, "resolved")
            # No key on this device: the figures only, no call button.
            await expect(page.locator(".screen-call")).to_have_count(0)
            marker = await page.evaluate("window.screenMarker = 1")

            pressed = await http.post(
                "/api/v1/calls",
                json={"location": {"lat": lat, "lng": lng}, "category": "visit", "note": NOTE},
                headers=resident.headers,
            )
            assert pressed.status_code == 201, pressed.text
            calls_shown = page.locator("[data-figure=calls] .figure-value")
            await expect(calls_shown).to_contain_text(str(calls + 1), timeout=10_000)
            await _take(http, team, pressed.json()["id"], "en_route", "on_site", "resolved")
            await expect(page.locator("[data-figure=resolved] .figure-value")).to_contain_text(
                str(resolved + 1), timeout=10_000
            )
            await expect(page.locator(".screen-recent li").first).to_contain_text("上门探访")
            await expect(page.locator(".screen-recent li").first).to_contain_text("已办结")
            assert await page.evaluate("window.screenMarker") == marker, "the page reloaded"

            # Nothing names or locates the resident, in the text or the markup.
            shown = await page.locator("body").inner_text()
            markup = await page.content()
            national = phone.removeprefix("+86")
            for secret in (RESIDENT_NAME, phone, national, national[-4:] + " ", NOTE, "幸福里"):
                assert secret not in shown, secret
                assert secret not in markup, secret
            for coordinate in (f"{lat:.4f}", f"{lng:.4f}"):
                assert coordinate not in markup

            await assert_accessible(page, context="the screen")
            # On the wall nothing scrolls: every panel holds what it shows.
            clipped = await page.evaluate(
                """[...document.querySelectorAll('.screen-left, .screen-teams, .screen-right')]
                    .filter(e => e.scrollHeight > e.clientHeight + 1).map(e => e.className)"""
            )
            assert clipped == []
            assert await small_touch_targets(page) == []
            await shot(page, "screen-wall")
        async with person_page(browser, server.url, size=PHONE) as page:
            await page.goto(f"/app/#/screen/{community}")
            await expect(page.locator("[data-stream=live]")).to_be_visible(timeout=10_000)
            await assert_accessible(page, context="the screen on a phone")
            await shot(page, "screen-phone")
            await shot(page, "screen-phone-full", full_page=True)
    finally:
        server.stop()


async def test_a_registered_screen_calls_a_member_for_a_walk_up_resident(
    browser: Browser, engine: AsyncEngine, database_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    settings = make_settings(database_url)
    lat, lng, community, team, team_name = await _scene(engine, database_url, ledger)
    dispatcher = await committed_person(
        engine, settings, ledger, "屏幕调度员", dispatcher_of=community
    )
    walk_up_phone = next_phone()
    digits = walk_up_phone.removeprefix("+86")
    server = LiveServer(database_url, tmp_path / "server.log", SERVER)
    screen: dict[str, Any] = {}
    try:
        await server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url) as http:
            made = await http.post(
                "/api/v1/admin/screens",
                json={
                    "name": "党群服务中心大堂",
                    "area_id": str(community),
                    "location": {"lat": lat, "lng": lng},
                },
                headers=dispatcher.headers,
            )
            assert made.status_code == 201, made.text
            screen = made.json()
            async with person_page(browser, server.url, size=WALL) as page:
                # The 'help is coming' screen stays 6 s here, not a minute.
                await page.add_init_script("localStorage.setItem('hulian.screen.back', '6')")
                await page.goto(f"/app/#/screen/{community}/{screen['id']}#key={screen['key']}")
                button = page.locator(".screen-call")
                await expect(button).to_be_visible(timeout=10_000)
                # The key left the address bar and stays on the device.
                assert "key=" not in page.url
                assert screen["key"] not in page.url
                stored = await page.evaluate(
                    f"localStorage.getItem('hulian.screen.key.{screen['id']}')"
                )
                assert stored == screen["key"]
                await expect(page.locator("[data-stream=live]")).to_be_visible(timeout=10_000)
                await shot(page, "screen-wall-button")

                await button.click()
                keypad = page.get_by_role("dialog")
                await expect(keypad.get_by_role("heading", name="请党员来帮忙")).to_be_visible()
                go = keypad.locator(".walkup-go")
                await expect(go).to_have_text("不留号码，直接呼叫")
                for digit in digits:
                    await keypad.get_by_role("button", name=digit, exact=True).click()
                shown = f"{digits[:3]} {digits[3:7]} {digits[7:]}"
                await expect(keypad.locator("output")).to_have_text(shown)
                await expect(go).to_have_text("呼叫党员")
                await assert_accessible(page, context="the keypad")
                assert await _small_keys(page, 64) == []
                await shot(page, "screen-wall-keypad")

                await go.click()
                await expect(page.get_by_role("heading", name="呼叫已发出")).to_be_visible(
                    timeout=10_000
                )
                await shot(page, "screen-wall-sent")
                call_id = await _screen_call(engine, screen["id"])
                person = await person_with(engine, walk_up_phone)
                assert person is not None, "the phone left made the call's resident"
                ledger.persons.append(person)

                await _take(http, team, call_id)
                coming = page.get_by_text(f"{team_name}的党员已接单")
                await expect(coming).to_be_visible(timeout=10_000)
                await expect(page.get_by_role("heading", name="党员正在赶来")).to_be_visible()
                text_now = await page.locator("body").inner_text()
                assert digits not in text_now, "the phone stayed on the screen"
                assert shown not in text_now, "the phone stayed on the screen"
                await assert_accessible(page, context="help is coming")
                await shot(page, "screen-wall-coming")
                # Back to the figures by itself.
                await expect(page.get_by_role("dialog")).to_have_count(0, timeout=12_000)
                await expect(button).to_be_visible()

                # Cancel on the keypad returns at once, and sends nothing.
                await button.click()
                await page.get_by_role("button", name="取消").click()
                await expect(page.get_by_role("dialog")).to_have_count(0)

                # Forget this screen: the button goes, and the key with it.
                await page.get_by_role("button", name="屏幕设置").click()
                await page.get_by_role("button", name="忘记这块屏幕的密钥").click()
                await expect(button).to_have_count(0)
                assert (
                    await page.evaluate(f"localStorage.getItem('hulian.screen.key.{screen['id']}')")
                    is None
                )
                # Set up again through the form.
                await page.get_by_role("button", name="屏幕设置").click()
                await page.get_by_label("屏幕密钥").fill(screen["key"])
                await shot(page, "screen-wall-setup")
                await page.get_by_role("button", name="保存").click()
                await expect(button).to_be_visible()

            async with person_page(browser, server.url, size=PHONE) as page:
                await page.goto(f"/app/#/screen/{community}/{screen['id']}#key={screen['key']}")
                await expect(page.locator(".screen-call")).to_be_visible(timeout=10_000)
                await shot(page, "screen-phone-button")
                await page.locator(".screen-call").click()
                await expect(page.get_by_role("dialog")).to_be_visible()
                await assert_accessible(page, context="the keypad on a phone")
                assert await _small_keys(page, 48) == []
                await shot(page, "screen-phone-keypad")
            async with person_page(browser, server.url, size=KIOSK) as page:
                await page.goto(f"/app/#/screen/{community}/{screen['id']}#key={screen['key']}")
                await expect(page.locator(".screen-call")).to_be_visible(timeout=10_000)
                await expect(page.locator("[data-stream=live]")).to_be_visible(timeout=10_000)
                await shot(page, "screen-kiosk")
    finally:
        server.stop()
        if screen:
            async with engine.begin() as conn:
                await conn.execute(
                    text("DELETE FROM call WHERE screen_id = :s"), {"s": screen["id"]}
                )
                await conn.execute(text("DELETE FROM screen WHERE id = :s"), {"s": screen["id"]})


async def _screen_call(engine: AsyncEngine, screen_id: str) -> str:
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                text("SELECT id FROM call WHERE screen_id = :s ORDER BY created_at DESC LIMIT 1"),
                {"s": screen_id},
            )
        ).scalar_one()
    return str(found)


async def _small_keys(page: Page, minimum: float) -> list[str]:
    """The keypad's and the dialog's buttons smaller than minimum px."""
    found: list[str] = await page.evaluate(
        """(minimum) => [...document.querySelectorAll('[role=dialog] button')]
            .map(e => [e.textContent, e.getBoundingClientRect()])
            .filter(([, r]) => r.width < minimum || r.height < minimum)
            .map(([t, r]) => `${t} ${Math.round(r.width)}x${Math.round(r.height)}`)""",
        minimum,
    )
    return found
