"""`manage.py bulk_jobs` (docs/bulk-runs.md, "The command"): the run it makes, its output and
exit codes. The runs are worked in this process when enqueued; test_bulk_runs_cluster.py
follows one on a real cluster with --wait."""

import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from jobs import bulk_runs
from jobs.management.commands import bulk_jobs as bulk_jobs_command
from jobs.models import BulkRun, Job
from jobs.status import JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def worked_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a run works it here at once, as a cluster worker would (the test's
    transaction never commits, so nothing would be enqueued)."""

    def start_and_work(run: BulkRun) -> BulkRun:
        bulk_runs.start_bulk_run(run, enqueue=False)
        bulk_runs.run_bulk_run(run.pk)
        return run

    monkeypatch.setattr(bulk_jobs_command, "start_bulk_run", start_and_work)


def bulk_jobs(*args: str, capture: Any) -> tuple[int, dict[str, Any] | str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with capture(execute=True):
        try:
            call_command("bulk_jobs", *args, stdout=out, stderr=err)
        except SystemExit as exit_:
            code = int(exit_.code)
    text = out.getvalue()
    try:
        return code, json.loads(text), err.getvalue()
    except ValueError:
        return code, text, err.getvalue()


def test_enqueues_and_prints_the_run_as_json(
    editor: User, django_capture_on_commit_callbacks: Any, task_queue: Any
) -> None:
    Job.objects.create(name="A", status=JobStatus.FAILED)
    code, run, _ = bulk_jobs(
        "--filter",
        "q=status:failed",
        "--retry-failed",
        "--user",
        "editor",
        capture=django_capture_on_commit_callbacks,
    )
    assert code == 0
    assert isinstance(run, dict)
    saved = BulkRun.objects.get(pk=run["id"])
    assert (run["status"], run["action"], run["query"]) == (
        "pending",
        "retry_failed",
        "q=status:failed",
    )
    assert (saved.created_by, saved.origin) == (editor, "cli")
    assert saved.task_id  # on the queue
    assert task_queue.queue_size() == 1


def test_wait_exits_0_when_every_job_changed(
    editor: User, django_capture_on_commit_callbacks: Any, worked_in_process: None
) -> None:
    Job.objects.create(name="A")
    code, run, progress = bulk_jobs(
        "--filter", "", "--set-priority", "5", "--wait", capture=django_capture_on_commit_callbacks
    )
    assert code == 0
    assert (run["status"], run["changed_count"], run["skipped_count"]) == ("completed", 1, 0)
    assert "100%" in progress


def test_wait_exits_3_when_jobs_were_skipped_and_text_lists_the_reasons(
    editor: User, django_capture_on_commit_callbacks: Any, worked_in_process: None
) -> None:
    Job.objects.create(name="A")
    Job.objects.create(name="B", status=JobStatus.COMPLETED)
    code, text, _ = bulk_jobs(
        "--filter",
        "",
        "--cancel",
        "--reason",
        "wrong paper",
        "--wait",
        "--output",
        "text",
        capture=django_capture_on_commit_callbacks,
    )
    assert code == 3
    assert "2 selected, 2 done: 1 changed, 1 skipped." in text
    assert "1 skipped: A completed job cannot be cancelled." in text
    assert Job.objects.get(name="A").cancellation_reason == "wrong paper"


def test_wait_exits_1_when_the_run_failed(
    editor: User,
    django_capture_on_commit_callbacks: Any,
    worked_in_process: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Job.objects.create(name="A")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bulk_runs, "write_changes", broken)
    code, run, _ = bulk_jobs(
        "--filter",
        "",
        "--set-status",
        "running",
        "--wait",
        capture=django_capture_on_commit_callbacks,
    )
    assert code == 1
    assert run["status"] == "failed"
    assert "unexpected error" in run["failure_message"]
    assert "disk on fire" not in run["failure_message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--filter", "q=priority:high", "--cancel"], "priority"),
        (["--filter", "", "--set-status", "done"], "status must be one of"),
        (["--filter", "", "--set-priority", "11"], "from 0 to 10"),
        (["--filter", "", "--set-printer", "Nope"], "No printer is called"),
        (["--filter", "", "--cancel", "--user", "nobody"], "No user named"),
        (["--filter", "", "--set-priority", "1", "--reason", "x"], "--reason goes with --cancel"),
    ],
)
def test_bad_usage_exits_2_and_makes_no_run(editor: User, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message) as error:
        call_command("bulk_jobs", *args, stdout=io.StringIO())
    assert error.value.returncode == 2
    assert not BulkRun.objects.exists()
