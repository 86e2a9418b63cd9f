"""Live pages in a real browser (static/js/live.js against jobs/live.py): another writer's
change reaches an open jobs list (the row swapped in place and marked), a new matching job is
announced and "show" brings it in, the pause toggle stops the polls, a job's page and its edit
dialog follow the job, and a finished import's toast appears on the next poll and page.

The other writer is the live app's Django, driven from here (`live_app.shell`)."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from jobsite.testing import qcluster

pytestmark = pytest.mark.browser

SAMPLES = Path(__file__).resolve().parents[3] / "docs" / "samples"
LIVE_MS = 20_000  # a poll every 5 s, on a loaded machine
FINISH_MS = 240_000  # the cluster runs one import at a time on a loaded machine


def change(live_app, job_id: int, **changes) -> None:
    """Another user changes the job, as any write path does (Job.apply_changes)."""
    live_app.shell(
        "from django.contrib.auth.models import User; from jobs.models import Job; "
        "writer, _ = User.objects.get_or_create(username='livewriter'); "
        f"Job.objects.get(pk={job_id}).apply_changes({changes!r}, actor=writer, origin='api')"
    )


def live_polls(page: Page) -> list[str]:
    """The URLs of the list's polls the page makes from now on."""
    seen: list[str] = []
    page.on(
        "request",
        lambda request: seen.append(request.url) if "/jobs/live/" in request.url else None,
    )
    return seen


def test_list_swaps_changed_rows_and_announces_new_jobs(
    page: Page, live_app, make_jobs, screenshot
) -> None:
    made = make_jobs("Liverow", [{"priority": 1}, {"priority": 2}, {"priority": 3}])
    page.goto("/jobs/?q=Liverow")
    rows = page.locator("#job-table tbody tr")
    expect(rows).to_have_count(3)
    pause = page.get_by_role("button", name="Pause live updates")
    expect(pause).to_have_attribute("aria-pressed", "false")

    first = made[0]
    change(live_app, first["id"], priority=9)
    row = page.locator(f"#job-{first['id']}")
    expect(row).to_have_class(re.compile(r"\blive-changed\b"), timeout=LIVE_MS)
    expect(row).to_have_attribute("data-version", str(first["version"] + 1))
    expect(row.locator("td").nth(3)).to_have_text("9")
    expect(row).to_contain_text("livewriter")
    screenshot(page, "live-01-row-changed")

    make_jobs("Liverow-late", [{}])
    news = page.locator(".live-news")
    expect(news).to_contain_text("1 new job", timeout=LIVE_MS)
    expect(rows).to_have_count(3)  # announced, not pushed in under the cursor
    screenshot(page, "live-02-new-job")
    page.get_by_role("button", name="show").click()
    expect(rows).to_have_count(4)
    expect(page.locator("#job-table")).to_contain_text("Liverow-late 1")
    expect(page.get_by_role("button", name="show")).to_be_hidden()


def test_pause_stops_updates_until_resumed(page: Page, live_app, make_jobs) -> None:
    made = make_jobs("Livepause", [{"priority": 1}])
    job = made[0]
    page.goto("/jobs/?q=Livepause")
    row = page.locator(f"#job-{job['id']}")
    expect(row).to_be_visible()
    pause = page.get_by_role("button", name="Pause live updates")
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "true")
    polls = live_polls(page)
    change(live_app, job["id"], priority=6)
    page.wait_for_timeout(7_000)  # longer than a poll's interval
    assert polls == []
    expect(row).to_have_attribute("data-version", str(job["version"]))

    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "false")
    expect(row).to_have_attribute("data-version", str(job["version"] + 1), timeout=LIVE_MS)


def test_job_page_and_edit_dialog_follow_the_job(
    page: Page, live_app, make_jobs, screenshot
) -> None:
    job = make_jobs("Livedetail", [{"priority": 1}])[0]
    page.goto(f"/jobs/{job['id']}/")
    section = page.locator("#job-live")
    expect(section).to_have_attribute("data-version", str(job["version"]))
    change(live_app, job["id"], priority=8)
    expect(section).to_have_attribute("data-version", str(job["version"] + 1), timeout=LIVE_MS)
    expect(section.locator("dd").first).to_have_text("8")
    expect(section).to_contain_text("livewriter")

    page.goto("/jobs/?q=Livedetail")
    page.locator(f"#edit-{job['id']}").click()
    dialog = page.locator("#modal")
    expect(dialog).to_be_visible()
    name = dialog.locator("input[name=name]")
    name.fill("Typed before the change")
    change(live_app, job["id"], priority=4)
    notice = dialog.locator(".live-notice")
    expect(notice).to_contain_text("Changed meanwhile by livewriter", timeout=LIVE_MS)
    notice.get_by_text("See the latest values").click()
    expect(notice).to_contain_text("priority: 8 → 4")
    expect(name).to_have_value("Typed before the change")
    screenshot(page, "live-03-edit-changed-meanwhile")


def test_a_finished_import_is_a_toast_on_the_next_poll_and_page(page: Page, live_app) -> None:
    page.goto("/jobs/?q=Livetoast")
    sample = str(SAMPLES / "jobs-valid.csv")
    qcluster.manage(live_app.env, "import_jobs", sample, "--user", "demo", "--force")
    toast = page.locator("#toasts [data-live-toast]")
    expect(toast).to_contain_text("Import “jobs-valid.csv” completed", timeout=FINISH_MS)
    expect(toast.get_by_role("link")).to_have_attribute(
        "href", re.compile(r"^/imports/[0-9a-f-]{36}/$")
    )
    toast.get_by_role("button", name="Dismiss").click()
    expect(toast).to_have_count(0)

    page.goto("/imports/new/")  # a page that polls nothing
    finished = qcluster.manage(
        live_app.env, "import_jobs", sample, "--user", "demo", "--force", "--wait"
    )
    assert finished.returncode == 0, finished.stdout
    page.goto("/jobs/bulk-runs/")
    expect(toast).to_have_count(1)
    expect(toast).to_contain_text("Import “jobs-valid.csv” completed")
    toast.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/imports/[0-9a-f-]{36}/$"))
    expect(page.locator("#toasts [data-live-toast]")).to_have_count(0)  # not on its own page
