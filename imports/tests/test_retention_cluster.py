"""The `imports-retention` schedule run by a real `manage.py qcluster` subprocess.

Self-contained: the cluster needs a database it can open, so the test migrates one of its
own (a SQLite file, or on a PostgreSQL run a throwaway database beside the test one) and
drives it through `manage.py` subprocesses, exactly as a deployment would.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.cluster

# django-q2's guard loop runs the scheduler every 30 seconds, the first time 30 s after start.
DEADLINE_SECONDS = 180
OUTER_ONLY = ("DJANGO_SETTINGS_MODULE", "PYTEST_", "SQLITE_TEST_NAME")

SETUP = """
import json
from datetime import timedelta
from django.core.files.base import ContentFile
from django.utils import timezone
from django_q.models import Schedule
from imports.models import ImportErrorRecord, ImportEvent, ImportJob
from jobs.models import Job

now = timezone.now()

def make(name, status, days):
    job = ImportJob(original_filename=name, file_hash="0" * 64, status=status,
                    completed_at=now - timedelta(days=days))
    job.file.save(name, ContentFile(b"name\\nBracket\\n"), save=False)
    job.save()
    ImportErrorRecord.objects.create(import_job=job, row=2, error_type="validation", message="x")
    ImportEvent.objects.create(import_job=job, old_status="processing", new_status=status)
    return job

old = make("old.csv", "completed", 200)
old_failed = make("old-failed.csv", "failed", 200)
young = make("young.csv", "completed", 10)
job = Job.objects.create(name="Imported long ago", source_import=old)
schedule = Schedule.objects.get(name="imports-retention")
Schedule.objects.filter(pk=schedule.pk).update(next_run=now - timedelta(minutes=1))
print(json.dumps({"old": str(old.pk), "old_failed": str(old_failed.pk), "young": str(young.pk),
                  "old_file": old.file.path, "young_file": young.file.path, "job": job.pk}))
"""

STATE = """
import json
from django.utils import timezone
from django_q.models import Schedule, Success
from imports.models import ImportErrorRecord, ImportJob
from jobs.models import Job

schedule = Schedule.objects.get(name="imports-retention")
print(json.dumps({
    "imports": sorted(str(pk) for pk in ImportJob.objects.values_list("pk", flat=True)),
    "errors": ImportErrorRecord.objects.count(),
    "job_source": Job.objects.get(pk=JOB_ID).source_import_id,
    "schedules": Schedule.objects.filter(name="imports-retention").count(),
    "next_run_in_future": schedule.next_run > timezone.now(),
    "results": list(Success.objects.filter(func="imports.tasks.cleanup_imports_task")
                    .values_list("result", flat=True)),
}, default=str))
"""


@dataclass
class Site:
    env: dict[str, str]
    workdir: Path

    def manage(self, *args: str) -> str:
        completed = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        return completed.stdout

    def shell(self, code: str) -> dict:
        return json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])


def _psql(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url.rpartition("/")[0] + "/postgres", autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    outer = os.environ.get("DATABASE_URL", "")
    pg_url = None
    if outer.startswith(("postgres://", "postgresql://")):
        pg_url = f"{outer}_retention{os.getpid()}"
        name = pg_url.rpartition("/")[2]
        _psql(outer, f'DROP DATABASE IF EXISTS "{name}"')
        _psql(outer, f'CREATE DATABASE "{name}"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(OUTER_ONLY)}
    env.update(
        DJANGO_DEBUG="true",
        DATABASE_URL=pg_url or f"sqlite:///{tmp_path / 'cluster.sqlite3'}",
        JOBSITE_VAR_DIR=str(tmp_path),
        MEDIA_ROOT=str(tmp_path / "media"),
        IMPORT_RETENTION_DAYS="90",
        IMPORT_RETENTION_KEEP_FAILED="true",
        # A queue (and cluster status keys) of its own, even on a shared Redis.
        Q_CLUSTER_NAME=f"retention{os.getpid()}",
        Q_WORKERS="1",
        PYTHONUNBUFFERED="1",
    )
    site = Site(env, tmp_path)
    site.manage("migrate", "--noinput")
    site.manage("createcachetable")
    try:
        yield site
    finally:
        if pg_url:
            _psql(outer, f'DROP DATABASE IF EXISTS "{pg_url.rpartition("/")[2]}"')


@pytest.fixture
def qcluster(site: Site) -> Iterator[Path]:
    log = site.workdir / "qcluster.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=settings.BASE_DIR,
            env=site.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_the_schedule_deletes_old_imports_on_a_real_cluster(site: Site, qcluster: Path) -> None:
    ids = site.shell(SETUP)
    assert Path(ids["old_file"]).exists()
    state_code = STATE.replace("JOB_ID", str(ids["job"]))

    deadline = time.monotonic() + DEADLINE_SECONDS
    state = site.shell(state_code)
    while ids["old"] in state["imports"] or not state["results"]:
        assert time.monotonic() < deadline, (
            f"retention did not run in {DEADLINE_SECONDS}s:\n{qcluster.read_text()[-3000:]}"
        )
        time.sleep(2)
        state = site.shell(state_code)

    assert state["imports"] == sorted([ids["old_failed"], ids["young"]])
    assert state["errors"] == 2
    assert not Path(ids["old_file"]).exists()
    assert Path(ids["young_file"]).exists()
    assert state["job_source"] is None  # the job stays, detached from its deleted import
    assert state["schedules"] == 1
    assert state["next_run_in_future"]  # the scheduler moved it on to tomorrow
    assert state["results"][0]["imports"] == 1
    assert "import retention run: actor=schedule" in qcluster.read_text()
