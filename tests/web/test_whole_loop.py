"""The whole loop in four browsers at once, as issue 16 asks: a resident
presses with a fixed position, a volunteer of the nearest team rings and
accepts in the page, the resident sees accepted, the responder on the map and
resolved, and rates; the volunteer's connection is cut mid-call and its view
catches up; a dispatcher sees the call on its map and assigns an escalated
one from the queue; the community's public screen shows the new figures
without a reload. Each view's own tests go further (tests/web/test_*.py);
this one proves they work together on one server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tests.live import (
    Ledger,
    LiveServer,
    column,
    committed_person,
    committed_team,
    community_of,
    eventually,
    park,
    person_with,
    phone_of,
    spots,
)
from tests.principals import next_phone
from tests.scene import offset
from tests.web.browser import DESKTOP, PHONE, cut_live, figure, person_page, shot, sign_in

pytestmark = pytest.mark.processes

SERVER = {
    "search_radius_m": 400,
    "double_tap_seconds": 0,
    "run_sweeper": "false",
    # The public screen lists calls at once and recomputes often (tests only).
    "screen_delay_seconds": 0,
    "screen_cache_seconds": 0.3,
    "screen_stream_seconds": 1,
}
WALL = {"width": 1920, "height": 1080}


async def test_resident_volunteer_dispatcher_and_screen_in_one_loop(
    browser: Browser, engine: AsyncEngine, database_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    settings = make_settings(database_url)
    ((lat, lng),) = await spots(engine, 1, 2500)
    await park(engine, ledger, lat, lng, 1500)
    team = await committed_team(
        engine, settings, ledger, *offset(lat, lng, 30, 0), members=3, on_duty=0, name="红小二队"
    )
    member = team.members[0]
    community = await community_of(engine, lat, lng)
    dispatcher = await committed_person(
        engine, settings, ledger, "调度员李", dispatcher_of=community
    )
    resident_phone = next_phone()
    server = LiveServer(database_url, tmp_path / "server.log", SERVER)
    try:
        await server.wait_ready()
        async with (
            person_page(browser, server.url, size=PHONE, at=(lat, lng)) as resident,
            person_page(browser, server.url, size=PHONE, at=offset(lat, lng, 25, 0)) as volunteer,
            person_page(browser, server.url, size=DESKTOP) as desk,
            person_page(browser, server.url, size=WALL) as screen,
            httpx.AsyncClient(base_url=server.url, timeout=10) as http,
        ):
            # The screen of the community, no sign-in; today's figures before.
            await screen.goto(f"/app/#/screen/{community}")
            await expect(screen.locator("[data-stream=live]")).to_be_visible(timeout=10_000)
            calls_before = await figure(screen, "calls")
            resolved_before = await figure(screen, "resolved")

            # The dispatcher watches its community's map.
            await sign_in(desk, await phone_of(engine, dispatcher.person_id), "dispatcher")
            await desk.goto("/app/#/dispatcher/map")
            box = desk.locator(".map-box")
            await expect(box).to_have_attribute("data-map-ready", "yes", timeout=20_000)

            # The volunteer goes on duty where the browser says it is.
            await sign_in(volunteer, await phone_of(engine, member.person_id), "volunteer")
            await volunteer.get_by_role("button", name="开始上岗").click()
            await expect(volunteer.locator(".duty-card")).to_have_attribute("data-on-duty", "true")

            # The resident presses the big button.
            await sign_in(resident, resident_phone, "resident")
            ledger.persons.append(await person_with(engine, resident_phone))
            await expect(resident.locator(".where-gps")).to_be_visible(timeout=10_000)
            await resident.locator("button.call-button").click()
            view = resident.locator(".call-view")
            await expect(view).to_be_visible(timeout=10_000)
            call_id = await view.get_attribute("data-call-id")
            assert call_id

            # The volunteer's phone rings; it accepts in the page.
            offer = volunteer.locator(".offer-card")
            await expect(offer).to_be_visible(timeout=10_000)
            await offer.get_by_role("button", name="接单").click()
            card = volunteer.locator(".call-card")
            await expect(card).to_have_attribute("data-call", call_id)

            # The resident sees who is coming; the dispatcher sees the call;
            # the screen counts it: none of them reloaded.
            await expect(view).to_have_attribute("data-status", "accepted", timeout=10_000)
            name = await column(
                engine, "SELECT display_name FROM person WHERE id = :p", p=member.person_id
            )
            await expect(resident.locator(".responder-name")).to_have_text(str(name))
            item = desk.locator(f".calls li[data-call-id='{call_id}']")
            await expect(item).to_have_attribute("data-status", "accepted", timeout=10_000)
            await expect(screen.locator("[data-figure=calls] .figure-value")).to_contain_text(
                str(calls_before + 1), timeout=10_000
            )

            # On the way: the resident sees the responder on the map.
            await card.get_by_role("button", name="出发").click()
            await expect(card).to_have_attribute("data-status", "en_route")
            await expect(resident.locator(".pin-responder")).to_have_text(str(name), timeout=15_000)
            await shot(resident, "loop-resident-en-route")
            await shot(desk, "loop-dispatcher-map")

            # The volunteer's connection is lost while the call moves on (the
            # member's other phone says they arrived); back, it catches up.
            await volunteer.context.set_offline(True)
            await cut_live(volunteer)
            moved = await http.post(
                f"/api/v1/calls/{call_id}/progress",
                json={"status": "on_site"},
                headers=member.headers,
            )
            assert moved.status_code == 200, moved.text
            await volunteer.wait_for_timeout(1000)
            await expect(card).to_have_attribute("data-status", "en_route")
            await volunteer.context.set_offline(False)
            await expect(card).to_have_attribute("data-status", "on_site", timeout=15_000)
            await card.get_by_role("button", name="已解决").click()
            await expect(volunteer.locator(".call-card")).to_have_count(0)

            # Resolved everywhere; the resident rates it.
            await expect(view).to_have_attribute("data-status", "resolved", timeout=10_000)
            await expect(resident.locator(".pin-responder")).to_have_count(0)
            await resident.locator("button.star").nth(4).click()
            await resident.locator(".rating button.primary").click()
            await expect(resident.locator(".rated")).to_be_visible()
            assert (
                await column(engine, "SELECT stars FROM rating WHERE call_id = :c", c=call_id) == 5
            )
            await expect(screen.locator("[data-figure=resolved] .figure-value")).to_contain_text(
                str(resolved_before + 1), timeout=10_000
            )
            await shot(screen, "loop-screen")

            # The volunteer goes off duty: the next press near here finds no
            # team and goes up to the dispatcher, who assigns it in the page.
            await volunteer.get_by_role("button", name="下岗休息").click()
            await expect(volunteer.locator(".duty-card")).to_have_attribute("data-on-duty", "false")
            other = await committed_person(engine, settings, ledger, "第二位居民")
            pressed = await http.post(
                "/api/v1/calls",
                json={"location": {"lat": lat, "lng": lng, "accuracy_m": 10}},
                headers=other.headers,
            )
            assert pressed.status_code == 201, pressed.text
            escalated = pressed.json()
            assert escalated["status"] == "escalated"
            await desk.goto("/app/#/dispatcher/queue")
            queued = desk.locator(f".queued[data-call-id='{escalated['id']}']")
            await expect(queued).to_be_visible(timeout=10_000)
            await queued.get_by_role("button", name="派给队伍").click()
            choice = queued.locator(f"[data-team-id='{team.id}']")
            await expect(choice).to_be_visible(timeout=10_000)
            await choice.click()
            await expect(queued).to_have_count(0, timeout=10_000)

            async def offered_to_the_team() -> bool:
                async with engine.connect() as conn:
                    row = (
                        await conn.execute(
                            text(
                                "SELECT o.assigned_by FROM offer o WHERE o.call_id = :c "
                                "AND o.team_id = :t AND o.status = 'open'"
                            ),
                            {"c": escalated["id"], "t": team.id},
                        )
                    ).first()
                return row is not None and row.assigned_by == dispatcher.person_id

            await eventually(offered_to_the_team, within_s=5)
    finally:
        server.stop()
