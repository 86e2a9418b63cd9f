"""Helpers for the tests that run imports on real qcluster nodes (started by the root
conftest's `start_cluster`)."""

from collections.abc import Callable
from pathlib import Path

from django.contrib.auth.models import User
from django.utils import timezone
from django_q.models import Schedule

from imports import intake
from imports.importer import RESUME_SCHEDULE_NAME
from imports.models import ImportJob, ImportStatus


def make_resume_sweep_due() -> None:
    """Let the cluster's scheduler run the `imports-resume-stalled` sweep at once. The schedule
    itself is kept by post_migrate (a transactional test's flush brings it back too)."""
    updated = Schedule.objects.filter(name=RESUME_SCHEDULE_NAME).update(next_run=timezone.now())
    assert updated == 1, "the imports-resume-stalled schedule is missing"


def write_rows(path: Path, rows: int, prefix: str, bad_row: int | None = None) -> Path:
    """`rows` data records, references <prefix>-000001..; record `bad_row` has priority 99."""
    with path.open("w") as file:
        file.write("name,priority,reference\n")
        for number in range(1, rows + 1):
            priority = 99 if number == bad_row else number % 11
            file.write(f"{prefix} job {number},{priority},{prefix}-{number:06d}\n")
    return path


def create(path: Path, user: User) -> ImportJob:
    """Check the file and enqueue its import, as an upload does."""
    with path.open("rb") as file:
        return intake.create_import(file, intake.inspect_upload(file), user=user)


def under_way(import_job: ImportJob, past_row: int) -> Callable[[], bool]:
    """For `Cluster.wait_for`: the import is processing and has committed `past_row` rows."""

    def check() -> bool:
        import_job.refresh_from_db()
        return import_job.status == ImportStatus.PROCESSING and import_job.checkpoint >= past_row

    return check


def finished(import_job: ImportJob) -> Callable[[], bool]:
    """For `Cluster.wait_for`: the import reached a final status."""

    def check() -> bool:
        import_job.refresh_from_db()
        return import_job.is_finished

    return check
