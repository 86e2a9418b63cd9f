"""`import_jobs` and `cancel_import` (docs/csv-import.md, "Command exit codes"): output, JSON."""

import io
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone

from imports.importer import run_import
from imports.management.commands import import_jobs
from imports.models import ImportEvent, ImportJob, ImportStatus
from imports.tests.conftest import SAMPLES
from jobs.models import Job, Printer

pytestmark = pytest.mark.django_db

JSON_KEYS = {
    "id",
    "status",
    "total_rows",
    "processed_rows",
    "created_count",
    "updated_count",
    "skipped_count",
    "error_count",
    "errors",
    "failure_message",
    "waiting_reason",
    "warnings",
}


def run(*args: str) -> tuple[int, str, str]:
    """Run a command; return (exit code, stdout, stderr) as the shell would see them."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue(), err.getvalue()
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), err.getvalue()


def test_sync_valid_sample_exits_0(sample_printers: dict[str, Printer], uploader: User) -> None:
    code, out, _ = run(
        "import_jobs", str(SAMPLES / "jobs-valid.csv"), "--sync", "--user", "uploader"
    )
    assert code == 0
    assert "completed" in out and "200 created" in out
    import_job = ImportJob.objects.get()
    assert (import_job.status, import_job.created_by) == ("completed", uploader)
    assert Job.objects.count() == 200


def test_sync_json_with_row_errors_exits_3(sample_printers: dict[str, Printer]) -> None:
    code, out, _ = run(
        "import_jobs", str(SAMPLES / "jobs-with-errors.csv"), "--sync", "--output", "json"
    )
    assert code == 3
    result = json.loads(out)
    assert set(result) == JSON_KEYS
    assert result["status"] == "completed"
    assert (result["total_rows"], result["processed_rows"]) == (8, 8)
    assert (result["created_count"], result["error_count"]) == (2, 6)
    assert [error["row"] for error in result["errors"]] == [3, 4, 5, 6, 7, 8]
    assert set(result["errors"][0]) == {"row", "field", "error_type", "message"}
    assert result["errors"][5]["error_type"] == "duplicate"
    assert result["failure_message"] == ""
    assert result["warnings"] == []


def test_json_lists_the_first_100_errors(write_csv: Callable[..., Path]) -> None:
    path = write_csv("name,priority\n" + "A,99\n" * 150)
    code, out, _ = run("import_jobs", str(path), "--sync", "--output", "json")
    result = json.loads(out)
    assert code == 3
    assert result["error_count"] == 150
    assert len(result["errors"]) == 100


def test_abort_with_invalid_rows_exits_1(write_csv: Callable[..., Path]) -> None:
    path = write_csv("name,priority\nA,1\nB,99\n")
    code, out, _ = run("import_jobs", str(path), "--sync", "--on-error", "abort")
    assert code == 1
    assert "failed" in out and "Nothing was imported" in out
    assert not Job.objects.exists()


def test_on_existing_option_is_passed(write_csv: Callable[..., Path], make_job: Any) -> None:
    make_job(name="Old", reference="R1")
    path = write_csv("name,reference\nNew,R1\n")
    code, out, _ = run(
        "import_jobs", str(path), "--sync", "--on-existing", "error", "--output", "json"
    )
    assert code == 3
    assert json.loads(out)["errors"][0]["error_type"] == "duplicate"


def test_unknown_columns_warn_on_stderr(write_csv: Callable[..., Path]) -> None:
    code, out, err = run("import_jobs", str(write_csv("name,colour\nA,red\n")), "--sync")
    assert code == 0
    assert "Warning: Ignored unknown column: “colour”." in err


def test_rejected_file_exits_2_before_any_import(write_csv: Callable[..., Path]) -> None:
    code, _, err = run("import_jobs", str(write_csv("title\nA\n")), "--sync")
    assert code == 2
    assert "name" in err
    assert not ImportJob.objects.exists()


def test_missing_file_and_unknown_user_exit_2(write_csv: Callable[..., Path]) -> None:
    assert run("import_jobs", "/nonexistent/jobs.csv")[0] == 2
    code, _, err = run("import_jobs", str(write_csv("name\nA\n")), "--user", "nobody")
    assert (code, err) == (2, "No user named 'nobody'.")
    assert not ImportJob.objects.exists()


def test_duplicate_file_exits_4_unless_forced(
    write_csv: Callable[..., Path], uploader: User
) -> None:
    path = write_csv("name\nA\n")
    assert run("import_jobs", str(path), "--sync", "--user", "uploader")[0] == 0
    first = ImportJob.objects.get()
    code, _, err = run("import_jobs", str(path), "--sync")
    assert code == 4
    assert str(first.pk) in err and "uploader" in err and "--force" in err
    assert ImportJob.objects.count() == 1
    assert run("import_jobs", str(path), "--sync", "--force")[0] == 0
    assert ImportJob.objects.count() == 2
    assert Job.objects.count() == 2


def test_a_failed_earlier_import_is_not_a_duplicate(write_csv: Callable[..., Path]) -> None:
    path = write_csv("name,priority\nA,99\n")
    assert run("import_jobs", str(path), "--sync", "--on-error", "abort")[0] == 1
    assert run("import_jobs", str(path), "--sync")[0] == 3


def test_default_enqueues_and_prints_the_id(
    write_csv: Callable[..., Path], django_capture_on_commit_callbacks: Any, task_queue: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        code, out, _ = run("import_jobs", str(write_csv("name\nA\n")))
    import_job = ImportJob.objects.get()
    assert (code, out.strip()) == (0, str(import_job.pk))
    assert import_job.status == ImportStatus.PENDING
    assert import_job.task_id
    assert task_queue.queue_size() == 1


def test_default_json_output(
    write_csv: Callable[..., Path], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        code, out, _ = run("import_jobs", str(write_csv("name\nA\n")), "--output", "json")
    result = json.loads(out)
    assert code == 0
    assert set(result) == JSON_KEYS
    assert result["status"] == "pending"


def test_wait_follows_progress_to_the_end(
    write_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    polls: list[str] = []

    def worker_runs_meanwhile(seconds: float) -> None:
        import_job = ImportJob.objects.get()
        polls.append(import_job.status)
        run_import(import_job.pk)  # what the cluster does while we wait

    monkeypatch.setattr(import_jobs.time, "sleep", worker_runs_meanwhile)
    code, out, err = run("import_jobs", str(write_csv("name,priority\nA,1\nB,99\n")), "--wait")
    assert polls == ["pending"]
    assert code == 3
    assert "Import" in out and "1 with errors" in out
    assert "[" in err and "100%" in err  # the progress bar reached the end


def test_sync_and_wait_together_are_bad_usage(write_csv: Callable[..., Path]) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "import_jobs", "x.csv", "--sync", "--wait"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr
    assert "Traceback" not in result.stderr


def test_rejected_file_from_a_shell_has_no_traceback(write_csv: Callable[..., Path]) -> None:
    path = write_csv(b"PK\x03\x04binary")
    result = subprocess.run(
        [sys.executable, "manage.py", "import_jobs", str(path)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "not a CSV text file" in result.stderr
    assert "Traceback" not in result.stderr


def test_progress_line_shows_the_estimate_until_the_total_is_known() -> None:
    import_job = ImportJob(
        status=ImportStatus.PROCESSING,
        estimated_rows=200,
        processed_rows=50,
        started_at=timezone.now(),
    )
    line = import_jobs.progress_line(import_job)
    assert "25%" in line and "50/~200 rows" in line


# --- cancel_import --------------------------------------------------------------------------


@pytest.fixture
def pending_import(uploader: User, write_csv: Callable[..., Path]) -> ImportJob:
    from imports import intake

    with write_csv("name\nA\n").open("rb") as file:
        info = intake.inspect_upload(file)
        return intake.create_import(file, info, user=uploader, enqueue=False)


def test_cancel_pending_import_exits_0(pending_import: ImportJob) -> None:
    code, out, _ = run("cancel_import", str(pending_import.pk), "--reason", "wrong file")
    assert code == 0
    assert "cancelled" in out
    pending_import.refresh_from_db()
    assert pending_import.status == ImportStatus.CANCELLED
    assert pending_import.cancellation_reason == "wrong file"
    assert pending_import.cancelled_at is not None


def test_cancel_running_import_requests_it(pending_import: ImportJob) -> None:
    ImportJob.objects.filter(pk=pending_import.pk).update(
        status=ImportStatus.PROCESSING, lease_expires_at=timezone.now() + timedelta(seconds=60)
    )
    code, out, _ = run("cancel_import", str(pending_import.pk))
    assert code == 0
    assert "Cancel requested" in out
    pending_import.refresh_from_db()
    assert pending_import.status == ImportStatus.PROCESSING
    assert pending_import.cancel_requested_at is not None
    assert ImportEvent.objects.filter(
        import_job=pending_import, message__contains="Cancel"
    ).exists()


def test_cancel_finished_import_exits_1(pending_import: ImportJob) -> None:
    run_import(pending_import.pk)
    code, _, err = run("cancel_import", str(pending_import.pk))
    assert code == 1
    assert err == "This import is already completed and can no longer be cancelled."


def test_cancel_bad_or_unknown_id(pending_import: ImportJob) -> None:
    code, _, err = run("cancel_import", "not-a-uuid")
    assert code == 2 and "is not an import id" in err
    code, _, err = run("cancel_import", "00000000-0000-0000-0000-000000000000")
    assert code == 1 and "There is no import" in err
