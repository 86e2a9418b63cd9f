"""Imports on a real `manage.py qcluster` subprocess sharing the test database
(docs/csv-import.md, "Processing, resume and cancel").

On SQLite the root conftest makes the test database a file; on PostgreSQL the cluster opens
the test database by name. The broker is the ORM one, or Redis when REDIS_URL is set.
"""

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from imports.models import ImportEvent, ImportJob, ImportStatus
from imports.tests.cluster_helpers import (
    create,
    finished,
    make_resume_sweep_due,
    under_way,
    write_rows,
)
from imports.tests.conftest import SAMPLES
from jobs.models import Job, JobEvent, Printer
from jobsite.testing import qcluster
from jobsite.testing.qcluster import Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cluster(start_cluster: Callable[..., Cluster]) -> Cluster:
    return start_cluster(
        # The ORM broker re-delivers an unacknowledged task after Q_RETRY seconds.
        Q_TIMEOUT="30",
        Q_RETRY="8",
        Q_WORKERS="2",
        Q_MAX_ATTEMPTS="10",
    )


def test_upload_through_the_view_is_imported_by_the_cluster(
    cluster: Cluster,
    client_for: Callable[..., Client],
    editor: User,
    sample_printers: dict[str, Printer],
) -> None:
    editor_client = client_for(editor)
    results = {}
    for sample in ("jobs-valid.csv", "jobs-with-errors.csv"):
        with (SAMPLES / sample).open("rb") as file:
            response = editor_client.post(
                "/imports/new/", {"file": file, "on_error": "skip", "on_existing": "update"}
            )
        assert response.status_code == 302, response.content[:2000]
        import_job = ImportJob.objects.get(original_filename=sample)
        assert response["Location"] == import_job.get_absolute_url()
        assert import_job.task_id  # enqueued on commit
        results[sample] = import_job
    for import_job in results.values():
        cluster.wait_for(finished(import_job), f"{import_job.original_filename} to finish")

    valid, with_errors = results["jobs-valid.csv"], results["jobs-with-errors.csv"]
    assert valid.status == ImportStatus.COMPLETED
    assert (valid.total_rows, valid.created_count, valid.error_count) == (200, 200, 0)
    assert (valid.attempts, valid.created_by) == (1, editor)
    assert with_errors.status == ImportStatus.COMPLETED
    assert (with_errors.total_rows, with_errors.created_count, with_errors.error_count) == (8, 2, 6)
    assert sorted(with_errors.errors.values_list("row", flat=True)) == [3, 4, 5, 6, 7, 8]
    assert Job.objects.filter(source_import=valid).count() == 200
    assert Job.objects.filter(source_import=with_errors).count() == 2
    page = editor_client.get(valid.get_absolute_url())
    assert page.status_code == 200
    assert "<dd>200</dd>" in page.content.decode()


def test_worker_killed_mid_import_resumes_every_row_exactly_once(
    cluster: Cluster, editor: User, tmp_path: Path
) -> None:
    make_resume_sweep_due()
    rows = 20_000
    import_job = create(write_rows(tmp_path / "big.csv", rows, "C"), editor)

    cluster.wait_for(under_way(import_job, 500), "the import to be under way")
    worker_pid = int(import_job.lease_owner.split(":")[1])
    assert worker_pid not in (os.getpid(), cluster.nodes[0].pgid)
    os.kill(worker_pid, signal.SIGKILL)
    killed_at = import_job.checkpoint

    cluster.wait_for(finished(import_job), "the re-delivered import to finish")
    assert import_job.status == ImportStatus.COMPLETED, import_job.failure_message
    if import_job.checkpoint == killed_at:  # pragma: no cover - the kill came too late
        pytest.fail("The worker finished before it was killed; make the file larger.")
    assert import_job.attempts == 2
    assert (import_job.total_rows, import_job.processed_rows) == (rows, rows)
    assert (import_job.created_count, import_job.error_count) == (rows, 0)
    jobs = Job.objects.filter(source_import=import_job)
    assert jobs.count() == rows
    assert jobs.values("reference").distinct().count() == rows
    assert JobEvent.objects.filter(job__source_import=import_job, kind="imported").count() == rows
    assert ImportEvent.objects.filter(
        import_job=import_job, message__startswith="Resumed after row"
    ).exists()


def test_cancel_on_the_live_cluster_stops_at_a_batch_boundary(
    cluster: Cluster, client_for: Callable[..., Client], editor: User, tmp_path: Path
) -> None:
    editor_client = client_for(editor)
    # Far more rows than can be imported while the cancel request waits for its write turn
    # (on SQLite it queues behind the worker's back-to-back batch transactions).
    rows = 100_000
    import_job = create(write_rows(tmp_path / "big.csv", rows, "C"), editor)

    cluster.wait_for(under_way(import_job, 300), "the import to be under way")
    response = editor_client.post(f"/imports/{import_job.pk}/cancel/", {"reason": "wrong file"})
    assert response.status_code == 302
    cluster.wait_for(finished(import_job), "the import to stop")

    assert import_job.status == ImportStatus.CANCELLED
    processed = import_job.processed_rows
    assert 300 <= processed < rows
    assert processed % int(cluster.env["IMPORT_BATCH_SIZE"]) == 0  # a batch boundary
    assert import_job.checkpoint == processed
    assert import_job.created_count == processed
    assert Job.objects.filter(source_import=import_job).count() == processed
    assert (import_job.cancelled_by, import_job.cancellation_reason) == (editor, "wrong file")
    page = editor_client.get(import_job.get_absolute_url()).content.decode()
    assert f"Cancelled after {processed:,} rows" in page
    assert f"<dd>{processed:,}</dd>" in page  # Created


def test_import_jobs_wait_follows_the_cluster_to_the_end(
    cluster: Cluster, sample_printers: dict[str, Printer]
) -> None:
    result = qcluster.manage(
        cluster.env,
        "import_jobs",
        str(SAMPLES / "jobs-with-errors.csv"),
        "--wait",
        "--output",
        "json",
        check=False,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    output = json.loads(result.stdout)
    assert (output["status"], output["created_count"], output["error_count"]) == ("completed", 2, 6)
    import_job = ImportJob.objects.get(pk=output["id"])
    assert import_job.status == ImportStatus.COMPLETED
    assert import_job.task_id  # enqueued, so a cluster worker ran it
    assert "Traceback" not in result.stderr
