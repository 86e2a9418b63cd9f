"""The list's bulk runs as pages (docs/bulk-runs.md, "On the jobs list"): which path a
selection takes, the confirmation, the run page with its report and CSV, cancel, and
"Apply to the N that can change" after an all-or-nothing change fails."""

import csv
import io

import pytest
from django.urls import reverse

from jobs.bulk_runs import run_bulk_run
from jobs.models import BulkRun, Job, Printer
from jobs.runs import RunStatus
from jobs.status import JobStatus

pytestmark = pytest.mark.django_db
BAR = reverse("jobs:bulk-status")
NEW = reverse("jobs:bulk-run-new")


def test_a_non_status_action_on_ticked_jobs_is_confirmed_then_started(
    client_for, editor, make_job, django_capture_on_commit_callbacks, task_queue
) -> None:
    jobs = [make_job(name=f"J{n}") for n in range(3)]
    client = client_for(editor, htmx=True)
    ticked = {"action": "set_priority", "priority": "8", "ids": [jobs[0].pk, jobs[2].pk]}
    response = client.post(BAR, ticked)
    body = response.content.decode()
    assert response["HX-Retarget"] == "#bulk-result"
    assert "Set priority to 8: 2 jobs" in body
    assert 'name="confirm" value="1"' in body
    assert not BulkRun.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(editor).post(NEW, {**ticked, "confirm": "1"})
    run = BulkRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == run.get_absolute_url()
    assert (run.job_ids, run.new_priority, run.created_by, run.origin) == (
        [jobs[0].pk, jobs[2].pk],
        8,
        editor,
        "ui",
    )
    assert run.task_id and task_queue.queue_size() == 1


def test_more_than_100_ticked_for_a_status_is_a_bulk_run(client_for, editor) -> None:
    Job.objects.bulk_create(Job(name=f"J{n}") for n in range(101))
    ids = list(Job.objects.values_list("pk", flat=True))
    response = client_for(editor).post(BAR, {"status": "running", "ids": ids})
    assert response.status_code == 200  # the confirmation page, without JavaScript
    body = response.content.decode()
    assert "<h1>Confirm bulk change</h1>" in body
    assert "Set status to running: 101 jobs" in body
    assert not Job.objects.filter(status="running").exists()


def test_the_confirmation_says_what_will_be_skipped_and_why(client_for, editor, make_job) -> None:
    make_job(name="A")
    make_job(name="Done", status="completed")
    response = client_for(editor, htmx=True).post(
        BAR, {"scope": "matching", "query": "", "action": "cancel"}
    )
    body = response.content.decode()
    assert "Cancel: 2 jobs" in body
    assert "1: A completed job cannot be cancelled." in body


def test_a_filter_that_cannot_be_read_is_refused(client_for, editor, make_job) -> None:
    make_job()
    response = client_for(editor, htmx=True).post(
        BAR, {"scope": "matching", "query": "q=priority:high", "action": "cancel"}
    )
    assert "priority" in response.content.decode()
    assert response["HX-Retarget"] == "#bulk-result"
    assert not BulkRun.objects.exists()


def test_viewers_may_not_start_runs(client_for, viewer, make_job) -> None:
    job = make_job()
    data = {"action": "cancel", "ids": [job.pk], "confirm": "1"}
    assert client_for(viewer).post(NEW, data).status_code == 403
    assert not BulkRun.objects.exists()


def start_run(client, **data) -> BulkRun:
    client.post(NEW, {**data, "confirm": "1"})
    return BulkRun.objects.latest("pk")


def test_the_run_page_shows_progress_then_the_report(client_for, editor, make_job) -> None:
    make_job(name="A")
    make_job(name="=cmd|' /C calc'!A0", status="completed")
    client = client_for(editor)
    run = start_run(client, scope="matching", query="", action="cancel", reason="paper")
    page = client.get(run.get_absolute_url()).content.decode()
    assert "Waiting for a worker" in page
    assert 'hx-trigger="every 1s"' in page
    assert "Cancel run" in page

    run_bulk_run(run.pk)
    poll = client_for(editor, htmx=True).get(run.get_absolute_url())
    assert poll.status_code == 286  # the last poll
    body = poll.content.decode()
    assert "every 1s" not in body
    assert "1 changed, 1 skipped, of 2 selected." in body
    assert "A completed job cannot be cancelled." in body
    assert reverse("jobs:bulk-run-skipped", args=[run.pk]) in body

    download = client.get(reverse("jobs:bulk-run-skipped", args=[run.pk]))
    text = b"".join(download.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["job_id", "name", "status", "reason"]
    assert rows[1][1] == "'=cmd|' /C calc'!A0"  # formula-safe
    assert rows[1][3] == "A completed job cannot be cancelled."
    listing = client.get(reverse("jobs:bulk-runs")).content.decode()
    assert run.get_absolute_url() in listing


def test_cancel_from_the_run_page(client_for, editor, viewer, make_job) -> None:
    make_job()
    run = start_run(
        client_for(editor), scope="matching", query="", action="set_priority", priority="3"
    )
    cancel = reverse("jobs:bulk-run-cancel", args=[run.pk])
    assert client_for(viewer).post(cancel).status_code == 403
    response = client_for(editor, htmx=True).post(cancel)
    assert "Cancelled after 0 jobs" in response.content.decode()
    run.refresh_from_db()
    assert (run.status, run.cancelled_by) == (RunStatus.CANCELLED, editor)
    again = client_for(editor, htmx=True).post(cancel)
    assert "already cancelled" in again["HX-Trigger"]


def test_outsiders_see_no_run(client_for, editor, outsider, make_job) -> None:
    make_job()
    run = start_run(client_for(editor), scope="matching", query="", action="cancel")
    assert client_for(outsider).get(run.get_absolute_url()).status_code == 403
    skipped = reverse("jobs:bulk-run-skipped", args=[run.pk])
    assert client_for(outsider).get(skipped).status_code == 403
    assert client_for(editor).get(reverse("jobs:bulk-run", args=[999])).status_code == 404


def test_an_assigned_printer_must_be_active(client_for, editor, make_job) -> None:
    job = make_job()
    Printer.objects.create(name="Old", is_active=False)
    response = client_for(editor, htmx=True).post(
        BAR, {"action": "set_printer", "printer": "Old", "ids": [job.pk]}
    )
    assert "is not active" in response.content.decode()
    body = client_for(editor).get(reverse("jobs:list")).content.decode()
    assert '<option value="Old">' not in body


def test_after_an_atomic_failure_apply_to_those_that_can_change(
    client_for, editor, make_job
) -> None:
    ok = [make_job(name="A"), make_job(name="B")]
    done = make_job(name="Done", status="completed")
    client = client_for(editor, htmx=True)
    response = client.post(BAR, {"status": "running", "ids": [ok[0].pk, done.pk, ok[1].pk]})
    body = response.content.decode()
    assert "Apply to the 2 that can change" in body
    assert f'data-blocked-ids="{done.pk}"' in body
    for job in ok:
        assert f'name="ids" value="{job.pk}"' in body
    assert f'name="ids" value="{done.pk}"' not in body
    response = client.post(BAR, {"status": "running", "ids": [ok[0].pk, ok[1].pk]})
    assert "Set 2 jobs to running." in response["HX-Trigger"]
    assert "jobsite:selection-done" in response["HX-Trigger"]
    assert list(Job.objects.order_by("pk").values_list("status", flat=True)) == [
        JobStatus.RUNNING,
        JobStatus.RUNNING,
        JobStatus.COMPLETED,
    ]


def test_status_options_name_the_statuses_they_may_be_reached_from(
    client_for, editor, make_job
) -> None:
    make_job()
    body = client_for(editor).get(reverse("jobs:list")).content.decode()
    # Only a running job may complete (or stay completed): app.js offers "Completed" only then.
    assert '<option value="completed" data-from="running completed">' in body
    assert 'data-status="pending"' in body
