"""jobs.runs and jobs.runner as an import uses them: the schema ImportJob inherits, steps
and their fence."""

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from imports import intake
from imports.importer import Importer
from imports.models import ImportJob, ImportStatus
from jobs.runner import CancelRequested, LeaseLost

pytestmark = pytest.mark.django_db


def test_models_match_their_migrations() -> None:
    """ImportJob takes its run fields from jobs.runs.BackgroundRun without a schema change."""
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.fixture
def claimed(uploader: User, write_csv: Callable[..., Path]) -> Importer:
    with write_csv("name\nA\n").open("rb") as file:
        import_job = intake.create_import(
            file, intake.inspect_upload(file), user=uploader, enqueue=False
        )
    claimed_job = Importer.claim(import_job.pk, "this-worker")
    assert claimed_job is not None
    return Importer(claimed_job)


def stored(import_job: ImportJob) -> dict[str, Any]:
    return ImportJob.objects.filter(pk=import_job.pk).values(
        "version", "checkpoint", "processed_rows", "lease_expires_at"
    )[0]


def test_a_step_saves_progress_with_a_version_bump_and_renews_the_lease(
    claimed: Importer,
) -> None:
    before = stored(claimed.run)
    with claimed.step():
        claimed.progress["checkpoint"] += 3
        claimed.progress["processed_rows"] += 3
    after = stored(claimed.run)
    assert (after["version"], after["checkpoint"], after["processed_rows"]) == (
        before["version"] + 1,
        3,
        3,
    )
    assert after["lease_expires_at"] >= before["lease_expires_at"]
    assert claimed.version == after["version"]


def test_a_failed_step_leaves_nothing_in_the_database_or_the_counters(
    claimed: Importer,
) -> None:
    before = stored(claimed.run)
    with pytest.raises(ZeroDivisionError), claimed.step():
        claimed.progress["checkpoint"] += 3
        ImportJob.objects.filter(pk=claimed.run.pk).update(total_rows=99)
        1 / 0  # noqa: B018 - the step's work fails
    assert stored(claimed.run) == before
    assert claimed.progress["checkpoint"] == 0
    assert claimed.version == before["version"]
    assert ImportJob.objects.get(pk=claimed.run.pk).total_rows is None


def test_the_fence_stops_at_a_cancel_request(claimed: Importer, uploader: User) -> None:
    ImportJob.objects.get(pk=claimed.run.pk).request_cancel(actor=uploader)
    with pytest.raises(CancelRequested), claimed.step():
        pytest.fail("a step must not run past a cancel request")


def test_the_fence_stops_a_worker_whose_run_was_taken_over(claimed: Importer) -> None:
    ImportJob.objects.filter(pk=claimed.run.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert Importer.claim(claimed.run.pk, "other-worker") is not None
    with pytest.raises(LeaseLost):
        claimed.fence()
    current = ImportJob.objects.get(pk=claimed.run.pk)
    assert (current.status, current.lease_owner, current.attempts) == (
        ImportStatus.PROCESSING,
        "other-worker",
        2,
    )
