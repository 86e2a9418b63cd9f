"""Imports on a real `manage.py qcluster` subprocess sharing the test database (SPEC section 5).

On SQLite the root conftest makes the test database a file; on PostgreSQL the cluster opens
the test database by name. The broker is the ORM one, or Redis when REDIS_URL is set.
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
from django.test import Client

from imports import intake
from imports.models import ImportEvent, ImportJob, ImportStatus
from imports.tests.cluster_helpers import make_resume_sweep_due
from imports.tests.conftest import SAMPLES
from jobs.models import Job, JobEvent, Printer

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

DEADLINE_SECONDS = 150
BATCH_SIZE = 100
# Passed to the test process's environment only; the cluster must get its own settings.
OUTER_ONLY = ("DJANGO_SETTINGS_MODULE", "PYTEST_", "SQLITE_TEST_NAME")


def database_url() -> str:
    """The URL of the database this test uses, for the cluster subprocess."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(config["NAME"])
        assert not connection.is_in_memory_db(), "cluster tests need a file database"
        return f"sqlite:///{Path(name).resolve()}"
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{config['NAME']}"


def subprocess_env(media_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OUTER_ONLY)}
    env.update(DATABASE_URL=database_url(), MEDIA_ROOT=str(media_root))
    return env


class Cluster:
    """A `manage.py qcluster` process group, stopped (and its workers with it) at the end."""

    def __init__(self, media_root: Path, log_path: Path):
        env = subprocess_env(media_root)
        env.update(
            IMPORT_BATCH_SIZE=str(BATCH_SIZE),
            IMPORT_LEASE_SECONDS="3",
            IMPORT_MAX_ATTEMPTS="3",
            # The ORM broker re-delivers an unacknowledged task after Q_RETRY seconds.
            Q_TIMEOUT="30",
            Q_RETRY="8",
            Q_WORKERS="2",
            Q_MAX_ATTEMPTS="10",
            LOG_LEVEL="INFO",
        )
        self.log_path = log_path
        self.log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def cluster(tmp_path: Path, settings: Any) -> Iterator[Cluster]:
    if settings.REDIS_URL:
        from django_q.brokers import get_broker

        get_broker().purge_queue()  # nothing left over from an earlier run on this Redis db
    running = Cluster(settings.MEDIA_ROOT, tmp_path / "qcluster.log")
    yield running
    running.stop()
    connection.close()


def wait_for(
    condition: Callable[[], Any], cluster: Cluster, what: str, seconds: float = DEADLINE_SECONDS
) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        assert cluster.process.poll() is None, f"qcluster exited:\n{cluster.output()}"
        time.sleep(0.05)
    pytest.fail(f"Timed out waiting for {what}.\nCluster log:\n{cluster.output()}")


def finished(import_job: ImportJob) -> Callable[[], bool]:
    def check() -> bool:
        import_job.refresh_from_db()
        return import_job.is_finished

    return check


def write_rows(path: Path, rows: int) -> Path:
    with path.open("w") as file:
        file.write("name,priority,reference\n")
        for number in range(1, rows + 1):
            file.write(f"Cluster job {number},{number % 11},C-{number:06d}\n")
    return path


def create(path: Path, user: User) -> ImportJob:
    with path.open("rb") as file:
        return intake.create_import(file, intake.inspect_upload(file), user=user)


@pytest.fixture
def editor_client(editor: User) -> Client:
    client = Client()
    client.force_login(editor)
    return client


def test_upload_through_the_view_is_imported_by_the_cluster(
    cluster: Cluster, editor_client: Client, editor: User, sample_printers: dict[str, Printer]
) -> None:
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
        wait_for(finished(import_job), cluster, f"{import_job.original_filename} to finish")

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
    import_job = create(write_rows(tmp_path / "big.csv", rows), editor)

    def mid_import() -> bool:
        import_job.refresh_from_db()
        return import_job.status == ImportStatus.PROCESSING and import_job.checkpoint >= 500

    wait_for(mid_import, cluster, "the import to be under way")
    worker_pid = int(import_job.lease_owner.split(":")[1])
    assert worker_pid not in (os.getpid(), cluster.process.pid)
    os.kill(worker_pid, signal.SIGKILL)
    killed_at = import_job.checkpoint

    wait_for(finished(import_job), cluster, "the re-delivered import to finish", seconds=240)
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
    cluster: Cluster, editor_client: Client, editor: User, tmp_path: Path
) -> None:
    # Far more rows than can be imported while the cancel request waits for its write turn
    # (on SQLite it queues behind the worker's back-to-back batch transactions).
    rows = 100_000
    import_job = create(write_rows(tmp_path / "big.csv", rows), editor)

    def under_way() -> bool:
        import_job.refresh_from_db()
        return import_job.status == ImportStatus.PROCESSING and import_job.checkpoint >= 300

    wait_for(under_way, cluster, "the import to be under way")
    response = editor_client.post(f"/imports/{import_job.pk}/cancel/", {"reason": "wrong file"})
    assert response.status_code == 302
    wait_for(finished(import_job), cluster, "the import to stop")

    assert import_job.status == ImportStatus.CANCELLED
    processed = import_job.processed_rows
    assert 300 <= processed < rows
    assert processed % BATCH_SIZE == 0  # a batch boundary
    assert import_job.checkpoint == processed
    assert import_job.created_count == processed
    assert Job.objects.filter(source_import=import_job).count() == processed
    assert (import_job.cancelled_by, import_job.cancellation_reason) == (editor, "wrong file")
    page = editor_client.get(import_job.get_absolute_url()).content.decode()
    assert f"Cancelled after {processed:,} rows" in page
    assert f"<dd>{processed:,}</dd>" in page  # Created


def test_import_jobs_wait_follows_the_cluster_to_the_end(
    cluster: Cluster, sample_printers: dict[str, Printer], settings: Any
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "import_jobs",
            str(SAMPLES / "jobs-with-errors.csv"),
            "--wait",
            "--output",
            "json",
        ],
        cwd=settings.BASE_DIR,
        env=subprocess_env(settings.MEDIA_ROOT),
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    output = json.loads(result.stdout)
    assert (output["status"], output["created_count"], output["error_count"]) == ("completed", 2, 6)
    import_job = ImportJob.objects.get(pk=output["id"])
    assert import_job.status == ImportStatus.COMPLETED
    assert import_job.task_id  # enqueued, so a cluster worker ran it
    assert "Traceback" not in result.stderr
