"""Daily use of the jobs pages (issue 19): the list and the edit dialog on a phone, edits
merged with a change saved meanwhile, one history entry per filter change, the edit
dialog's errors and rules, rows whose text wraps, a reversed date range and the skip link,
and the job page's Edit, Cancel and Reopen.

Each test makes jobs of its own (a distinct name prefix) in the shared live app.
"""

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from jobsite.tests.browser.conftest import close_checking_csp, log_in, new_context
from jobsite.tests.browser.test_jobs_page import job_state, rows, settled

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def phone(browser, live_app) -> Iterator[Page]:
    context = new_context(browser, live_app, **PHONE)
    yield log_in(context, live_app)
    close_checking_csp(context)


@pytest.fixture
def short_page(browser, live_app) -> Iterator[Page]:
    """A desktop window too short for the whole edit form."""
    context = new_context(browser, live_app, viewport={"width": 1280, "height": 600})
    yield log_in(context, live_app)
    close_checking_csp(context)


def settles_inside_viewport(page: Page, locator, seconds: float = 5) -> bool:
    """inside_viewport once the layout has settled (a dialog that just opened may still be
    moving into place on a busy machine)."""
    deadline = time.monotonic() + seconds
    while not inside_viewport(page, locator):
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(100)
    return True


def inside_viewport(page: Page, locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"] + 0.5
        and box["y"] + box["height"] <= size["height"] + 0.5
    )


def page_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


# Item 1: a phone.


def test_phone_list_fits_the_screen_and_edit_opens_by_tap(phone: Page, make_jobs) -> None:
    (job,) = make_jobs("Phonejob", [{"status": "pending", "priority": 2}])
    phone.goto("/jobs/?q=Phonejob")
    expect(rows(phone)).to_have_count(1)
    assert page_width(phone) <= 390

    row = phone.locator(f"#job-{job['id']}")
    edit = row.get_by_role("button", name="Edit")
    cancel = row.get_by_role("button", name="Cancel…")
    assert phone.locator("#job-table figure").evaluate("figure => figure.scrollLeft") == 0
    edit.scroll_into_view_if_needed()
    assert inside_viewport(phone, edit) and inside_viewport(phone, cancel)

    edit.tap()
    dialog = phone.locator("#modal")
    expect(dialog.get_by_label("Name:", exact=True)).to_have_value("Phonejob 1")
    card = dialog.locator("article.modal-card")
    assert settles_inside_viewport(phone, card)
    assert inside_viewport(phone, dialog.get_by_role("button", name="Save"))
    assert page_width(phone) <= 390


def test_phone_user_menu_and_date_fields_are_not_clipped(phone: Page) -> None:
    phone.goto("/jobs/")
    assert page_width(phone) <= 390
    for label in ("Created from", "Created to"):
        field = phone.get_by_label(label, exact=True)
        field.scroll_into_view_if_needed()
        assert inside_viewport(phone, field), label

    menu = phone.locator("header details.dropdown")
    menu.locator("summary").click()
    log_out = menu.get_by_role("button", name="Log out")
    expect(log_out).to_be_visible()
    assert inside_viewport(phone, log_out)
    assert inside_viewport(phone, menu.get_by_role("link", name="API tokens"))
    assert page_width(phone) <= 390


# Item 2: concurrent edits.


def test_same_field_changed_by_both_is_chosen_per_field_keeping_what_was_typed(
    browser, live_app, make_jobs, screenshot
) -> None:
    (job,) = make_jobs("Mergejob", [{"status": "pending", "priority": 0}])
    contexts = [new_context(browser, live_app) for _ in range(2)]
    try:
        first, second = (log_in(context, live_app) for context in contexts)
        for page in (first, second):
            page.goto("/jobs/?q=Mergejob")
            page.locator(f"#edit-{job['id']}").click()
            expect(page.locator("#modal").get_by_label("Name:", exact=True)).to_be_visible()
            settled(page.locator("#modal"))

        mine = first.locator("#modal")
        mine.get_by_label("Priority:", exact=True).fill("4")
        mine.get_by_role("button", name="Save").click()
        expect(first.locator("#toasts .toast")).to_contain_text("priority: 0 → 4")

        dialog = second.locator("#modal")
        dialog.get_by_label("Name:", exact=True).fill("Mergejob 1 renamed")
        dialog.get_by_label("Priority:", exact=True).fill("9")
        dialog.get_by_label("Notes:", exact=True).fill("typed notes")
        dialog.get_by_role("button", name="Save").click()

        conflict = dialog.locator(".conflict")
        expect(conflict).to_contain_text("Someone else changed a field you changed too")
        panel = conflict.locator("fieldset", has_text="Priority")
        expect(panel).to_contain_text("Yours: 9")
        expect(panel).to_contain_text("Theirs: 4")
        expect(panel).to_contain_text("set by demo")
        expect(conflict.locator("fieldset")).to_have_count(1)  # the name and notes merge
        expect(dialog.get_by_label("Name:", exact=True)).to_have_value("Mergejob 1 renamed")
        expect(dialog.get_by_label("Notes:", exact=True)).to_have_value("typed notes")
        expect(panel.get_by_role("radio").first).to_be_focused()
        screenshot(second, "polish-merge-conflict")
        assert job_state(live_app, job["id"])["version"] == 2  # nothing saved yet

        settled(dialog)
        panel.get_by_role("radio", name=re.compile("Theirs")).check()
        dialog.get_by_role("button", name="Save").click()
        expect(dialog).to_be_hidden()
        state = job_state(live_app, job["id"])
        assert (state["name"], state["priority"], state["version"]) == (
            "Mergejob 1 renamed",
            4,
            3,
        )
        assert live_app.shell(
            f"from jobs.models import Job; print(Job.objects.get(pk={job['id']}).notes)"
        ).endswith("typed notes")
    finally:
        for context in contexts:
            close_checking_csp(context)


# Item 3: history.


def test_one_history_entry_per_filter_change(page: Page, make_jobs) -> None:
    make_jobs("Historyjob", [{"status": "pending"}])
    page.goto("/jobs/")
    page.evaluate(
        """() => { window.historyUpdates = [];
        for (const kind of ["pushedIntoHistory", "replacedInHistory"]) {
            document.body.addEventListener(`htmx:${kind}`, () => {
                window.historyUpdates.push(kind);
                document.body.dataset.historyUpdates = window.historyUpdates.length;
            });
        } }"""
    )
    start = page.evaluate("history.length")
    search = page.locator("#job-filters").get_by_role("searchbox")
    search.fill("Historyjob")
    expect(rows(page)).to_have_count(1)
    search.press("Enter")
    expect(page.locator("body")).to_have_attribute("data-history-updates", "2")
    page.locator("#job-filters").get_by_role("button", name="Filter", exact=True).click()
    expect(page.locator("body")).to_have_attribute("data-history-updates", "3")
    assert page.evaluate("window.historyUpdates") == [
        "pushedIntoHistory",
        "replacedInHistory",
        "replacedInHistory",
    ]
    assert page.evaluate("history.length") == start + 1
    expect(page).to_have_url(re.compile(r"/jobs/\?q=Historyjob$"))

    page.go_back()
    expect(page).to_have_url(re.compile(r"/jobs/$"))


# Item 6: the edit dialog.


def test_edit_errors_keep_save_in_view_and_focus_the_first_invalid_field(
    short_page: Page, live_app, make_jobs
) -> None:
    (job,) = make_jobs("Errorjob", [{"status": "pending"}])
    page = short_page
    page.goto("/jobs/?q=Errorjob")
    page.locator(f"#edit-{job['id']}").click()
    dialog = page.locator("#modal")
    expect(dialog.get_by_label("Name:", exact=True)).to_be_visible()
    settled(dialog)

    expect(dialog.get_by_text("A whole number 0–10; 10 is the most urgent.")).to_be_visible()
    expect(dialog.get_by_text("Required for business jobs")).to_be_visible()
    expect(dialog.get_by_label("Printer:", exact=True).locator("option:checked")).to_have_text(
        "No printer"
    )
    expect(dialog.get_by_role("button", name="Close")).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel job…")).to_be_visible()

    dialog.get_by_label("Business", exact=False).check()
    dialog.get_by_label("Priority:", exact=True).fill("11")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator(".field-priority")).to_contain_text("10")
    priority = dialog.get_by_label("Priority:", exact=True)
    expect(priority).to_have_attribute("aria-invalid", "true")
    expect(priority).to_be_focused()
    assert inside_viewport(page, dialog.get_by_role("button", name="Save"))
    dialog.locator(".field-customer_name").scroll_into_view_if_needed()
    assert inside_viewport(page, dialog.get_by_role("button", name="Save"))

    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    assert job_state(live_app, job["id"])["version"] == 1


# Item 7: rows.


def test_rows_whose_text_wraps_keep_their_cells_aligned_and_striped(page: Page, make_jobs) -> None:
    customer = " ".join(["A customer with a long name"] * 6)
    make_jobs("Wrapjob", [{"customer_name": customer}, {"customer_name": customer}])
    page.set_viewport_size({"width": 1000, "height": 900})
    page.goto("/jobs/?q=Wrapjob")
    expect(rows(page)).to_have_count(2)
    heights = rows(page).evaluate_all(
        """rows => rows.map(row => {
            const box = row.getBoundingClientRect();
            return Array.from(row.cells).map(cell => {
                const c = cell.getBoundingClientRect();
                return [Math.round(c.top - box.top), Math.round(c.bottom - box.bottom),
                        getComputedStyle(cell).display];
            });
        })"""
    )
    for cells in heights:
        for top, bottom, display in cells:
            assert (top, bottom, display) == (0, 0, "table-cell")
    first = rows(page).first
    assert first.evaluate("row => row.getBoundingClientRect().height") > 60  # it did wrap
    stripes = first.locator("td").evaluate_all(
        "cells => cells.map(cell => getComputedStyle(cell).backgroundImage !== 'none'"
        " || getComputedStyle(cell).backgroundColor)"
    )
    assert len(set(map(str, stripes[:-1]))) == 1 and stripes[-1] is True  # the sticky cell too


# Item 8: filters.


def test_a_reversed_date_range_is_explained(page: Page) -> None:
    page.goto("/jobs/")
    page.get_by_label("Created from", exact=True).fill("2026-02-01")
    page.get_by_label("Created to", exact=True).fill("2026-01-01")
    page.locator("#job-filters").get_by_role("button", name="Filter", exact=True).click()
    problem = page.locator("#job-table .filter-problems")
    expect(problem).to_contain_text(
        "Created: The “from” date 2026-02-01 is after the “to” date 2026-01-01"
    )
    expect(problem).to_contain_text("swap them")


def test_the_skip_link_jumps_to_the_results(page: Page) -> None:
    """The first Tab stop of the page, it takes the focus past the navigation and the
    filters to the table."""
    page.goto("/jobs/")
    skip = page.get_by_role("link", name="Skip to the results")
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    assert inside_viewport(page, skip)
    page.keyboard.press("Enter")
    expect(page.locator("#job-table")).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("document.getElementById('job-table').contains(document.activeElement)")


# Item 9: the job page.


def test_job_page_edit_cancel_and_reopen_in_place(page: Page, live_app, make_jobs) -> None:
    (job,) = make_jobs("Detailjob", [{"status": "pending", "priority": 1}])
    page.goto(f"/jobs/{job['id']}/")
    page.evaluate("window.stillThisPage = true")
    live = page.locator("#job-live")

    live.get_by_role("button", name="Edit").click()
    dialog = page.locator("#modal")
    expect(dialog.get_by_label("Name:", exact=True)).to_have_value("Detailjob 1")
    settled(dialog)
    dialog.get_by_label("Priority:", exact=True).fill("6")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(live.locator(".job-facts")).to_contain_text("6")
    expect(live.locator(".history")).to_contain_text("priority: 1 → 6")

    live.get_by_role("button", name="Cancel job…").click()
    expect(dialog.get_by_role("heading")).to_have_text("Cancel “Detailjob 1”?")
    settled(dialog)
    dialog.get_by_label("Reason").fill("Customer withdrew")
    dialog.get_by_role("button", name="Cancel job").click()
    expect(dialog).to_be_hidden()
    expect(live.locator("h1 .badge")).to_have_text("Cancelled")
    expect(live.locator(".history li").first).to_contain_text("Reason: “Customer withdrew”")

    live.get_by_role("button", name="Reopen").click()
    expect(live.locator("h1 .badge")).to_have_text("Pending")
    expect(live.get_by_role("button", name="Reopen")).to_have_count(0)
    expect(page.locator("#toasts .toast").last).to_contain_text("it is pending again")
    assert page.evaluate("window.stillThisPage") is True
    state = job_state(live_app, job["id"])
    assert (state["status"], state["priority"], state["events"]) == ("pending", 6, 4)


def test_job_page_edit_is_a_link_without_javascript(browser, live_app, make_jobs) -> None:
    (job,) = make_jobs("Nojsjob", [{"status": "pending"}])
    context = new_context(browser, live_app, java_script_enabled=False)
    try:
        page = log_in(context, live_app)
        page.goto(f"/jobs/{job['id']}/")
        page.locator("#job-live").get_by_role("button", name="Edit").click()
        expect(page).to_have_url(re.compile(rf"/jobs/{job['id']}/edit/$"))
        expect(page.get_by_label("Name:", exact=True)).to_have_value("Nojsjob 1")
    finally:
        close_checking_csp(context)
