"""The dispatcher's view (web/src/views/dispatcher): the live map of its
community kept current from the socket, the escalated queue with
assign-to-team, the KPIs with their charts and table, the month's quota
shortfalls, stars and report; against a real server process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tests.live import (
    Ledger,
    LiveServer,
    committed_person,
    committed_team,
    community_of,
    eventually,
    park,
    phone_of,
    spots,
)
from tests.scene import Member, offset
from tests.web.browser import (
    DESKTOP,
    PHONE,
    assert_accessible,
    cut_live,
    person_page,
    shot,
    sign_in,
    small_touch_targets,
)

pytestmark = pytest.mark.processes

AS_PHONE = ViewportSize(width=PHONE["width"], height=PHONE["height"])
SERVER = {"search_radius_m": 400, "double_tap_seconds": 0, "run_sweeper": "false"}


@dataclass
class Scene:
    server: LiveServer
    lat: float
    lng: float
    community: uuid.UUID
    dispatcher: Member
    resident: Member


@pytest.fixture
async def scene(
    engine: AsyncEngine, database_url: str, ledger: Ledger, tmp_path: Path
) -> AsyncIterator[Scene]:
    """A spot of the district with the seeded volunteers near it off duty,
    a dispatcher of its community, a resident, and a server."""
    settings = make_settings(database_url)
    ((lat, lng),) = await spots(engine, 1, 2000)
    await park(engine, ledger, lat, lng, 1500)
    community = await community_of(engine, lat, lng)
    dispatcher = await committed_person(
        engine, settings, ledger, "调度员王", dispatcher_of=community
    )
    resident = await committed_person(engine, settings, ledger, "呼叫居民")
    server = LiveServer(database_url, tmp_path / "server.log", SERVER)
    try:
        await server.wait_ready()
        yield Scene(server, lat, lng, community, dispatcher, resident)
    finally:
        server.stop()


async def press(scene: Scene, lat: float, lng: float, note: str | None = None) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=scene.server.url, timeout=10) as http:
        answer = await http.post(
            "/api/v1/calls",
            json={"location": {"lat": lat, "lng": lng, "accuracy_m": 8}, "note": note},
            headers=scene.resident.headers,
        )
    assert answer.status_code == 201, answer.text
    call: dict[str, object] = answer.json()
    return call


async def count(page: Page, attribute: str) -> int:
    value = await page.locator(".map-box").get_attribute(f"data-map-{attribute}")
    return int(value or -1)


async def open_as_dispatcher(page: Page, engine: AsyncEngine, scene: Scene, part: str) -> None:
    await sign_in(page, await phone_of(engine, scene.dispatcher.person_id), view="dispatcher")
    await page.goto(f"/app/#/dispatcher/{part}")
    await expect(page.locator("[data-live=live]")).to_be_visible(timeout=10_000)


async def test_the_map_shows_the_community_and_a_new_call_without_reload(
    browser: Browser, engine: AsyncEngine, database_url: str, ledger: Ledger, scene: Scene
) -> None:
    settings = make_settings(database_url)
    team = await committed_team(
        engine, settings, ledger, *offset(scene.lat, scene.lng, 40, 0), members=3, name="红旗服务队"
    )
    async with person_page(browser, scene.server.url, size=DESKTOP) as page:
        await open_as_dispatcher(page, engine, scene, "map")
        box = page.locator(".map-box")
        await expect(box).to_have_attribute("data-map-ready", "yes", timeout=20_000)
        assert await count(page, "areas") > 3  # the street, communities, this one's grids
        assert await count(page, "teams") >= 1
        members_before = await count(page, "members")
        assert members_before >= 3  # the team's three on duty
        calls_before = await count(page, "calls")

        call = await press(scene, *offset(scene.lat, scene.lng, 10, 10))
        assert call["status"] == "offered"  # to the team 40 m away
        item = page.locator(f".calls li[data-call-id='{call['id']}']")
        await expect(item).to_be_visible(timeout=10_000)
        await expect(item).to_have_attribute("data-status", "offered")
        await expect(box).to_have_attribute("data-map-calls", str(calls_before + 1))

        # The responder accepts: the call is restyled, not added again.
        responder = team.members[0]
        async with httpx.AsyncClient(base_url=scene.server.url, timeout=10) as http:
            offers = (await http.get("/api/v1/offers", headers=responder.headers)).json()["data"]
            offer = next(o for o in offers if o["call_id"] == call["id"])
            accepted = await http.post(
                f"/api/v1/offers/{offer['id']}/accept", headers=responder.headers
            )
            assert accepted.status_code == 200, accepted.text
            await expect(item).to_have_attribute("data-status", "accepted", timeout=10_000)
            await expect(box).to_have_attribute("data-map-calls", str(calls_before + 1))

            # A member going off duty leaves the map at once (duty.updated).
            gone = await http.put(
                "/api/v1/me/duty", json={"on_duty": False}, headers=team.members[2].headers
            )
            assert gone.status_code == 200, gone.text
        await expect(box).to_have_attribute(
            "data-map-members", str(members_before - 1), timeout=10_000
        )
        # After a cut the map is re-read: the same features, nothing lost.
        await cut_live(page)
        await expect(page.locator("[data-live=live]")).to_be_visible(timeout=15_000)
        await expect(item).to_have_attribute("data-status", "accepted")
        await page.wait_for_timeout(1500)  # the tiles-free canvas settles
        await assert_accessible(page, context="dispatcher map")
        assert await small_touch_targets(page) == []
        await shot(page, "dispatcher-map-desktop")

        # The same page at a phone's size (a second sign-in would wait for
        # the code's resend interval): one column, the map first.
        await page.set_viewport_size(AS_PHONE)
        await expect(item).to_be_visible()
        await page.wait_for_timeout(1500)
        await assert_accessible(page, context="dispatcher map, phone")
        await shot(page, "dispatcher-map-phone")


async def test_an_escalated_call_is_assigned_to_a_team_from_the_queue(
    browser: Browser, engine: AsyncEngine, database_url: str, ledger: Ledger, scene: Scene
) -> None:
    settings = make_settings(database_url)
    # Nobody on duty near the spot: a press escalates at once.
    team = await committed_team(
        engine, settings, ledger, *offset(scene.lat, scene.lng, 60, 0), on_duty=0, name="东街服务队"
    )
    small = await committed_team(
        engine,
        settings,
        ledger,
        *offset(scene.lat, scene.lng, 0, 50),
        members=1,
        on_duty=0,
        complete=False,
        name="新建小队",
    )
    async with person_page(browser, scene.server.url, size=DESKTOP) as page:
        await open_as_dispatcher(page, engine, scene, "queue")
        await expect(page.locator("#queue-title")).to_be_visible()
        call = await press(scene, scene.lat, scene.lng, note="家里老人摔倒了")
        assert call["status"] == "escalated"
        card = page.locator(f".queued[data-call-id='{call['id']}']")
        await expect(card).to_be_visible(timeout=10_000)  # from the socket, no reload
        await expect(card).to_contain_text("家里老人摔倒了")
        await expect(page.locator("[data-queue-count]")).to_be_visible()

        await card.get_by_role("button", name="派给队伍").click()
        await expect(card.locator(f"[data-team-id='{team.id}']")).to_be_visible(timeout=10_000)
        await expect(card.locator(f"[data-team-id='{small.id}']")).to_contain_text("人数不足")
        await assert_accessible(page, context="dispatcher queue with the team picker")
        assert await small_touch_targets(page) == []
        await shot(page, "dispatcher-queue-desktop")

        # The API's word for an incomplete team is shown, and nothing is assigned.
        await card.locator(f"[data-team-id='{small.id}']").click()
        await expect(card.get_by_role("alert")).to_have_text("这个队伍人数不够，不能派单")

        await card.locator(f"[data-team-id='{team.id}']").click()
        await expect(page.get_by_role("status").filter(has_text="东街服务队")).to_be_visible()
        await expect(card).to_have_count(0)

        async def offered() -> bool:
            async with engine.connect() as conn:
                row = (
                    await conn.execute(
                        text(
                            "SELECT o.team_id, o.assigned_by, c.status FROM offer o "
                            "JOIN call c ON c.id = o.call_id "
                            "WHERE o.call_id = :c AND o.status = 'open'"
                        ),
                        {"c": call["id"]},
                    )
                ).first()
            return row is not None and (row.team_id, row.assigned_by, row.status) == (
                team.id,
                scene.dispatcher.person_id,
                "offered",
            )

        await eventually(offered, within_s=5)
        # The team's member sees the offer.
        async with httpx.AsyncClient(base_url=scene.server.url, timeout=10) as http:
            offers = (await http.get("/api/v1/offers", headers=team.members[0].headers)).json()
        assert any(o["call_id"] == call["id"] for o in offers["data"])

        # A second escalated call, for the phone's picture of the queue.
        other = await press(scene, *offset(scene.lat, scene.lng, -30, -30))
        assert other["status"] == "escalated"
        await page.set_viewport_size(AS_PHONE)
        card = page.locator(f".queued[data-call-id='{other['id']}']")
        await expect(card).to_be_visible(timeout=10_000)
        await card.get_by_role("button", name="派给队伍").click()
        await expect(card.locator(f"[data-team-id='{team.id}']")).to_be_visible(timeout=10_000)
        await assert_accessible(page, context="dispatcher queue, phone")
        assert await small_touch_targets(page) == []
        await shot(page, "dispatcher-queue-phone")


async def test_kpis_quota_stars_and_the_monthly_report(
    browser: Browser, engine: AsyncEngine, database_url: str, ledger: Ledger, scene: Scene
) -> None:
    settings = make_settings(database_url)
    team = await committed_team(
        engine, settings, ledger, *offset(scene.lat, scene.lng, 30, 0), members=3, name="KPI服务队"
    )
    await press(scene, scene.lat, scene.lng)
    async with person_page(browser, scene.server.url, size=DESKTOP) as page:
        await open_as_dispatcher(page, engine, scene, "kpis")
        table = page.locator("table.kpi-table")
        await expect(table).to_be_visible(timeout=10_000)
        rows = table.locator("tbody tr")
        assert await rows.count() >= 1
        today = rows.last
        assert int(await today.locator("td[data-figure=calls]").inner_text()) >= 1
        charts = page.locator("figure.chart[data-chart-drawn=yes]")
        await expect(charts).to_have_count(2, timeout=10_000)
        await expect(page.locator("figure.chart canvas")).to_have_count(2)
        # By week: the rows follow the choice.
        await page.locator("select[name=bucket]").select_option("week")
        await page.get_by_role("button", name="查询").click()
        await expect(table.locator("tbody th").first).to_contain_text("起一周")
        await assert_accessible(page, context="dispatcher KPIs")
        assert await small_touch_targets(page) == []
        await shot(page, "dispatcher-kpis-desktop", full_page=True)

        await page.get_by_role("link", name="月度考核").click()
        quota = page.locator("section.quota")
        # The team's full-time member has no activity this month: short.
        full_time = team.members[0].person_id
        await expect(quota.locator(f"li[data-person-id='{full_time}']")).to_be_visible(
            timeout=10_000
        )
        for ranking in ("governance", "service"):
            section = page.locator(f"[data-stars={ranking}]")
            await expect(
                section.locator("li").first.or_(section.get_by_text("本月暂无排名"))
            ).to_be_visible()
        await assert_accessible(page, context="dispatcher month")
        await shot(page, "dispatcher-month-desktop")

        async with page.expect_download() as downloading:
            await page.get_by_role("button", name="下载月度报表（Excel）").click()
        download = await downloading.value
        assert download.suggested_filename.startswith("hulian-report-")
        assert download.suggested_filename.endswith(".xlsx")
        saved = await download.path()
        with open(saved, "rb") as workbook:  # noqa: ASYNC230 - a small local file
            assert workbook.read(2) == b"PK"  # a ZIP: an XLSX
        await expect(page.get_by_role("status").filter(has_text="报表已下载")).to_be_visible()

        await page.set_viewport_size(AS_PHONE)
        await page.get_by_role("link", name="统计指标").click()
        await expect(page.locator("figure.chart[data-chart-drawn=yes]")).to_have_count(
            2, timeout=10_000
        )
        await assert_accessible(page, context="dispatcher KPIs, phone")
        await shot(page, "dispatcher-kpis-phone", full_page=True)
