"""The dashboard in Chromium: its SVG charts (a bar per bucket and series) hold the numbers of
their tables, its status counts are the database's and link to the filtered list, it fits a
phone's width, and axe finds nothing serious on it, light, dark or narrow. Screenshots land
in test-artifacts/screenshots/dashboard-*.png."""

import json

import pytest
from playwright.sync_api import Page, expect

from jobsite.tests.browser.axe import assert_no_serious_violations, axe_context
from jobsite.tests.browser.conftest import close_checking_csp, log_in, new_context

pytestmark = pytest.mark.browser

CHARTS = {"chart-hours": 24, "chart-days": 30}
SERIES = 3  # created, completed, failed
COUNT_BY_STATUS = (
    "import json; from django.db.models import Count; from jobs.models import Job; "
    "print(json.dumps(dict(Job.objects.values_list('status').annotate(n=Count('pk'))"
    ".order_by().values_list('status', 'n'))))"
)
# What the cluster's schedule does every minute: the other tests' imports leave the live app
# with more jobs than a view counts itself (stats.LIVE_BELOW_JOBS), so a view shows the
# snapshot, which may be up to stats.MAX_AGE old.
RENEW_FIGURES = "from jobsite.stats import refresh; refresh(recount=True)"


@pytest.fixture(scope="module")
def state(browser, live_app, tmp_path_factory) -> str:
    """The demo user's logged-in session (its storage state)."""
    context = new_context(browser, live_app)
    log_in(context, live_app)
    path = str(tmp_path_factory.mktemp("dashboard") / "state.json")
    context.storage_state(path=path)
    close_checking_csp(context)
    return path


def page_counts(page: Page) -> dict[str, int]:
    counts = {}
    for link in page.locator(".status-counts a[href*='status=']").all():
        status = link.get_attribute("href").split("status=", 1)[1]
        counts[status] = int(link.locator(".status-count").inner_text().replace(",", ""))
    return counts


def database_counts(live_app) -> dict[str, int]:
    return json.loads(live_app.shell(COUNT_BY_STATUS).splitlines()[-1])


def test_charts_and_counts_hold_the_databases_numbers(
    browser, live_app, state: str, screenshot
) -> None:
    context = new_context(browser, live_app, storage_state=state)
    page = context.new_page()
    # Another test's import may still be finishing: compare once the jobs stand still.
    for _ in range(5):
        before = database_counts(live_app)
        live_app.shell(RENEW_FIGURES)
        page.goto("/")
        shown = page_counts(page)
        if database_counts(live_app) == before:
            break
    assert shown == {status: before.get(status, 0) for status in shown}
    assert len(shown) == 6 and sum(shown.values()) > 0

    for chart_id, buckets in CHARTS.items():
        bars = page.locator(f"svg#{chart_id} rect.bar")
        expect(bars).to_have_count(buckets * SERIES)
        for series in ("created", "completed", "failed"):
            expect(page.locator(f"svg#{chart_id} rect.bar-{series}")).to_have_count(buckets)
        assert page.locator(f"svg#{chart_id}").bounding_box()["height"] > 100
        values = [int(v) for v in bars.evaluate_all("bars => bars.map(b => b.dataset.value)")]
        table = page.locator(f"#{chart_id}-table")
        expect(table).to_be_hidden()  # in a closed <details> until asked for
        page.locator(f"details:has(#{chart_id}-table) > summary").click()
        expect(table).to_be_visible()
        cells = table.locator("tbody td").all_inner_texts()
        assert values == [int(cell.replace(",", "")) for cell in cells]
        assert len(table.locator("tbody tr").all()) == buckets
        # A bar's height follows its value: the tallest bar is the largest value's.
        heights = bars.evaluate_all("bars => bars.map(b => b.getBBox().height)")
        if max(values):
            assert heights[values.index(max(values))] == max(heights)
    screenshot(page, "dashboard-desktop")

    page.locator("#status-failed").click()
    page.wait_for_url("**/jobs/?status=failed")
    close_checking_csp(context)


# The dashboard's elements that stick out past the page's right edge (the header's menu is
# base.html's, the same on every page).
STICKING_OUT = """[...document.querySelectorAll("main *")]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth)
  .map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " " + e.getAttribute("class"))"""

VIEWS = {
    "desktop": {"viewport": {"width": 1400, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "dark": {"viewport": {"width": 1400, "height": 900}, "color_scheme": "dark"},
}


@pytest.mark.parametrize("view", VIEWS)
def test_dashboard_has_no_serious_axe_violation(
    browser, live_app, state: str, view: str, screenshot
) -> None:
    context = axe_context(browser, live_app, storage_state=state, **VIEWS[view])
    try:
        page = context.new_page()
        page.goto("/")
        page.wait_for_load_state("networkidle")
        screenshot(page, f"dashboard-{view}")
        assert_no_serious_violations(page, f"dashboard ({view})")
        if view == "phone":
            for summary in page.locator(".chart details > summary").all():
                summary.click()
            sticking_out = page.evaluate(STICKING_OUT)
            assert not sticking_out, "past the right edge at 390px:\n" + "\n".join(sticking_out)
            for chart_id in CHARTS:  # the whole chart on the screen, labels readable
                box = page.locator(f"svg#{chart_id}").bounding_box()
                assert box["x"] >= 0 and box["x"] + box["width"] <= 390
                label = page.locator(f"svg#{chart_id} .chart-label").first.bounding_box()
                assert label["height"] >= 9
    finally:
        context.close()
