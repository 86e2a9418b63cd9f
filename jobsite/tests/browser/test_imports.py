"""CSV imports in a real browser against the live app's real qcluster (IMPORT_BATCH_SIZE=200):
upload, the live progress bar, counts, the error table and its CSV download, the duplicate
warning, cancelling a large import mid-way, and the Cluster page."""

import csv
import io
import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SAMPLES = Path(__file__).resolve().parents[3] / "docs" / "samples"
BATCH_SIZE = 200  # the live app's IMPORT_BATCH_SIZE
PRINTERS = ("Prusa MK4 #1", "Prusa MK4 #2", "Bambu X1C", "Form 3")
FINISH_MS = 240_000  # the cluster runs one import at a time on a loaded machine

# Bad rows of the generated file: data record number -> name, priority, printer.
BAD_ROWS = {
    10: ("=SUM(1)", "3", "No such printer"),
    5000: ("Too urgent", "12", "Bambu X1C"),
    15000: ("Not a number", "high", "Form 3"),
}


def write_jobs_csv(path: Path, rows: int, tag: str) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["name", "priority", "printer", "reference"])
        for number in range(1, rows + 1):
            if number in BAD_ROWS:
                name, priority, printer = BAD_ROWS[number]
            else:
                name, priority = f"{tag} job {number}", str(number % 11)
                printer = PRINTERS[number % len(PRINTERS)]
            writer.writerow([name, priority, printer, f"{tag}-{number:06d}"])
    return path


def upload(page: Page, path: Path) -> None:
    page.goto("/imports/new/")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and import").click()


def import_id(page: Page) -> str:
    page.wait_for_url(re.compile(r"/imports/[0-9a-f-]{36}/$"))
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def progress_value(page: Page) -> str | None:
    return page.locator("progress.import-progress").get_attribute("value")


def stat(page: Page, label: str):
    return page.locator(".import-stats div").filter(has=page.locator(f"dt:text-is('{label}')"))


def import_state(live_app, pk: str) -> dict:
    code = (
        "import json; from imports.models import ImportJob; from jobs.models import Job; "
        f"i = ImportJob.objects.get(pk='{pk}'); "
        "print(json.dumps(dict(status=i.status, processed=i.processed_rows, "
        "checkpoint=i.checkpoint, created=i.created_count, errors=i.error_count, "
        "jobs=Job.objects.filter(source_import=i).count())))"
    )
    return json.loads(live_app.shell(code).splitlines()[-1])


def test_upload_live_progress_errors_download_and_duplicate(
    page: Page, live_app, tmp_path: Path, screenshot
) -> None:
    rows = 20_000
    path = write_jobs_csv(tmp_path / "e2e-progress.csv", rows, "UPL")
    page.goto("/imports/new/")
    screenshot(page, "11-upload-form")
    upload(page, path)
    pk = import_id(page)
    page.evaluate("window.stillThisPage = true")  # gone if the page reloads or navigates

    # Watch the bar: every value it shows, until 100%, without reloading the page.
    seen: list[int] = []
    mid_way_shot = False
    while not seen or seen[-1] < 100:
        page.wait_for_function(
            """last => {
                const bar = document.querySelector("progress.import-progress");
                const value = bar && bar.getAttribute("value");
                return value !== null && Number(value) !== last;
            }""",
            arg=seen[-1] if seen else -1,
            timeout=FINISH_MS,
        )
        value = progress_value(page)
        seen.append(int(value))
        if 0 < seen[-1] < 100 and not mid_way_shot:
            screenshot(page, "12-import-progress-mid-way")
            mid_way_shot = True
    assert page.evaluate("window.stillThisPage") is True
    assert seen == sorted(seen), seen  # it only moves forward
    assert any(0 < value < 100 for value in seen), f"no step between 0 and 100: {seen}"

    live = page.locator("#import-live")
    expect(live.locator(".badge")).to_have_text("Completed")
    expect(live).not_to_have_attribute("hx-trigger", re.compile("every"))  # polling stopped
    expect(page.locator(".import-progress-text")).to_contain_text(f"{rows:,} of {rows:,}")
    expect(stat(page, "Created").locator("dd")).to_have_text(f"{rows - len(BAD_ROWS):,}")
    expect(stat(page, "Errors").locator("dd")).to_have_text(str(len(BAD_ROWS)))
    expect(stat(page, "Skipped").locator("dd")).to_have_text("0")

    # The error table came with the last poll: spreadsheet row numbers (header = row 1).
    table = page.locator("table.import-errors tbody tr")
    expect(table).to_have_count(len(BAD_ROWS))
    expect(table.locator("td:first-child")).to_have_text([str(n + 1) for n in BAD_ROWS])
    expect(table.locator("td:nth-child(2)")).to_have_text(["printer", "priority", "priority"])
    assert import_state(live_app, pk) == {
        "status": "completed",
        "processed": rows,
        "checkpoint": rows,
        "created": rows - len(BAD_ROWS),
        "errors": len(BAD_ROWS),
        "jobs": rows - len(BAD_ROWS),
    }

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download errors as CSV").click()
    download = download_info.value
    assert download.suggested_filename == "e2e-progress-errors.csv"
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    records = list(csv.reader(io.StringIO(text)))
    assert records[0] == ["row", "field", "error_type", "message", "raw_data"]
    assert [(r[0], r[1]) for r in records[1:]] == [
        ("11", "printer"),
        ("5001", "priority"),
        ("15001", "priority"),
    ]
    assert "No such printer" in records[1][3]
    # A cell that a spreadsheet would run as a formula is escaped.
    assert records[1][4].startswith("'=SUM(1)"), records[1][4]
    assert "UPL-005000" in records[2][4]

    # The same file again: the earlier import is shown and nothing is enqueued.
    upload(page, path)
    warning = page.get_by_role("alert").filter(has_text="This file was imported before")
    expect(warning).to_be_visible()
    expect(warning.get_by_role("link", name="e2e-progress.csv").first).to_have_attribute(
        "href", f"/imports/{pk}/"
    )
    expect(warning).to_contain_text("uploaded by demo")
    expect(warning).to_contain_text("Completed")
    expect(warning).to_contain_text(f"{rows - len(BAD_ROWS):,} created")
    expect(page.get_by_role("button", name="Import anyway")).to_be_visible()
    assert page.url.endswith("/imports/new/")
    screenshot(page, "14-duplicate-warning")


def test_sample_with_errors_shows_the_error_table(page: Page, live_app, screenshot) -> None:
    upload(page, SAMPLES / "jobs-with-errors.csv")
    pk = import_id(page)
    expect(page.locator("#import-live .badge")).to_have_text("Completed", timeout=FINISH_MS)
    expect(stat(page, "Created").locator("dd")).to_have_text("2")
    expect(stat(page, "Errors").locator("dd")).to_have_text("6")
    table = page.locator("table.import-errors tbody tr")
    expect(table).to_have_count(6)
    expect(table.locator("td:first-child")).to_have_text(["3", "4", "5", "6", "7", "8"])
    expect(table.locator("td:nth-child(2)")).to_have_text(
        ["name", "status", "customer_name", "printer", "priority", "reference"]
    )
    expect(table.nth(0)).to_contain_text("Name is required.")
    expect(table.nth(5)).to_contain_text("Duplicate")  # the repeated reference ERR-1
    expect(table.nth(5).locator("code")).to_contain_text("ERR-1")
    screenshot(page, "13-import-finished-with-errors")
    state = import_state(live_app, pk)
    assert (state["created"], state["errors"], state["jobs"]) == (2, 6, 2)


def test_cancel_a_large_import_mid_way(page: Page, live_app, tmp_path: Path, screenshot) -> None:
    # Far more rows than a fast machine imports between the first progress poll and the
    # cancel; the cancel stops it early, so the test stays quick.
    rows = 200_000
    upload(page, write_jobs_csv(tmp_path / "e2e-large.csv", rows, "BIG"))
    pk = import_id(page)
    # Under way: at least one batch committed.
    page.wait_for_function(
        """() => {
            const bar = document.querySelector("progress.import-progress");
            return bar && Number(bar.getAttribute("value")) > 0;
        }""",
        timeout=FINISH_MS,
    )
    browser_dialogs: list[str] = []
    page.on("dialog", lambda dialog: browser_dialogs.append(dialog.message))
    # The app's own confirmation dialog, with an optional reason.
    page.get_by_role("button", name="Cancel import…").click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    modal.get_by_label("Reason").fill("Wrong file")
    modal.get_by_role("button", name="Cancel import", exact=True).click()
    expect(modal).to_be_hidden()
    # "Cancel requested: …", or "Import cancelled." when the worker's lease ran out meanwhile
    # (a busy machine): either way the import ends cancelled, below.
    expect(page.locator("#toasts")).to_contain_text(re.compile("cancel", re.IGNORECASE))
    assert browser_dialogs == []

    status = page.locator("#import-live .import-status")
    expect(status).to_contain_text("Cancelled after", timeout=FINISH_MS)
    expect(status).to_contain_text("Reason: Wrong file")
    match = re.search(r"Cancelled after ([\d,]+) rows?", status.inner_text())
    assert match, status.inner_text()
    cancelled_after = int(match.group(1).replace(",", ""))
    assert 0 < cancelled_after < rows
    assert cancelled_after % BATCH_SIZE == 0  # stopped at a batch boundary
    expect(page.locator("#import-live .badge")).to_have_text("Cancelled")
    expect(page.get_by_role("button", name="Cancel import…")).to_have_count(0)
    screenshot(page, "15-import-cancelled")

    state = import_state(live_app, pk)
    assert state["status"] == "cancelled"
    assert state["processed"] == state["checkpoint"] == cancelled_after
    # No bad rows in the first part of the file except record 10; created + errors = processed.
    assert state["jobs"] == state["created"] == cancelled_after - state["errors"]
    expect(stat(page, "Created").locator("dd")).to_have_text(f"{state['created']:,}")


def test_cluster_page_shows_the_running_cluster(page: Page, screenshot) -> None:
    page.get_by_role("link", name="Cluster").click()
    page.wait_for_url("**/cluster/")
    expect(page.get_by_role("heading", name="Clusters and workers")).to_be_visible()
    expect(page.get_by_text(re.compile(r"1 cluster running \d+ workers?"))).to_be_visible()
    expect(page.get_by_role("cell", name="imports-resume-stalled")).to_be_visible()
    screenshot(page, "16-cluster")
