"""Bulk status change from the jobs list in a real browser: three jobs at once, then an
all-or-nothing failure that changes nothing and says why."""

import json

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def statuses(live_app, ids: list[int]) -> dict[int, str]:
    code = (
        "import json; from jobs.models import Job; "
        f"print(json.dumps(dict(Job.objects.filter(pk__in={ids!r}).values_list('pk', 'status'))))"
    )
    return {int(k): v for k, v in json.loads(live_app.shell(code).splitlines()[-1]).items()}


def test_bulk_change_three_jobs(page: Page, live_app, make_jobs) -> None:
    made = make_jobs("Bulkjob", [{"status": "pending"}] * 3)
    ids = [job["id"] for job in made]
    page.goto("/jobs/?q=Bulkjob")
    expect(page.locator("#job-table tbody tr")).to_have_count(3)
    bar = page.locator("#bulk-form")
    for job in made:
        page.get_by_label(f"Select {job['name']}").check()
    expect(bar.locator("[data-selected-count]")).to_have_text("3 selected")
    bar.get_by_label("New status").select_option("running")
    bar.get_by_role("button", name="Apply").click()

    expect(page.locator("#toasts .toast")).to_contain_text("Set 3 jobs to running.")
    for job in made:
        expect(page.locator(f"#job-{job['id']} .badge")).to_have_text("Running")
    assert statuses(live_app, ids) == dict.fromkeys(ids, "running")


def test_failing_bulk_changes_nothing_and_says_why(
    page: Page, live_app, make_jobs, screenshot
) -> None:
    made = make_jobs(
        "Bulkfail", [{"status": "pending"}, {"status": "scheduled"}, {"status": "completed"}]
    )
    ids = [job["id"] for job in made]
    before = statuses(live_app, ids)
    page.goto("/jobs/?q=Bulkfail")
    expect(page.locator("#job-table tbody tr")).to_have_count(3)
    page.get_by_label("Select all jobs on this page").check()
    bar = page.locator("#bulk-form")
    expect(bar.locator("[data-selected-count]")).to_have_text("3 selected")
    bar.get_by_label("New status").select_option("running")
    bar.get_by_role("button", name="Apply").click()

    panel = page.locator("#bulk-result [role=alert]")
    expect(panel).to_contain_text("Nothing was changed.")
    expect(panel.locator("li")).to_have_count(1)
    expect(panel.locator("li")).to_contain_text("Bulkfail 3")
    expect(panel.locator("li")).to_contain_text("A completed job cannot be moved to running.")
    expect(panel).to_contain_text("2 other selected jobs could have changed")
    expect(page.locator("#toasts .toast")).to_contain_text("Nothing was changed.")
    screenshot(page, "10-bulk-failure")

    assert statuses(live_app, ids) == before
    for job in made:
        expect(page.locator(f"#job-{job['id']} .badge")).to_have_text(job["status"].title())
