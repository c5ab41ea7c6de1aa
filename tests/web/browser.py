"""Driving the web app (web/, served at /app/) in Debian's chromium through
Playwright, as a person would: pages of a phone's and a desktop's size, a
fixed position for geolocation, sign-in through the form, screenshots to look
at, and the checks every view must pass (axe-core, touch targets).

Screenshots go to `web/screenshots/` (WEB_SCREENSHOTS to change it); the
README's are copies of some of them (docs/screenshots/)."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.dbutil import PROJECT_ROOT

WEB = PROJECT_ROOT / "web"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# As the machine's notes say: no background networking (this network is
# closed and chromium would keep trying), no GPU, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
]
SCREENSHOTS = Path(os.environ.get("WEB_SCREENSHOTS", WEB / "screenshots"))

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@asynccontextmanager
async def person_page(
    browser: Browser,
    base_url: str,
    *,
    size: dict[str, int] = PHONE,
    at: tuple[float, float] | None = None,
    locale: str = "zh-CN",
    geolocation: bool = True,
) -> AsyncIterator[Page]:
    """A fresh browser profile (its own storage, so its own session) at
    `base_url`, with the phone's position at `at` (lat, lng) when given."""
    options: dict[str, Any] = {
        "base_url": base_url,
        "viewport": size,
        "locale": locale,
        "device_scale_factor": 1,
        "has_touch": size is PHONE,
        "is_mobile": False,
    }
    permissions = ["notifications"]
    if at is not None and geolocation:
        options["geolocation"] = {"latitude": at[0], "longitude": at[1], "accuracy": 10}
        permissions.append("geolocation")
    context: BrowserContext = await browser.new_context(**options)
    await context.grant_permissions(permissions, origin=base_url)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        await context.close()
    assert not errors, f"the page threw: {errors}"


async def sign_in(page: Page, phone: str, view: str = "") -> None:
    """Open the app (at a view, e.g. "volunteer") and sign in by phone and code
    (outside production the code comes back and the form fills it in)."""
    await page.goto(f"/app/#/{view}" if view else "/app/")
    await page.locator("input[name=phone]").fill(phone)
    await page.locator("form.sign-in button[type=submit]").click()
    code = page.locator("input[name=code]")
    await expect(code).not_to_have_value("", timeout=10_000)
    await page.locator("form.sign-in button[type=submit]").click()
    await expect(page.locator("form.sign-in")).to_have_count(0, timeout=10_000)


async def shot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Save what the page shows as web/screenshots/<name>.png (look at it)."""
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)  # makes the folder
    return path


async def assert_accessible(page: Page, *, context: str = "") -> None:
    """axe-core (web/node_modules, pinned by web/package-lock.json) finds no
    serious or critical violation on what the page shows now."""
    # Evaluated through the debugging protocol: the app's CSP forbids
    # injected <script> tags, and must stay on while axe looks.
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(_axe_source())
    result = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert not bad, f"axe violations {context}: {bad}"


@functools.cache
def _axe_source() -> str:
    return (WEB / "node_modules" / "axe-core" / "axe.min.js").read_text()


async def small_touch_targets(page: Page, minimum: float = 48) -> list[str]:
    """Buttons, links and fields that are visible and smaller than minimum px."""
    found: list[str] = await page.evaluate(
        """(minimum) => [...document.querySelectorAll(
              'button, a[href], input:not([type=hidden]), select, textarea, [role=button]')]
            .filter(e => e.offsetParent !== null)
            .filter(e => { const r = e.getBoundingClientRect();
                           return r.width < minimum || r.height < minimum; })
            .map(e => `${e.tagName.toLowerCase()} "${(e.textContent || e.name || '').trim()}" `
                      + `${Math.round(e.getBoundingClientRect().width)}x`
                      + `${Math.round(e.getBoundingClientRect().height)}`)""",
        minimum,
    )
    return found


async def cut_live(page: Page) -> None:
    """Drop the page's live socket (it reconnects and resumes by itself)."""
    await page.evaluate("window.hulianLive.drop()")


async def looked_at(page: Page, name: str, *, top: bool = True) -> None:
    """What every photographed state of a view must pass: axe-core, no
    control under 48 px; then the screenshot to look at (from the page's top
    unless `top` is False)."""
    await assert_accessible(page, context=name)
    assert await small_touch_targets(page) == [], name
    if top:
        await page.evaluate("window.scrollTo(0, 0)")
    await shot(page, name)


async def figure(page: Page, name: str) -> int:
    """The number a public screen shows for one of today's figures."""
    value = await page.locator(f"[data-figure={name}] .figure-value").inner_text()
    return int("".join(c for c in value if c.isdigit()) or 0)
