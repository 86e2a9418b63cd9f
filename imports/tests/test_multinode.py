"""Two cluster nodes on PostgreSQL + Redis: the deployment shape of a large site (SPEC section 5).

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
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count

from imports import intake
from imports.models import ImportEvent, ImportJob, ImportStatus
from imports.tests.cluster_helpers import make_resume_sweep_due
from jobs.models import Job, JobEvent

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

SKIP_REASON = "needs PostgreSQL + Redis; runs in .ci/run's second pass"
BATCH_SIZE = 100
LEASE_SECONDS = 3
DEADLINE_SECONDS = 300
# Variables of the outer test run that must not reach the nodes.
OUTER_ONLY = ("DJANGO_SETTINGS_MODULE", "PYTEST_", "SQLITE_TEST_NAME")


@pytest.fixture(autouse=True)
def _needs_postgres_and_redis() -> None:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip(SKIP_REASON)


def database_url() -> str:
    """This test's PostgreSQL database (pytest-django's test_<name>), for the nodes."""
    config = connection.settings_dict
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{config['NAME']}"


class Node:
    """One cluster node: `manage.py qcluster` in a process group of its own (sentinel, pusher,
    monitor and worker all in it), logging JSON lines to a file of its own."""

    def __init__(self, name: str, cluster_name: str, media_root: Path, log_dir: Path):
        self.name = name
        env = {k: v for k, v in os.environ.items() if not k.startswith(OUTER_ONLY)}
        env.update(
            DATABASE_URL=database_url(),
            REDIS_URL=settings.REDIS_URL,
            # Both nodes and this process use one cluster name: one shared Redis queue.
            Q_CLUSTER_NAME=cluster_name,
            MEDIA_ROOT=str(media_root),
            IMPORT_BATCH_SIZE=str(BATCH_SIZE),
            IMPORT_LEASE_SECONDS=str(LEASE_SECONDS),
            IMPORT_MAX_ATTEMPTS="3",
            Q_WORKERS="1",
            Q_TIMEOUT="120",
            Q_RETRY="150",
            LOG_FORMAT="json",
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        self.log_path = log_dir / f"node-{name}.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: pgid == pid
        )

    @property
    def pgid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the whole node at once, as a crashed machine or an OOM kill would."""
        os.killpg(self.pgid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.pgid, signal.SIGKILL)
                self.process.wait(timeout=10)
        else:  # the group may outlive its leader
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()

    def is_up(self) -> bool:
        """Its cluster reports itself in the broker with a worker in this node's group."""
        from django_q.status import Stat

        for stat in Stat.get_all():
            try:
                ours = stat.workers and all(os.getpgid(pid) == self.pgid for pid in stat.workers)
            except ProcessLookupError:
                continue
            if ours and stat.status in ("Idle", "Working"):
                return True
        return False

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status_changes(self) -> list[dict[str, Any]]:
        """The structured `import_status_changed` lines this node logged."""
        changes = []
        for line in self.text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == "import_status_changed":
                changes.append(record)
        return changes

    def imports_with(self, new_status: str) -> list[str]:
        return [c["import_id"] for c in self.status_changes() if c["new_status"] == new_status]


@pytest.fixture
def nodes(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Node]]:
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    # A queue of this test's own, so no other cluster on this Redis database takes its tasks.
    # django-q2 names the queue, signs tasks and keys its stats by the cluster name.
    cluster_name = f"multinode{os.getpid()}"
    monkeypatch.setattr(Conf, "PREFIX", cluster_name)
    monkeypatch.setattr(Conf, "CLUSTER_NAME", cluster_name)
    monkeypatch.setattr(Conf, "Q_STAT", f"django_q:{cluster_name}:cluster")
    get_broker().purge_queue()
    started = {name: Node(name, cluster_name, settings.MEDIA_ROOT, tmp_path) for name in ("a", "b")}
    try:
        for node in started.values():
            wait_for(node.is_up, started, f"node {node.name} to start", seconds=120)
        yield started
    finally:
        for node in started.values():
            node.stop()
        connection.close()


def logs(nodes: dict[str, Node]) -> str:
    return "\n".join(f"--- node {n.name} ---\n{n.text()[-3000:]}" for n in nodes.values())


def wait_for(
    condition: Callable[[], Any],
    nodes: dict[str, Node],
    what: str,
    seconds: float = DEADLINE_SECONDS,
    alive: tuple[str, ...] = ("a", "b"),
) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        for name in alive:
            assert nodes[name].process.poll() is None, f"node {name} exited:\n{logs(nodes)}"
        time.sleep(0.05)
    pytest.fail(f"Timed out waiting for {what}.\n{logs(nodes)}")


def write_rows(path: Path, rows: int, prefix: str, bad_row: int | None = None) -> Path:
    """`rows` data records, references <prefix>-000001..; record `bad_row` has priority 99."""
    with path.open("w") as file:
        file.write("name,priority,reference\n")
        for number in range(1, rows + 1):
            priority = 99 if number == bad_row else number % 11
            file.write(f"{prefix} job {number},{priority},{prefix}-{number:06d}\n")
    return path


def create(path: Path, user: User) -> ImportJob:
    with path.open("rb") as file:
        return intake.create_import(file, intake.inspect_upload(file), user=user)


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
    nodes: dict[str, Node], editor: User, tmp_path: Path
) -> None:
    sizes = [1200, 1500, 1800, 2100, 2400, 2700]
    imports = {}
    for number, rows in enumerate(sizes, start=1):
        path = write_rows(tmp_path / f"multi-{number}.csv", rows, f"MN{number}", bad_row=7)
        imports[create(path, editor)] = rows
    wait_for(lambda: all_finished(list(imports)), nodes, "every import to finish")

    started_on = {name: node.imports_with(ImportStatus.PROCESSING) for name, node in nodes.items()}
    completed_on = {name: node.imports_with(ImportStatus.COMPLETED) for name, node in nodes.items()}
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
    nodes: dict[str, Node], editor: User, tmp_path: Path
) -> None:
    make_resume_sweep_due()
    rows = 40_000
    import_job = create(write_rows(tmp_path / "killed.csv", rows, "KILL"), editor)

    def under_way() -> bool:
        import_job.refresh_from_db()
        return import_job.status == ImportStatus.PROCESSING and import_job.checkpoint >= 1000

    wait_for(under_way, nodes, "the import to be under way")
    worker_pid = int(import_job.lease_owner.split(":")[1])
    owner_pgid = os.getpgid(worker_pid)
    victim = next(node for node in nodes.values() if node.pgid == owner_pgid)
    survivor = next(node for node in nodes.values() if node is not victim)
    victim.kill()
    killed_at = import_job.checkpoint

    def finished() -> bool:
        import_job.refresh_from_db()
        return import_job.is_finished

    wait_for(finished, nodes, "the survivor to finish the import", alive=(survivor.name,))
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
    assert pk in survivor.imports_with(ImportStatus.COMPLETED)
    assert pk not in victim.imports_with(ImportStatus.COMPLETED)
