"""The `imports-retention` schedule run by a real `manage.py qcluster` subprocess.

Self-contained: the cluster needs a database it can open, so the test migrates one of its
own (a SQLite file, or on a PostgreSQL run a throwaway database beside the test one) and
drives it through `manage.py` subprocesses, exactly as a deployment would.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobsite.testing import qcluster

pytestmark = pytest.mark.cluster

# django-q2's guard loop runs the scheduler every 30 seconds, the first time 30 s after start.
DEADLINE_SECONDS = 180

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

    def shell(self, code: str) -> dict:
        output = qcluster.manage(self.env, "shell", "-c", code).stdout
        return json.loads(output.strip().splitlines()[-1])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with qcluster.scratch_site(
        tmp_path,
        "retention",
        IMPORT_RETENTION_DAYS="90",
        IMPORT_RETENTION_KEEP_FAILED="true",
        Q_WORKERS="1",
    ) as env:
        yield Site(env, tmp_path)


@pytest.fixture
def cluster(site: Site) -> Iterator[qcluster.Cluster]:
    """One node on the site's own database (not this process's, so it is not waited up)."""
    cluster = qcluster.Cluster(site.env, site.workdir)
    yield cluster
    cluster.stop()


def test_the_schedule_deletes_old_imports_on_a_real_cluster(
    site: Site, cluster: qcluster.Cluster
) -> None:
    ids = site.shell(SETUP)
    assert Path(ids["old_file"]).exists()
    state_code = STATE.replace("JOB_ID", str(ids["job"]))

    def retention_ran() -> dict | None:
        state = site.shell(state_code)
        return state if ids["old"] not in state["imports"] and state["results"] else None

    state = cluster.wait_for(
        retention_ran, "the retention schedule to run", seconds=DEADLINE_SECONDS, every=2
    )

    assert state["imports"] == sorted([ids["old_failed"], ids["young"]])
    assert state["errors"] == 2
    assert not Path(ids["old_file"]).exists()
    assert Path(ids["young_file"]).exists()
    assert state["job_source"] is None  # the job stays, detached from its deleted import
    assert state["schedules"] == 1
    assert state["next_run_in_future"]  # the scheduler moved it on to tomorrow
    assert state["results"][0]["imports"] == 1
    assert "import retention run: actor=schedule" in cluster.nodes[0].log()
