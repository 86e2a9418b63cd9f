"""Cancelling an import from the imports list through the app's own dialog (never the
browser's confirm()): "Keep importing" leaves it running; confirming with a reason cancels
it, the row shows it and the reason is kept."""

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from jobsite.tests.browser.test_imports import FINISH_MS, import_id, upload, write_jobs_csv

pytestmark = pytest.mark.browser


def import_fields(live_app, pk: str) -> tuple[str, str]:
    code = (
        "import json; from imports.models import ImportJob; "
        f"i = ImportJob.objects.get(pk='{pk}'); "
        "print(json.dumps([i.status, i.cancellation_reason]))"
    )
    status, reason = json.loads(live_app.shell(code).splitlines()[-1])
    return status, reason


def test_cancel_from_the_list_with_a_reason(
    page: Page, live_app, tmp_path: Path, screenshot
) -> None:
    upload(page, write_jobs_csv(tmp_path / "e2e-list-cancel.csv", 200_000, "LCN"))
    pk = import_id(page)
    browser_dialogs: list[str] = []
    page.on("dialog", lambda dialog: browser_dialogs.append(dialog.message))

    page.goto("/imports/")
    row = page.locator(f"#import-row-{pk}")
    modal = page.locator("#modal")

    # Open, then keep importing: nothing happens to the import.
    row.get_by_role("button", name="Cancel…").click()
    expect(modal).to_be_visible()
    expect(modal.get_by_role("heading")).to_contain_text("e2e-list-cancel.csv")
    expect(modal.get_by_label("Reason")).to_be_focused()
    screenshot(page, "import-cancel-dialog")
    modal.get_by_role("button", name="Keep importing").click()
    expect(modal).to_be_hidden()
    assert import_fields(live_app, pk)[0] in ("pending", "processing")

    # Open again, give a reason and confirm.
    row.get_by_role("button", name="Cancel…").click()
    expect(modal).to_be_visible()
    modal.get_by_label("Reason").fill("Uploaded the wrong export")
    modal.get_by_role("button", name="Cancel import", exact=True).click()
    expect(modal).to_be_hidden()
    expect(page.locator("#toasts")).to_contain_text("Cancel")
    expect(row.locator(".badge")).to_have_text("Cancelled", timeout=FINISH_MS)
    expect(row.get_by_role("button", name="Cancel…")).to_have_count(0)

    assert import_fields(live_app, pk) == ("cancelled", "Uploaded the wrong export")
    assert browser_dialogs == []
