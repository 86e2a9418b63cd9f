"""The import's page in a browser: row errors show while the import runs, the breadcrumbs
have separators, the uploaded file downloads under its own name, and the jobs of the import
are one click away."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from jobs.paging import COUNT_CAP
from jobsite.tests.browser.test_imports import (
    FINISH_MS,
    import_id,
    import_state,
    upload,
    write_jobs_csv,
)

pytestmark = pytest.mark.browser

SEPARATOR = """() => getComputedStyle(
  document.querySelector("nav[aria-label=breadcrumb] li:first-child"), "::after"
).content"""


def test_errors_while_running_download_breadcrumbs_and_jobs_link(
    page: Page, live_app, tmp_path: Path, screenshot
) -> None:
    path = write_jobs_csv(tmp_path / "e2e-page.csv", 200_000, "PGE")
    upload(page, path)
    pk = import_id(page)

    # Record 10 (spreadsheet row 11) is bad: it shows while the import is still processing.
    live_errors = page.locator("#import-live .live-errors")
    expect(live_errors.locator("tbody tr").first.locator("td").first).to_have_text(
        "11", timeout=FINISH_MS
    )
    expect(live_errors.locator("tbody tr").first.locator("td").nth(1)).to_have_text("printer")
    expect(page.locator("#import-live .badge")).to_have_text("Processing")
    screenshot(page, "import-errors-while-running")

    # The breadcrumb's separator (Pico draws it after every item but the last).
    assert page.evaluate(SEPARATOR) not in ("", "none", "normal")

    # The uploaded file, as it was, under its own name.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the uploaded file").click()
    download = download_info.value
    assert download.suggested_filename == "e2e-page.csv"
    assert Path(download.path()).read_bytes() == path.read_bytes()

    # Stop it, then open its jobs.
    page.get_by_role("button", name="Cancel import…").click()
    page.locator("#modal").get_by_role("button", name="Cancel import", exact=True).click()
    expect(page.locator("#import-live .badge")).to_have_text("Cancelled", timeout=FINISH_MS)
    created = import_state(live_app, pk)["created"]
    assert created > 0
    page.get_by_role("link", name="Jobs of this import").click()
    page.wait_for_url(re.compile(rf"/jobs/\?import={pk}$"))
    # The list counts up to 10,000 ("10,000+"); the cancel lands wherever the import got to.
    shown = f"{created:,} job" if created <= COUNT_CAP else f"{COUNT_CAP:,}+ jobs"
    expect(page.locator(".result-count")).to_contain_text(shown)


def test_import_anyway_without_choosing_the_file_again(
    page: Page, live_app, tmp_path: Path, screenshot
) -> None:
    path = write_jobs_csv(tmp_path / "e2e-twice.csv", 20, f"TWC{tmp_path.name[-6:]}")
    upload(page, path)
    first = import_id(page)
    expect(page.locator("#import-live .badge")).to_have_text("Completed", timeout=FINISH_MS)

    upload(page, path)
    warning = page.get_by_role("alert").filter(has_text="This file was imported before")
    expect(warning).to_be_visible()
    screenshot(page, "import-duplicate-warning")
    assert page.get_by_label("Another CSV file (optional)").input_value() == ""
    page.get_by_role("button", name="Import anyway").click()  # no file chosen this time

    second = import_id(page)
    assert second != first
    expect(page.locator("h1")).to_have_text("e2e-twice.csv")
    expect(page.locator("#import-live .badge")).to_have_text("Completed", timeout=FINISH_MS)
    # The same file, read in full from the kept copy.
    assert import_state(live_app, second)["processed"] == 20
    assert import_state(live_app, second)["status"] == "completed"
