"""The app's frame: sign-in by phone and code, the language, the views a
person may open, the installable manifest and service worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.live import Ledger, LiveServer, person_with
from tests.principals import next_phone
from tests.web.browser import (
    DESKTOP,
    assert_accessible,
    person_page,
    shot,
    sign_in,
)

pytestmark = pytest.mark.processes


async def test_a_new_phone_signs_in_as_a_resident_in_chinese_then_english(
    browser: Browser, engine: AsyncEngine, database_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    server = LiveServer(database_url, tmp_path / "server.log", {"run_sweeper": "false"})
    phone = next_phone()
    try:
        await server.wait_ready()
        async with person_page(browser, server.url) as page:
            await page.goto("/app/")
            await expect(page.get_by_role("heading", name="用手机号登录")).to_be_visible()
            await assert_accessible(page, context="sign-in")
            await shot(page, "sign-in-phone")
            await sign_in(page, phone)
            ledger.persons.append(await person_with(engine, phone))
            await expect(page.locator("[data-live=live]")).to_be_visible(timeout=10_000)
            # The resident's frame has no tabs: residents see one view.
            await expect(page.get_by_role("navigation")).to_have_count(0)
            await (
                page.get_by_role("button", name="切换到中文")
                .or_(page.get_by_role("button", name="Switch to English"))
                .click()
            )
            await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        async with person_page(browser, server.url, size=DESKTOP, locale="en-GB") as page:
            await page.goto("/app/")
            await expect(
                page.get_by_role("heading", name="Sign in with your mobile number")
            ).to_be_visible()
            manifest = await page.evaluate("fetch('/app/manifest.webmanifest').then(r => r.json())")
            assert manifest["start_url"] == "/app/"
            registered = await page.evaluate(
                "navigator.serviceWorker.ready.then(r => r.active && r.active.scriptURL)"
            )
            assert registered.endswith("/app/sw.js")
            await shot(page, "sign-in-desktop-en")
    finally:
        server.stop()


async def test_the_service_worker_shows_a_push_the_platform_delivers(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    """The platform's push service is out of reach here: chromium's own
    debugging protocol delivers the message to the registered worker, as a
    push service would, and the worker shows it as a notification."""
    server = LiveServer(database_url, tmp_path / "server.log", {"run_sweeper": "false"})
    try:
        await server.wait_ready()
        async with person_page(browser, server.url, size=DESKTOP) as page:
            await page.goto("/app/")
            await page.evaluate("navigator.serviceWorker.ready")
            cdp = await page.context.new_cdp_session(page)
            registrations: list[dict[str, Any]] = []
            cdp.on(
                "ServiceWorker.workerRegistrationUpdated",
                lambda event: registrations.extend(event["registrations"]),
            )
            await cdp.send("ServiceWorker.enable")
            for _ in range(100):
                ours = [r for r in registrations if r["scopeURL"].endswith("/app/")]
                if ours:
                    break
                await page.wait_for_timeout(50)
            assert ours, registrations
            payload = {
                "notification": {"title": "有新的呼叫", "body": "上门探访 · 约 300 米"},
                "data": {"call_id": "00000000-0000-0000-0000-000000000001"},
            }
            await cdp.send(
                "ServiceWorker.deliverPushMessage",
                {
                    "origin": server.url,
                    "registrationId": ours[0]["registrationId"],
                    "data": json.dumps(payload, ensure_ascii=False),
                },
            )
            shown: list[dict[str, str]] = []
            for _ in range(100):
                shown = await page.evaluate(
                    "navigator.serviceWorker.ready"
                    ".then(r => r.getNotifications())"
                    ".then(ns => ns.map(n => ({title: n.title, body: n.body, tag: n.tag})))"
                )
                if shown:
                    break
                await page.wait_for_timeout(50)
            assert shown == [
                {
                    "title": "有新的呼叫",
                    "body": "上门探访 · 约 300 米",
                    "tag": "00000000-0000-0000-0000-000000000001",
                }
            ]
    finally:
        server.stop()
