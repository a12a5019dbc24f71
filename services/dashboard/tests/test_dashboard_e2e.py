"""The dashboard end to end, in headless Chromium (Debian's package, driven by Playwright with
the system executable) against the whole platform running as real processes on Kafka,
PostgreSQL and Redis, with the demo tenant and its demo activity.

Every page runs behind a guard that records (and blocks) any request to a host other than
this machine; a test fails if anything was recorded. Screenshots go to the test artifacts
directory (`CADRE_TEST_ARTIFACTS`, default `test-artifacts/`)."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

from cadre.devstack.demo_activity import DemoClient, seed_demo_activity, spoof
from cadre.devstack.infra import PROCESSES, Infra
from cadre.devstack.service_stack import ServiceStack, service_stack
from cadre.devstack.testing import unique_tenant, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("CADRE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "dashboard"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
BROWSER_ZONE = "America/New_York"  # not the tenant's: dates must still show Shanghai time
TIMEOUT_MS = 20_000


def chromium() -> str:
    path = os.environ.get("CADRE_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is missing: `apt-get install chromium` (.ci/run installs it)")
    return path


@dataclass
class Platform:
    stack: ServiceStack
    tenant: str
    client: DemoClient  # logs the demo users in (tokens cached) and posts as them

    @property
    def url(self) -> str:
        return self.stack.url("dashboard")

    def token(self, username: str) -> str:
        return self.client.login(username)

    def api(self, service: str, path: str, as_user: str = "orgadmin", **params: Any) -> Any:
        answer = httpx.get(
            self.stack.url(service) + path,
            params=params,
            headers={"authorization": f"Bearer {self.token(as_user)}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture(scope="module")
def platform(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    tenant = unique_tenant()
    env = {
        "CADRE_DIRECTORY_LOAD_DEMO": "true",
        "CADRE_DIRECTORY_DEMO_TENANT": tenant,
        "CADRE_SCORING_LIGHTS_INTERVAL_S": "2",
        "CADRE_SCORING_RELAY_POLL_INTERVAL_S": "0.2",
        "CADRE_ATTENDANCE_RELAY_POLL_INTERVAL_S": "0.2",
        "CADRE_JOURNAL_RELAY_POLL_INTERVAL_S": "0.2",
    }
    logs = tmp_path_factory.mktemp("dashboard-stack")
    with service_stack(infra, logs, PROCESSES, env) as stack:
        urls = {name: stack.url(name) for name in PROCESSES}
        platform = Platform(stack, tenant, DemoClient(urls, tenant))
        # Demo activity can only be posted once the services have seen the directory.
        wait_until(
            lambda: _attendance_knows_cadres(platform), 90, "attendance to see the directory"
        )
        seed_demo_activity(urls, tenant, report=lambda _: None)

        def scored() -> bool:
            radar = platform.api("scoring", "/v1/cadres/cadre1/radar")
            return bool(radar["composite"]) and _has_lights(platform)

        wait_until(scored, 90, "scoring to fold the demo activity and assess lights")
        yield platform
        platform.client.close()


def _attendance_knows_cadres(platform: Platform) -> bool:
    answer = httpx.get(
        platform.stack.url("attendance") + "/v1/check-ins",
        headers={"authorization": f"Bearer {platform.token('cadre1')}"},
        timeout=10,
    )
    return answer.status_code == 200


def _has_lights(platform: Platform) -> bool:
    lights = platform.api("scoring", "/v1/units/demo/lights", light="red")
    return any(item["cadre_id"] == "cadre5" for item in lights["items"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@dataclass
class Guarded:
    context: BrowserContext
    page: Page
    foreign: list[str]
    streams: list[str] = field(default_factory=list)  # how each live-stream request ended


def guarded_context(browser: Browser, *, bypass_csp: bool = False) -> Guarded:
    """A fresh browser context whose every request to another host is recorded and
    aborted."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000},
        timezone_id=BROWSER_ZONE,
        locale="en-US",
        accept_downloads=True,
        bypass_csp=bypass_csp,
    )
    foreign: list[str] = []

    def guard(route: Route) -> None:
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    context.set_default_timeout(TIMEOUT_MS)
    guarded = Guarded(context, context.new_page(), foreign)
    guarded.page.on(
        "response",
        lambda r: guarded.streams.append(f"{r.status}") if r.url.endswith("/v1/stream") else None,
    )
    guarded.page.on(
        "requestfailed",
        lambda r: (
            guarded.streams.append(f"failed: {r.failure}") if r.url.endswith("/v1/stream") else None
        ),
    )
    return guarded


@pytest.fixture
def guarded(browser: Browser) -> Iterator[Guarded]:
    """A guarded context for one test; the test fails if its page asked for any non-local
    URL or threw."""
    guarded = guarded_context(browser)
    errors: list[str] = []
    guarded.page.on("pageerror", lambda error: errors.append(str(error)))
    yield guarded
    guarded.context.close()
    assert not guarded.foreign, f"the page requested non-local URLs: {guarded.foreign}"
    assert not errors, f"the page threw: {errors}"


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Page, platform: Platform, username: str = "orgadmin") -> None:
    page.goto(platform.url + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "demo")
    page.fill("input[name=tenant]", platform.tenant)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("logout")).to_be_visible()


def expect_live(platform: Platform, guarded: Guarded, timeout_ms: float = 5_000) -> None:
    """The page's live stream is open; if not, the failure says how each stream request
    ended and what the dashboard and notify logged."""
    try:
        expect(guarded.page.get_by_test_id("live-status")).to_have_attribute(
            "data-state", "on", timeout=timeout_ms
        )
    except AssertionError as failure:
        logged = [
            line
            for name in ("dashboard", "notify")
            for line in platform.stack[name].log_file.read_text(errors="replace").splitlines()
            if '"level": "warning"' in line or '"level": "error"' in line or "stream" in line
        ]
        raise AssertionError(
            f"the live stream did not open; its requests ended: {guarded.streams}; "
            f"logged: {logged[-20:]}"
        ) from failure


def radar_series(page: Page) -> list[list[float]]:
    values: list[list[float]] = page.evaluate(
        """() => echarts.getInstanceByDom(document.querySelector('[data-testid=radar]'))
              .getOption().series[0].data.map((d) => d.value)"""
    )
    return values


def painted_pixels(page: Page, selector: str) -> int:
    count: int = page.evaluate(
        """(selector) => {
            const canvas = document.querySelector(selector + ' canvas');
            const context = canvas.getContext('2d');
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
            return painted;
        }""",
        selector,
    )
    return count


DIMENSIONS = ["politics", "discipline", "learning", "communication", "responsibility"]
DIMENSION_NAMES = {
    "politics": "政治素质",
    "discipline": "纪律作风",
    "learning": "学习提升",
    "communication": "沟通协作",
    "responsibility": "担当作为",
}


# ---------------------------------------------------------------------------- the pages


def test_logging_in_opens_the_unit_overview_with_lights_ranking_and_stationing(
    platform: Platform, guarded: Guarded
) -> None:
    page = guarded.page
    log_in(page, platform)
    expect(page).to_have_url(f"{platform.url}/#/unit/demo")
    lights = platform.api("scoring", "/v1/units/demo/lights")
    for colour in ("red", "yellow", "green"):
        expect(page.get_by_test_id(f"count-{colour}")).to_contain_text(
            str(lights["summary"][colour])
        )
    red = page.locator("[data-testid=light-list] tr[data-cadre=cadre5]")
    expect(red).to_have_attribute("data-light", "red")
    expect(red).to_contain_text("打卡作弊")  # the reason, in Chinese
    ranking = platform.api("scoring", "/v1/units/demo/ranking", limit=20)
    rows = page.locator("[data-testid=ranking-table] tbody tr")
    expect(rows).to_have_count(min(20, ranking["total"]))
    expect(rows.first).to_have_attribute("data-cadre", ranking["items"][0]["cadre_id"])
    expect(page.locator("[data-testid=ranking-table] .stars").first).to_be_visible()
    page.click("#tree a[data-unit=leye]")
    expect(page.get_by_test_id("unit-title")).to_have_text("乐业镇")
    expect(page.locator("[data-testid=stationing] tr[data-cadre=cadre1]")).to_be_visible()
    expect(page.get_by_test_id("stationing")).to_contain_text("干部1")
    shot(page, "unit-overview")


def test_the_radar_is_drawn_with_the_cadres_values_and_the_unit_average(
    platform: Platform, guarded: Guarded
) -> None:
    page = guarded.page
    log_in(page, platform)
    page.goto(f"{platform.url}/#/cadre/cadre1")
    expect(page.get_by_test_id("cadre-title")).to_contain_text("干部1")
    expect(page.locator("[data-testid=radar] canvas")).to_be_visible()
    radar = platform.api("scoring", "/v1/cadres/cadre1/radar")
    average = platform.api("scoring", "/v1/cadres/cadre1/unit-average")
    assert radar["composite"] > 0, "the demo activity scored"
    wait_until(lambda: len(radar_series(page)) == 2, 10, "both radar series")
    own, unit = radar_series(page)
    assert own == pytest.approx([radar["dimensions"][d] for d in DIMENSIONS])
    assert unit == pytest.approx([average["dimensions"][d] for d in DIMENSIONS])
    assert painted_pixels(page, "[data-testid=radar]") > 2000, "the canvas is drawn"
    assert painted_pixels(page, "[data-testid=timeline]") > 500
    entries = page.locator("[data-testid=entries] .entry")
    expect(entries.first).to_be_visible()
    shot(page, "cadre-page")


def test_a_dimension_drills_down_to_every_contribution_with_voided_ones_marked(
    platform: Platform, guarded: Guarded
) -> None:
    # The demo's entries vary by tenant; today's first entry always scores responsibility.
    def live_items(dimension: str) -> list[dict[str, Any]]:
        items = platform.api("scoring", "/v1/cadres/cadre1/explain", dimension=dimension)
        return [i for i in items["items"] if not i["voided"]]

    dimension = next(d for d in DIMENSIONS if live_items(d))
    live = live_items(dimension)
    voided = live[0]
    answer = httpx.post(
        platform.stack.url("scoring") + f"/v1/contributions/{voided['event_id']}/void",
        json={"reason": "申诉核实后作废"},
        headers={"authorization": f"Bearer {platform.token('orgadmin')}"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text

    def shown_voided() -> bool:
        items = platform.api("scoring", "/v1/cadres/cadre1/explain", dimension=dimension)
        return any(i["event_id"] == voided["event_id"] and i["voided"] for i in items["items"])

    # The void goes through Kafka (scoring.contribution_voided) and back into scoring.
    wait_until(shown_voided, 30, "the contribution to be voided")
    radar = platform.api("scoring", "/v1/cadres/cadre1/radar")
    page = guarded.page
    log_in(page, platform)
    page.goto(f"{platform.url}/#/cadre/cadre1")
    page.click(f"[data-testid=dimensions] button[data-dimension={dimension}]")
    expect(page.get_by_test_id("explain-dimension")).to_have_text(DIMENSION_NAMES[dimension])
    rows = page.locator("[data-testid=explain-table] tbody tr")
    expect(rows.first).to_be_visible()
    struck = page.locator(f"[data-testid=explain-table] tr[data-event='{voided['event_id']}']")
    expect(struck).to_have_class("voided")
    expect(struck).to_contain_text("已作废")
    points = [float(p) for p in rows.evaluate_all("rows => rows.map(r => r.dataset.points)")]
    assert sum(points) == pytest.approx(radar["dimensions"][dimension])
    shot(page, "explain-drill-down")


def test_a_light_change_appears_live_without_a_reload(platform: Platform, guarded: Guarded) -> None:
    page = guarded.page
    log_in(page, platform)
    page.goto(f"{platform.url}/#/unit/pingle")
    expect_live(platform, guarded)
    row = page.locator("[data-testid=light-list] tr[data-cadre=cadre7]")
    expect(page.get_by_test_id("count-green")).to_be_visible()
    expect(row).to_have_count(0)
    page.evaluate("() => { window.notReloaded = true; }")
    assert spoof(platform.client, "cadre7", f"e2e-{platform.tenant}") == 2
    expect(row).to_have_attribute("data-light", "red", timeout=60_000)
    item = page.locator("[data-testid=live-list] li[data-kind=light_changed_in_unit]").filter(
        has_text="cadre7"
    )
    expect(item.first).to_be_visible()
    assert page.evaluate("() => window.notReloaded === true"), "no reload happened"
    shot(page, "live-light-change")


def test_the_ranking_sorts_pages_and_exports_to_excel(platform: Platform, guarded: Guarded) -> None:
    page = guarded.page
    log_in(page, platform)
    ranking = platform.api("scoring", "/v1/units/demo/ranking", limit=500)
    assert ranking["total"] > 20, "the demo tenant needs two pages"
    header = page.locator("[data-testid=ranking-table] th[data-sort=composite]")
    header.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    lowest = min(ranking["items"], key=lambda i: (i["composite"], i["rank"]))
    first = page.locator("[data-testid=ranking-table] tbody tr").first
    expect(first).to_have_attribute("data-cadre", lowest["cadre_id"])
    header = page.locator("[data-testid=ranking-table] th[data-sort=composite]")
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    page.get_by_test_id("pager").get_by_role("button").nth(1).click()
    expect(page.get_by_test_id("pager")).to_contain_text("第 2 / 2 页")
    with page.expect_download() as download:
        page.get_by_test_id("export").click()
    workbook = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
    sheet = workbook.active
    assert sheet is not None
    rows = list(sheet.iter_rows(min_row=4, values_only=True))
    assert len(rows) == ranking["total"]
    assert [r[1] for r in rows] == [i["cadre_id"] for i in ranking["items"]]
    assert rows[0][3] == pytest.approx(ranking["items"][0]["composite"])
    assert sheet.cell(row=3, column=1).value == "名次"


def test_english_is_selectable_and_times_show_in_the_tenants_zone(
    platform: Platform, guarded: Guarded
) -> None:
    page = guarded.page
    log_in(page, platform)
    expect(page.locator("[data-testid=ranking] h2").first).to_have_text("排名")
    page.select_option("[data-testid=lang]", "en")
    expect(page.locator("[data-testid=ranking] h2").first).to_have_text("Ranking")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.goto(f"{platform.url}/#/cadre/cadre1")
    entries = platform.api("journal", "/v1/feed", cadre_id="cadre1", limit=1)["items"]
    posted = datetime.fromisoformat(entries[0]["posted_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    clock = posted.strftime("%I:%M %p").lstrip("0")
    meta = page.locator("[data-testid=entries] .entry .meta").first
    expect(meta).to_contain_text(clock)
    expect(page.get_by_test_id("radar-panel").locator("h2")).to_have_text("Five-dimension radar")
    page.reload()
    expect(page.locator("[data-testid=radar-panel] h2")).to_have_text("Five-dimension radar")


def test_a_township_leader_sees_only_their_subtree(platform: Platform, guarded: Guarded) -> None:
    page = guarded.page
    log_in(page, platform, "township.leader")
    expect(page).to_have_url(f"{platform.url}/#/unit/leye")
    tree = page.get_by_test_id("tree")
    expect(tree.locator("a[data-unit]")).to_have_count(3)
    expect(tree).to_contain_text("坡头村")
    expect(tree).not_to_contain_text("平乐镇")
    page.goto(f"{platform.url}/#/unit/pingle")
    expect(page.get_by_test_id("lights-error")).to_contain_text("无权查看")


def test_a_cadre_lands_on_their_own_page_and_logging_out_ends_the_session(
    platform: Platform, guarded: Guarded
) -> None:
    page = guarded.page
    log_in(page, platform, "cadre1")
    expect(page).to_have_url(f"{platform.url}/#/cadre/cadre1")
    expect(page.get_by_test_id("tree")).to_be_hidden()
    expect(page.locator("[data-testid=radar] canvas")).to_be_visible()
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-form")).to_be_visible()
    assert page.request.get(platform.url + "/v1/session").status == 401
    page.fill("input[name=username]", "cadre1")
    page.fill("input[name=password]", "wrong")
    page.fill("input[name=tenant]", platform.tenant)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误。")


def test_bad_requests_get_a_problem_and_no_session(platform: Platform) -> None:
    with httpx.Client(base_url=platform.url, timeout=30) as http:
        assert http.get("/healthz").json() == {"status": "ok", "service": "dashboard"}
        assert http.get("/readyz").status_code == 200
        anonymous = http.get("/v1/units/demo/lights")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        wrong = http.post(
            "/v1/session",
            json={"username": "orgadmin", "password": "nope", "tenant": platform.tenant},
        )
        assert wrong.status_code == 401
        assert "cadre_session" not in wrong.cookies
        extra = http.post("/v1/session", json={"username": "a", "password": "b", "admin": 1})
        assert extra.status_code == 422
        http.cookies.set("cadre_session", platform.token("orgadmin"))
        bad_period = http.get("/v1/units/demo/ranking", params={"period": "2026-13"})
        assert bad_period.status_code == 422
    with httpx.Client(base_url=platform.url, timeout=30) as http:
        http.cookies.set("cadre_session", "not.a.token")
        forged = http.get("/v1/tree")
        assert forged.status_code == 401
        assert forged.json()["code"] == "session-expired"
        page = http.get("/")
        assert "default-src 'self'" in page.headers["content-security-policy"]


def test_no_page_requests_anything_but_this_server(
    platform: Platform, guarded: Guarded, browser: Browser
) -> None:
    page = guarded.page
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    log_in(page, platform)
    for hash_ in ("#/unit/demo", "#/unit/leye-v1", "#/cadre/cadre9"):
        page.goto(f"{platform.url}/{hash_}")
        page.wait_for_load_state("networkidle")
    page.select_option("[data-testid=lang]", "en")
    page.wait_for_load_state("networkidle")
    assert guarded.foreign == []
    # Two layers keep the page local. The page's own policy refuses a request elsewhere
    # before it leaves the browser...
    page.evaluate("() => fetch('https://cdn.example.com/echarts.js').catch(() => null)")
    wait_until(lambda: bool(refused), 5, "the content security policy to refuse")
    assert guarded.foreign == []
    # ...and without that policy, this test's guard catches it (so the check is real).
    bare = guarded_context(browser, bypass_csp=True)
    try:
        bare.page.goto(platform.url + "/")
        bare.page.evaluate("() => fetch('https://cdn.example.com/echarts.js').catch(() => null)")
        wait_until(lambda: bool(bare.foreign), 5, "the guard to see the request")
        assert bare.foreign == ["https://cdn.example.com/echarts.js"]
    finally:
        bare.context.close()


def test_a_service_that_is_down_shows_a_message_on_its_panels_only(
    platform: Platform, guarded: Guarded
) -> None:
    page = guarded.page
    log_in(page, platform)
    scoring, notify = platform.stack["scoring"], platform.stack["notify"]
    scoring.kill()
    notify.kill()
    try:
        page.goto(f"{platform.url}/#/unit/leye")
        page.reload()
        for panel in ("lights", "ranking"):
            expect(page.get_by_test_id(f"{panel}-error")).to_contain_text("评分服务暂不可用")
        expect(page.locator("[data-testid=stationing] tr[data-cadre=cadre1]")).to_be_visible()
        expect(page.get_by_test_id("tree")).to_contain_text("乐业镇")
        expect(page.locator("#live-error")).to_contain_text("通知服务暂不可用")
        expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "off")
        page.goto(f"{platform.url}/#/cadre/cadre1")
        expect(page.get_by_test_id("radar-panel-error")).to_contain_text("评分服务")
        expect(page.locator("[data-testid=entries] .entry").first).to_be_visible()
        shot(page, "scoring-down")
        scoring.start()
        page.get_by_test_id("radar-panel").get_by_role("button").click()
        expect(page.locator("[data-testid=radar] canvas")).to_be_visible()
        # The page keeps trying its live stream (at most every 15 s) and picks notify up
        # again without a reload.
        notify.start()
        expect_live(platform, guarded, timeout_ms=20_000)
        expect(page.locator("#live-error")).to_be_hidden()
    finally:
        for service in (scoring, notify):
            if service.process is None:
                service.start()
