"""Two cluster nodes on PostgreSQL + Redis: the deployment shape of a large site
(docs/csv-import.md, "Processing, resume and cancel").

Two `manage.py qcluster` processes (each its own process group, the same cluster name, so
they share one Redis queue) run against this test's PostgreSQL database. Several imports
enqueued at once are each processed by exactly one node with exact counts; then one node is
killed with SIGKILL mid-import and the other finishes it with every row exactly once.

django-q2's Redis broker pops a task without acknowledgement, so the killed node's task is
lost with it. Recovery is the engine's: the worker's lease on the import expires
(IMPORT_LEASE_SECONDS, 3 s here) and the `imports-resume-stalled` schedule (every minute;
django-q2's scheduler looks every 30 s) re-enqueues the import, which the surviving node claims
and resumes from its checkpoint.
"""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count

from imports.models import ImportEvent, ImportJob, ImportStatus
from imports.tests.cluster_helpers import (
    create,
    finished,
    make_resume_sweep_due,
    under_way,
    write_rows,
)
from jobs.models import Job, JobEvent
from jobsite.testing.qcluster import Cluster, Node

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

SKIP_REASON = "needs PostgreSQL + Redis; runs in .ci/run's second pass"


@pytest.fixture(autouse=True)
def _needs_postgres_and_redis() -> None:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip(SKIP_REASON)


@pytest.fixture
def nodes(start_cluster: Callable[..., Cluster]) -> Cluster:
    """Two nodes on this test's PostgreSQL database and one Redis queue of their own; each
    logs JSON lines to a file of its own."""
    return start_cluster(
        nodes=2,
        cluster_name=f"multinode{os.getpid()}",
        Q_WORKERS="1",
        Q_TIMEOUT="120",
        Q_RETRY="150",
        LOG_FORMAT="json",
    )


def status_changes(node: Node) -> list[dict[str, Any]]:
    """The structured `import_status_changed` lines a node logged."""
    changes = []
    for line in node.log().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "import_status_changed":
            changes.append(record)
    return changes


def imports_with(node: Node, new_status: str) -> list[str]:
    return [c["import_id"] for c in status_changes(node) if c["new_status"] == new_status]


def all_finished(imports: list[ImportJob]) -> bool:
    return (
        not ImportJob.objects.filter(pk__in=[i.pk for i in imports])
        .exclude(status__in=[ImportStatus.COMPLETED, ImportStatus.FAILED, ImportStatus.CANCELLED])
        .exists()
    )


def assert_each_reference_once(import_job: ImportJob, rows: int) -> None:
    jobs = Job.objects.filter(source_import=import_job)
    assert jobs.count() == rows
    repeated = jobs.values("reference").annotate(n=Count("id")).filter(n__gt=1)
    assert list(repeated) == []
    assert JobEvent.objects.filter(job__source_import=import_job, kind="imported").count() == rows


def test_several_imports_at_once_each_run_by_exactly_one_node(
    nodes: Cluster, editor: User, tmp_path: Path
) -> None:
    sizes = [1200, 1500, 1800, 2100, 2400, 2700]
    imports = {}
    for number, rows in enumerate(sizes, start=1):
        path = write_rows(tmp_path / f"multi-{number}.csv", rows, f"MN{number}", bad_row=7)
        imports[create(path, editor)] = rows
    nodes.wait_for(lambda: all_finished(list(imports)), "every import to finish")

    started_on = {node.name: imports_with(node, ImportStatus.PROCESSING) for node in nodes.nodes}
    completed_on = {node.name: imports_with(node, ImportStatus.COMPLETED) for node in nodes.nodes}
    for import_job, rows in imports.items():
        import_job.refresh_from_db()
        assert import_job.status == ImportStatus.COMPLETED, import_job.failure_message
        assert import_job.attempts == 1  # claimed once: no second worker, no resume
        assert (import_job.total_rows, import_job.processed_rows) == (rows, rows)
        assert (import_job.created_count, import_job.updated_count) == (rows - 1, 0)
        assert (import_job.skipped_count, import_job.error_count) == (0, 1)
        assert list(import_job.errors.values_list("row", "field")) == [(8, "priority")]
        assert_each_reference_once(import_job, rows - 1)
        history = list(import_job.events.values_list("old_status", "new_status"))
        assert history == [
            ("", ImportStatus.PENDING),
            (ImportStatus.PENDING, ImportStatus.PROCESSING),
            (ImportStatus.PROCESSING, ImportStatus.COMPLETED),
        ], history
        pk = str(import_job.pk)
        ran_on = [name for name, ids in started_on.items() if pk in ids]
        assert len(ran_on) == 1, f"{pk} started on {ran_on}"
        assert [name for name, ids in completed_on.items() if pk in ids] == ran_on
    # The work was shared: both nodes ran imports from the one queue.
    assert all(started_on.values()), started_on


def test_node_killed_mid_import_the_other_finishes_every_row_exactly_once(
    nodes: Cluster, editor: User, tmp_path: Path
) -> None:
    make_resume_sweep_due()
    rows = 40_000
    import_job = create(write_rows(tmp_path / "killed.csv", rows, "KILL"), editor)

    nodes.wait_for(under_way(import_job, 1000), "the import to be under way")
    worker_pid = int(import_job.lease_owner.split(":")[1])
    victim = nodes.node_of(worker_pid)
    [survivor] = [node for node in nodes.nodes if node is not victim]
    victim.kill()
    killed_at = import_job.checkpoint

    nodes.wait_for(finished(import_job), "the survivor to finish the import")
    assert import_job.status == ImportStatus.COMPLETED, import_job.failure_message
    if import_job.checkpoint == killed_at:  # pragma: no cover - the kill came too late
        pytest.fail("The import finished before the node was killed; make the file larger.")
    assert import_job.attempts == 2  # the dead node's claim, then the survivor's
    assert (import_job.total_rows, import_job.processed_rows) == (rows, rows)
    assert (import_job.created_count, import_job.updated_count) == (rows, 0)
    assert (import_job.skipped_count, import_job.error_count) == (0, 0)
    assert_each_reference_once(import_job, rows)
    resumed = ImportEvent.objects.filter(
        import_job=import_job, message__startswith="Resumed after row"
    )
    assert resumed.count() == 1
    pk = str(import_job.pk)
    assert pk in imports_with(survivor, ImportStatus.COMPLETED)
    assert pk not in imports_with(victim, ImportStatus.COMPLETED)
