"""Bulk runs on a real `manage.py qcluster` sharing the test database (docs/bulk-runs.md,
"Resume, cancel and attempts"): a worker killed with SIGKILL mid-run, and `bulk_jobs --wait`
following a run to its end."""

import json
import os
import signal
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.db.models import Count
from django.utils import timezone
from django_q.models import Schedule

from jobs.bulk_runs import (
    RESUME_SCHEDULE_NAME,
    draft_bulk_run,
    start_bulk_run,
)
from jobs.models import BulkRun, BulkRunEvent, Job, JobEvent
from jobs.runs import RunStatus
from jobs.status import JobStatus
from jobsite.testing import qcluster
from jobsite.testing.qcluster import Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

BULK_ENV = {
    "BULK_RUN_BATCH_SIZE": "100",
    "BULK_RUN_LEASE_SECONDS": "3",
    "BULK_RUN_MAX_ATTEMPTS": "3",
    # The ORM broker re-delivers an unacknowledged task after Q_RETRY seconds; on Redis the
    # stalled-run sweep enqueues it again. The timeout leaves a resumed run on a machine busy
    # with other work the time to finish (a task killed at its timeout is one more attempt).
    "Q_TIMEOUT": "120",
    "Q_RETRY": "8",
    "Q_WORKERS": "2",
    "Q_MAX_ATTEMPTS": "10",
}


@pytest.fixture
def cluster(start_cluster: Callable[..., Cluster]) -> Cluster:
    # The flush of a transactional test sends post_migrate, which keeps the sweep's schedule
    # (jobs.apps): make it due now.
    assert Schedule.objects.filter(name=RESUME_SCHEDULE_NAME).update(next_run=timezone.now())
    return start_cluster(**BULK_ENV)


def finished(run: BulkRun) -> Callable[[], bool]:
    def check() -> bool:
        run.refresh_from_db()
        return run.is_finished

    return check


def under_way(run: BulkRun, past: int) -> Callable[[], bool]:
    def check() -> bool:
        run.refresh_from_db()
        return run.status == RunStatus.PROCESSING and run.processed_count >= past

    return check


def test_worker_killed_mid_run_changes_every_matching_job_exactly_once(
    cluster: Cluster, editor: User
) -> None:
    matching = 20_000
    Job.objects.bulk_create(
        Job(name=f"Job {n}", status=JobStatus.PENDING if n % 5 else JobStatus.RUNNING)
        for n in range(matching * 5 // 4)
    )
    selected = Job.objects.filter(status=JobStatus.PENDING)
    assert selected.count() == matching
    run = start_bulk_run(
        draft_bulk_run(
            actor=editor,
            origin="ui",
            action="set_priority",
            priority=7,
            query="status=pending",
        )
    )

    cluster.wait_for(under_way(run, 500), "the run to be under way")
    worker_pid = int(run.lease_owner.split(":")[1])
    assert worker_pid not in (os.getpid(), cluster.nodes[0].pgid)
    os.kill(worker_pid, signal.SIGKILL)
    killed_at = run.processed_count

    cluster.wait_for(finished(run), "the resumed run to finish")
    assert run.status == RunStatus.COMPLETED, run.failure_message
    if run.processed_count == killed_at:  # pragma: no cover - the kill came too late
        pytest.fail("The worker finished before it was killed; select more jobs.")
    assert run.attempts == 2
    assert (run.total_count, run.changed_count, run.skipped_count) == (matching, matching, 0)
    assert set(selected.values_list("priority", "version")) == {(7, 2)}
    per_job = (
        JobEvent.objects.filter(origin="bulk", origin_ref=str(run.pk))
        .values("job")
        .annotate(n=Count("pk"))
    )
    assert per_job.count() == matching
    assert {row["n"] for row in per_job} == {1}
    others = Job.objects.exclude(status=JobStatus.PENDING)
    assert set(others.values_list("priority", "version")) == {(0, 1)}
    assert not JobEvent.objects.filter(job__in=others).exists()
    assert BulkRunEvent.objects.filter(run=run, message__startswith="Resumed after").exists()


def test_bulk_jobs_wait_follows_the_cluster_and_exits_3_with_skips(cluster: Cluster) -> None:
    Job.objects.create(name="A", status=JobStatus.FAILED)
    Job.objects.create(name="B", status=JobStatus.RUNNING)
    result = qcluster.manage(
        cluster.env,
        "bulk_jobs",
        "--filter",
        "q=-status:cancelled",
        "--retry-failed",
        "--wait",
        check=False,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    output = json.loads(result.stdout)
    assert (output["status"], output["changed_count"], output["skipped_count"]) == (
        "completed",
        1,
        1,
    )
    assert output["skipped_by_reason"] == {"Not failed (the job is running).": 1}
    assert Job.objects.get(name="A").status == JobStatus.PENDING
