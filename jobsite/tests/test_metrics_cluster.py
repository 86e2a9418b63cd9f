"""/metrics after an import run by a real `manage.py qcluster` (docs/metrics.md): the cluster's
workers write their counters to the metrics folder of this test run (their environment
carries PROMETHEUS_MULTIPROC_DIR), and this process's /metrics adds them up."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from imports.models import ImportStatus
from imports.tests.cluster_helpers import create, finished, write_rows
from jobsite.models import ApiToken
from jobsite.testing.qcluster import Cluster
from jobsite.tests.test_metrics import scrape_as, value

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


def test_an_import_on_the_cluster_moves_its_metrics(
    start_cluster: Callable[..., Cluster], editor: User, viewer: User, tmp_path: Path
) -> None:
    cluster = start_cluster(Q_WORKERS="1")
    assert cluster.env["PROMETHEUS_MULTIPROC_DIR"] == str(settings.PROMETHEUS_MULTIPROC_DIR)
    token = ApiToken.issue(user=viewer, name="prometheus")[1]

    def scrape() -> dict:
        return scrape_as(Client(), Authorization=f"Bearer {token}")

    before = scrape()
    rows = 250  # three batches of the cluster tests' 100 rows
    import_job = create(write_rows(tmp_path / "jobs.csv", rows, "M", bad_row=7), editor)
    cluster.wait_for(finished(import_job), "the import to finish")
    assert import_job.status == ImportStatus.COMPLETED, import_job.failure_message
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("jobsite_import_rows_total", outcome="created") == rows - 1
    assert moved("jobsite_import_rows_total", outcome="failed") == 1
    new_jobs = {"from": "", "to": "pending", "surface": "import"}
    assert moved("jobsite_job_transitions_total", **new_jobs) == rows - 1
    assert moved("jobsite_import_duration_seconds_count", status="completed") == 1
    assert value(after, "jobsite_jobs", status="pending") == rows - 1
    # Counted by the node's worker, in a file of its own beside this process's.
    assert cluster.nodes[0].pgid in writers_groups(Path(settings.PROMETHEUS_MULTIPROC_DIR))


def writers_groups(folder: Path) -> set[int]:
    """The process groups of the live processes that wrote counter files in `folder`."""
    groups = set()
    for path in folder.glob("counter_*.db"):
        try:
            groups.add(os.getpgid(int(path.stem.rpartition("_")[2])))
        except ProcessLookupError:
            continue
    return groups
