"""The jobs page in a real browser: filters in the URL, the edit modal (errors, save in place,
keyboard only), two users' saves of one version merged, and cancelling with a reason.

Each test makes jobs of its own (a distinct name prefix) in the shared live app.
"""

import json
import re

import pytest
from playwright.sync_api import Page, expect

from jobs.views import PAGE_SIZE
from jobsite.tests.browser.conftest import close_checking_csp, log_in, new_context

pytestmark = pytest.mark.browser


def job_state(live_app, job_id: int) -> dict:
    code = (
        "import json; from jobs.models import Job; "
        f"j = Job.objects.get(pk={job_id}); "
        "print(json.dumps(dict(name=j.name, status=j.status, priority=j.priority, "
        "version=j.version, reason=j.cancellation_reason, "
        "cancelled_by=j.cancelled_by.username if j.cancelled_by else None, "
        "events=j.events.count())))"
    )
    return json.loads(live_app.shell(code).splitlines()[-1])


def rows(page: Page):
    return page.locator("#job-table tbody tr")


def row_ids(page: Page) -> list[str]:
    return rows(page).evaluate_all("rows => rows.map(row => row.id)")


def settled(dialog) -> None:
    """Wait until htmx has processed what it swapped into the dialog (its hx-post among it):
    htmx activates new content when it settles, 20 ms after the swap that opens the dialog."""
    expect(dialog).not_to_have_class(re.compile(r"htmx-settling"))


def test_filter_by_status_and_text_is_bookmarkable(page: Page, make_jobs, screenshot) -> None:
    made = make_jobs(
        "Filterjob",
        [{"status": "pending"}, {"status": "running"}, {"status": "running"}, {"status": "failed"}],
    )
    expect(rows(page)).to_have_count(PAGE_SIZE)  # a full first page of the 300+ jobs
    screenshot(page, "03-jobs-list")

    filters = page.locator("#job-filters")
    filters.get_by_role("searchbox").fill("Filterjob")
    expect(rows(page)).to_have_count(4)
    filters.get_by_label("Running").check()
    filters.get_by_role("button", name="Filter", exact=True).click()
    expect(page).to_have_url(re.compile(r"q=Filterjob.*status=running|status=running.*q=Filterjob"))
    expect(rows(page)).to_have_count(2)
    running = sorted(job["name"] for job in made if job["status"] == "running")
    assert sorted(rows(page).locator("td:nth-child(2) a").all_inner_texts()) == running
    expect(page.locator("#job-table .result-count")).to_contain_text("2 jobs match these filters")
    screenshot(page, "04-jobs-filtered")

    shown = row_ids(page)
    bookmark = page.url
    page.reload()
    assert page.url == bookmark
    expect(rows(page)).to_have_count(2)
    assert row_ids(page) == shown
    expect(filters.get_by_role("searchbox")).to_have_value("Filterjob")
    expect(filters.get_by_label("Running")).to_be_checked()
    expect(filters.get_by_label("Pending")).not_to_be_checked()

    # A bookmark opened in a fresh tab shows the same view.
    other = page.context.new_page()
    other.goto(bookmark)
    expect(rows(other)).to_have_count(2)
    assert row_ids(other) == shown
    other.close()

    # Clearing the filters brings every job back.
    page.get_by_role("button", name="Clear filters").click()
    expect(rows(page)).to_have_count(PAGE_SIZE)
    expect(filters.get_by_role("searchbox")).to_have_value("")


def test_edit_modal_by_keyboard_error_then_save_in_place(
    page: Page, live_app, make_jobs, screenshot
) -> None:
    (job,) = make_jobs("Modaljob", [{"status": "pending", "priority": 1}])
    page.goto("/jobs/?q=Modaljob")
    expect(rows(page)).to_have_count(1)
    page.evaluate("window.stillThisPage = true")  # gone if the page navigates
    dialog = page.locator("#modal")
    edit_button = page.locator(f"#edit-{job['id']}")

    # Open with the keyboard; focus lands on the first field.
    edit_button.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    name = dialog.get_by_label("Name:", exact=True)
    expect(name).to_be_focused()
    expect(name).to_have_value("Modaljob 1")

    # Escape closes it, and focus returns to the Edit button.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(edit_button).to_be_focused()

    # Open again; blank the name and submit with Enter: the field error, nothing written.
    page.keyboard.press("Enter")
    expect(name).to_be_focused()
    settled(dialog)
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.press("Enter")
    expect(dialog.get_by_text("Name is required.")).to_be_visible()
    expect(dialog).to_be_visible()
    settled(dialog)
    screenshot(page, "05-edit-modal-error")
    assert job_state(live_app, job["id"])["version"] == job["version"]

    # Fix it, Tab to the priority, change it, and save with Enter.
    name = dialog.get_by_label("Name:", exact=True)
    expect(name).to_be_focused()  # the re-rendered form puts focus back on its first field
    page.keyboard.type("Modaljob 1 renamed")
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("Status:", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    priority = dialog.get_by_label("Priority:", exact=True)
    expect(priority).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("7")
    page.keyboard.press("Enter")

    expect(dialog).to_be_hidden()
    row = page.locator(f"#job-{job['id']}")
    expect(row.get_by_role("link", name="Modaljob 1 renamed")).to_be_visible()
    expect(row.locator("td").nth(3)).to_have_text("7")
    toast = page.locator("#toasts .toast")
    expect(toast).to_contain_text("Modaljob 1 renamed")
    expect(toast).to_contain_text("priority: 1 → 7")
    screenshot(page, "06-edit-saved-toast")
    expect(page.locator(f"#edit-{job['id']}")).to_be_focused()
    assert page.evaluate("window.stillThisPage") is True  # swapped in place, no navigation
    assert page.url.endswith("/jobs/?q=Modaljob")

    state = job_state(live_app, job["id"])
    assert (state["name"], state["priority"], state["version"]) == ("Modaljob 1 renamed", 7, 2)


def test_saves_of_different_fields_from_the_same_version_merge(
    browser, live_app, make_jobs, screenshot
) -> None:
    (job,) = make_jobs("Conflictjob", [{"status": "pending", "priority": 0}])
    pages = []
    contexts = []
    for _ in range(2):
        context = new_context(browser, live_app)
        contexts.append(context)
        pages.append(log_in(context, live_app))
    try:
        first, second = pages
        for page in pages:
            page.goto("/jobs/?q=Conflictjob")
            page.locator(f"#edit-{job['id']}").click()
            name = page.locator("#modal").get_by_label("Name:", exact=True)
            expect(name).to_have_value("Conflictjob 1")
            settled(page.locator("#modal"))

        first.locator("#modal").get_by_label("Priority:", exact=True).fill("3")
        first.locator("#modal").get_by_role("button", name="Save").click()
        expect(first.locator("#toasts .toast")).to_contain_text("priority: 0 → 3")

        dialog = second.locator("#modal")
        dialog.get_by_label("Name:", exact=True).fill("Conflictjob 1 by the second user")
        dialog.get_by_role("button", name="Save").click()
        expect(dialog).to_be_hidden()
        toast = second.locator("#toasts .toast")
        expect(toast).to_contain_text("name: Conflictjob 1 → Conflictjob 1 by the second user")
        expect(toast).to_contain_text("Kept the changes saved meanwhile by others.")
        screenshot(second, "07-edit-merged")

        state = job_state(live_app, job["id"])
        assert (state["name"], state["priority"], state["version"]) == (
            "Conflictjob 1 by the second user",
            3,
            3,
        )
        row = second.locator(f"#job-{job['id']}")
        expect(row).to_contain_text("Conflictjob 1 by the second user")
        expect(row.locator("td").nth(3)).to_have_text("3")
    finally:
        for context in contexts:
            close_checking_csp(context)


def test_cancel_a_job_with_a_reason(page: Page, live_app, make_jobs, screenshot) -> None:
    (job,) = make_jobs("Canceljob", [{"status": "running", "printer": "Bambu X1C"}])
    page.goto("/jobs/?q=Canceljob")
    row = page.locator(f"#job-{job['id']}")
    row.get_by_role("button", name="Cancel…").click()
    dialog = page.locator("#modal")
    expect(dialog.get_by_role("heading")).to_have_text("Cancel “Canceljob 1”?")
    expect(dialog.get_by_label("Reason")).to_be_focused()
    settled(dialog)
    dialog.get_by_label("Reason").fill("Customer withdrew the order")
    screenshot(page, "08-cancel-dialog")
    dialog.get_by_role("button", name="Cancel job").click()

    expect(dialog).to_be_hidden()
    expect(row.locator(".badge")).to_have_text("Cancelled")
    expect(row.get_by_role("button", name="Cancel…")).to_have_count(0)
    expect(page.locator("#toasts .toast")).to_contain_text("Cancelled “Canceljob 1”.")
    state = job_state(live_app, job["id"])
    assert (state["status"], state["reason"], state["cancelled_by"]) == (
        "cancelled",
        "Customer withdrew the order",
        "demo",
    )

    row.get_by_role("link", name="Canceljob 1").click()
    page.wait_for_url(f"**/jobs/{job['id']}/")
    facts = page.locator(".job-facts")
    expect(facts).to_contain_text("by demo: Customer withdrew the order")
    expect(page.locator(".history")).to_contain_text("status: running → cancelled")
    screenshot(page, "09-job-detail")


def test_a_text_search_fills_in_its_count_after_the_page(page: Page, make_jobs) -> None:
    make_jobs("Countjob", [{"priority": 1}] * (PAGE_SIZE + 3))
    page.goto("/jobs/?q=countjob")
    expect(rows(page)).to_have_count(PAGE_SIZE)
    expect(page.locator("#result-count")).to_have_text(
        re.compile(rf"^\s*{PAGE_SIZE + 3} jobs\s+match these filters\s*$")
    )
