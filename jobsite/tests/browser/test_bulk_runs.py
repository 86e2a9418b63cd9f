"""Bulk runs from the jobs list in a real browser, worked by the live app's real cluster
(docs/bulk-runs.md): ticks kept across pages, the confirmation, the run page to its report;
"all matching" with skipped jobs and their reasons; after an atomic failure, "Apply to the N
that can change"."""

import json
import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def values(live_app, ids: list[int], field: str) -> dict[int, object]:
    code = (
        "import json; from jobs.models import Job; "
        f"print(json.dumps(dict(Job.objects.filter(pk__in={ids!r}).values_list('pk', '{field}'))))"
    )
    return {int(k): v for k, v in json.loads(live_app.shell(code).splitlines()[-1]).items()}


def test_ticks_across_pages_become_a_bulk_run_with_its_report(
    page: Page, live_app, make_jobs, screenshot
) -> None:
    made = make_jobs("Crosspage", [{"status": "pending"}] * 55)
    page.goto("/jobs/?q=Crosspage&sort=name")
    bar = page.locator("#bulk-form")
    first, second = made[0], made[54]  # sorted by name: "Crosspage 55" is on page 2
    page.get_by_label(f"Select {first['name']}", exact=True).check()
    expect(bar.locator("[data-selected-count]")).to_have_text("1 selected")
    page.get_by_role("link", name="Next ›").click()
    expect(page.get_by_label(f"Select {second['name']}", exact=True)).to_be_visible()
    page.get_by_label(f"Select {second['name']}", exact=True).check()
    expect(bar.locator("[data-selected-count]")).to_have_text("2 selected")
    page.go_back()
    expect(page.get_by_label(f"Select {first['name']}", exact=True)).to_be_checked()
    expect(bar.locator("[data-selected-count]")).to_have_text("2 selected")

    bar.get_by_label("Action").select_option("set_priority")
    expect(bar.get_by_label("New status")).to_be_hidden()
    bar.get_by_label("New priority").fill("9")
    bar.get_by_role("button", name="Apply").click()
    confirm = page.locator("#bulk-result .bulk-confirm")
    expect(confirm).to_contain_text("Set priority to 9: 2 jobs")
    screenshot(page, "20-bulk-run-confirm")
    confirm.get_by_role("button", name="Start").click()

    expect(page).to_have_url(re.compile(r"/jobs/bulk-runs/\d+/$"))
    expect(page.locator("[data-run-status]")).to_have_text("Completed", timeout=60_000)
    expect(page.locator(".bulk-report")).to_contain_text("2 changed, 0 skipped, of 2 selected.")
    screenshot(page, "21-bulk-run-report")
    ids = [job["id"] for job in made]
    priorities = values(live_app, ids, "priority")
    assert {pk for pk, priority in priorities.items() if priority == 9} == {
        first["id"],
        second["id"],
    }
    # The selection was used up: back on the list nothing is ticked.
    page.goto("/jobs/?q=Crosspage&sort=name")
    expect(bar.locator("[data-selected-count]")).to_have_text("Tick jobs to change them")
    # A text search counts its matches after its page: "all matching" needs no number.
    bar.get_by_label("Select all jobs matching these filters").check()
    expect(bar.locator("[data-selected-count]")).to_have_text("All matching selected")


def test_all_matching_cancel_reports_the_skipped_jobs(page: Page, live_app, make_jobs) -> None:
    made = make_jobs(
        "Allmatch", [{"status": "pending"}, {"status": "scheduled"}, {"status": "completed"}]
    )
    page.goto("/jobs/?q=Allmatch")
    bar = page.locator("#bulk-form")
    bar.get_by_label("Select all 3 jobs matching these filters").check()
    expect(bar.locator("[data-selected-count]")).to_have_text("All 3 matching selected")
    bar.get_by_label("Action").select_option("cancel")
    bar.get_by_label("Cancellation reason").fill("paper jam")
    bar.get_by_role("button", name="Apply").click()
    confirm = page.locator("#bulk-result .bulk-confirm")
    expect(confirm).to_contain_text("Cancel (reason: paper jam): 3 jobs")
    expect(confirm).to_contain_text("1: A completed job cannot be cancelled.")
    confirm.get_by_role("button", name="Start").click()

    expect(page.locator("[data-run-status]")).to_have_text("Completed", timeout=60_000)
    report = page.locator(".bulk-report")
    expect(report).to_contain_text("2 changed, 1 skipped, of 3 selected.")
    expect(report.locator("table")).to_contain_text("A completed job cannot be cancelled.")
    with page.expect_download() as download:
        report.get_by_role("link", name="Download the skipped jobs as CSV").click()
    text = open(download.value.path(), encoding="utf-8-sig").read()
    assert '"Allmatch 3","completed","A completed job cannot be cancelled."' in text
    ids = [job["id"] for job in made]
    assert sorted(values(live_app, ids, "status").values()) == [
        "cancelled",
        "cancelled",
        "completed",
    ]


def test_after_an_atomic_failure_apply_to_those_that_can_change(
    page: Page, live_app, make_jobs
) -> None:
    pending, completed = make_jobs("Applyrest", [{"status": "pending"}, {"status": "completed"}])
    page.goto("/jobs/?q=Applyrest")
    bar = page.locator("#bulk-form")
    running = bar.locator("select[name=status] option[value=running]")
    page.get_by_label(f"Select {completed['name']}", exact=True).check()
    # A completed job may only go back to pending: "Running" is not offered for it alone.
    expect(running).to_have_js_property("hidden", True)
    page.get_by_label(f"Select {pending['name']}", exact=True).check()
    expect(running).to_have_js_property("hidden", False)

    bar.get_by_label("New status").select_option("scheduled")
    bar.get_by_role("button", name="Apply").click()
    result = page.locator("#bulk-result [role=alert]")
    expect(result).to_contain_text("Nothing was changed.")
    expect(page.locator(f"#job-{completed['id']}")).to_have_class("bulk-blocked")
    expect(page.locator(f"#job-{pending['id']}")).not_to_have_class("bulk-blocked")
    result.get_by_role("button", name="Apply to the 1 that can change").click()
    expect(page.locator("#toasts .toast").last).to_contain_text("Set 1 job to scheduled.")
    assert values(live_app, [pending["id"], completed["id"]], "status") == {
        pending["id"]: "scheduled",
        completed["id"]: "completed",
    }
