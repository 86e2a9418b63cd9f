"""/metrics (docs/metrics.md): who may scrape, and each metric moving when its event happens.

Every process of the test run writes to the run's own metrics folder (jobsite.settings), so a
counter holds what earlier tests counted too: each test compares a scrape after the event
with one before it.
"""

import logging
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.utils import timezone
from django_q.signing import SignedPackage
from prometheus_client.parser import text_string_to_metric_families

from imports import intake
from imports.importer import run_import
from imports.models import ImportJob, ImportStatus
from imports.retention import cleanup_imports
from jobs.bulk import bulk_update_status
from jobs.bulk_runs import draft_bulk_run, run_bulk_run, start_bulk_run
from jobs.models import Job
from jobsite import metrics
from jobsite.models import ApiToken
from jobsite.testing import qcluster

Samples = dict[tuple[str, frozenset], float]


def scrape_as(client: Client, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a labelled counter not counted yet (absent from the scrape)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def token(viewer: User) -> str:
    """An API token of a user with jobs.view_job."""
    return ApiToken.issue(user=viewer, name="prometheus")[1]


@pytest.fixture
def scrape(token: str) -> Callable[[], Samples]:
    return lambda: scrape_as(Client(), Authorization=f"Bearer {token}")


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """`with on_commit():` runs what the block left for its transaction's commit (the test's
    transaction is never committed)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# --- Who may scrape -------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_scrape_is_asked_for_a_bearer_token() -> None:
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header, challenge",
    [
        ("Bearer jst_not-a-token", 'Bearer error="invalid_token"'),
        ("Bearer ", 'Bearer error="invalid_token"'),
        ("Basic dXNlcjpwdw==", "Bearer"),
    ],
)
def test_a_bad_token_is_refused_even_beside_a_staff_session(
    header: str, challenge: str, client_for: Callable[..., Client], admin_user: User
) -> None:
    response = client_for(admin_user).get("/metrics", headers={"Authorization": header})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == challenge


@pytest.mark.django_db
def test_a_revoked_token_is_refused(viewer: User) -> None:
    token, secret = ApiToken.issue(user=viewer, name="old")
    token.revoke()
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401


@pytest.mark.django_db
def test_a_token_without_the_view_permission_is_forbidden(outsider: User) -> None:
    secret = ApiToken.issue(user=outsider, name="no rights")[1]
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 403
    assert "jobs.view_job" in response.content.decode()


@pytest.mark.django_db
def test_a_token_with_the_view_permission_scrapes(token: str) -> None:
    samples = scrape_as(Client(), Authorization=f"Bearer {token}")
    assert ("jobsite_queue_depth", frozenset()) in samples


@pytest.mark.django_db
def test_staff_scrape_with_their_session_others_are_forbidden(
    client_for: Callable[..., Client], admin_user: User, viewer: User
) -> None:
    assert "jobsite_jobs" in {name for name, _ in scrape_as(client_for(admin_user))}
    response = client_for(viewer).get("/metrics")  # holds jobs.view_job, but is not staff
    assert response.status_code == 403
    staff = User.objects.create_user("staff", is_staff=True)
    assert client_for(staff).get("/metrics").status_code == 200  # a staff session suffices


@pytest.mark.django_db
def test_only_get_and_head(token: str) -> None:
    response = Client().post("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 405


@pytest.mark.django_db
def test_openmetrics_when_the_scraper_asks_for_it(token: str) -> None:
    response = Client().get(
        "/metrics",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/openmetrics-text"},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().endswith("# EOF\n")


# --- Counters ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_job_transitions_count_each_write_by_surface(scrape, on_commit, admin_user: User) -> None:
    name = "jobsite_job_transitions_total"
    before = scrape()
    with on_commit():
        job = Job(name="Gear")
        job.insert(actor=admin_user, origin="cli")
        job.apply_changes({"status": "running"}, actor=admin_user, origin="mcp")
        job.apply_changes({"priority": 3}, actor=admin_user, origin="mcp")
        others = [Job.objects.create(name=f"Part {n}") for n in range(3)]
        result = bulk_update_status(
            [{"id": other.pk, "status": "scheduled"} for other in others],
            actor=admin_user,
            origin="api",
        )
    assert result["updated_count"] == 3
    after = scrape()

    def moved(old: str, new: str, surface: str) -> float:
        labels = {"from": old, "to": new, "surface": surface}
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("", "pending", "cli") == 1
    assert moved("pending", "running", "mcp") == 1
    assert moved("running", "running", "mcp") == 1
    assert moved("pending", "scheduled", "api") == 3


@pytest.mark.django_db
def test_a_rolled_back_write_counts_nothing(scrape, on_commit, admin_user: User) -> None:
    name = "jobsite_job_transitions_total"
    labels = {"from": "", "to": "pending", "surface": "admin"}
    before = value(scrape(), name, **labels)
    with on_commit(), pytest.raises(RuntimeError), transaction.atomic():
        Job(name="Gear").insert(actor=admin_user, origin="admin")
        raise RuntimeError("roll back")
    assert value(scrape(), name, **labels) == before


@pytest.mark.django_db
def test_bulk_run_batches_count_their_items_and_transitions(
    scrape, on_commit, editor: User, make_job: Callable[..., Job]
) -> None:
    jobs = [make_job(status=status) for status in ("pending", "pending", "pending", "running")]
    before = scrape()
    with on_commit():
        run = draft_bulk_run(
            action="set_status",
            status="running",
            actor=editor,
            origin="ui",
            job_ids=[job.pk for job in jobs],
        )
        run_bulk_run(start_bulk_run(run, enqueue=False).pk)
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("jobsite_bulk_items_total", outcome="changed") == 3
    assert moved("jobsite_bulk_items_total", outcome="unchanged") == 1
    pending_to_running = {"from": "pending", "to": "running", "surface": "bulk"}
    assert moved("jobsite_job_transitions_total", **pending_to_running) == 3


def import_csv(
    tmp_path: Path, content: str, user: User, *, on_existing: str = "update"
) -> ImportJob:
    path = tmp_path / f"jobs-{ImportJob.objects.count()}.csv"
    path.write_text(content)
    with path.open("rb") as file:
        import_job = intake.create_import(
            file, intake.inspect_upload(file), user=user, on_existing=on_existing, enqueue=False
        )
    run_import(import_job.pk)
    import_job.refresh_from_db()
    return import_job


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.django_db
def test_import_rows_transitions_and_duration(
    scrape, on_commit, media: None, editor: User, tmp_path: Path
) -> None:
    before = scrape()
    with on_commit():
        first = import_csv(
            tmp_path,
            "name,priority,reference,status\n"
            "Gear,1,R-1,pending\nBracket,2,R-2,pending\nBroken,99,R-3,pending\n",
            editor,
        )
        second = import_csv(
            tmp_path,
            "name,priority,reference,status\nGear,1,R-1,pending\nBracket,2,R-2,running\n",
            editor,
        )
        third = import_csv(
            tmp_path, "name,priority,reference\nGear,5,R-1\n", editor, on_existing="skip"
        )
    assert [first.status, second.status, third.status] == [ImportStatus.COMPLETED] * 3
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    rows = "jobsite_import_rows_total"
    assert moved(rows, outcome="created") == 2
    assert moved(rows, outcome="failed") == 1
    assert moved(rows, outcome="unchanged") == 1
    assert moved(rows, outcome="updated") == 1
    assert moved(rows, outcome="skipped") == 1
    transitions = "jobsite_job_transitions_total"
    assert moved(transitions, **{"from": "", "to": "pending", "surface": "import"}) == 2
    assert moved(transitions, **{"from": "pending", "to": "running", "surface": "import"}) == 1
    assert moved("jobsite_import_duration_seconds_count", status="completed") == 3
    assert moved("jobsite_import_duration_seconds_sum", status="completed") >= 0
    assert moved("jobsite_import_duration_seconds_bucket", status="completed", le="+Inf") == 3


@pytest.mark.django_db
def test_an_import_cancelled_before_it_started_is_not_timed(
    scrape, on_commit, media: None, editor: User, tmp_path: Path
) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("name\nGear\n")
    with path.open("rb") as file:
        import_job = intake.create_import(
            file, intake.inspect_upload(file), user=editor, enqueue=False
        )
    before = scrape()
    with on_commit():
        import_job.request_cancel(actor=editor)
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.CANCELLED
    after = scrape()
    name = "jobsite_import_duration_seconds_count"
    assert value(after, name, status="cancelled") == value(before, name, status="cancelled")


@pytest.mark.django_db
def test_retention_counts_the_imports_it_deletes(scrape, on_commit, media: None) -> None:
    now = timezone.now()
    for age in (100, 120, 10):
        ImportJob.objects.create(
            original_filename="old.csv",
            file_size=1,
            file_hash="0" * 64,
            status=ImportStatus.COMPLETED,
            completed_at=now - timedelta(days=age),
        )
    before = value(scrape(), "jobsite_retention_deleted_total")
    with on_commit():
        assert cleanup_imports(days=90, now=now).imports == 2
        assert cleanup_imports(days=90, now=now, dry_run=True).imports == 0
    assert value(scrape(), "jobsite_retention_deleted_total") - before == 2


@pytest.mark.django_db
def test_requests_are_timed_by_view_name_method_and_status_class(scrape) -> None:
    name = "jobsite_http_request_duration_seconds_count"
    healthz = {"method": "GET", "view": "healthz", "status": "2xx"}
    unmatched = {"method": "GET", "view": "unmatched", "status": "4xx"}
    odd = {"method": "other", "view": "healthz", "status": "4xx"}
    before = scrape()
    client = Client()
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no/such/page/12345")
    client.generic("BREW", "/healthz")
    after = scrape()
    assert value(after, name, **healthz) - value(before, name, **healthz) == 2
    assert value(after, name, **unmatched) - value(before, name, **unmatched) == 1
    assert value(after, name, **odd) - value(before, name, **odd) == 1
    assert not any("12345" in str(labels) for _, labels in after)


@pytest.mark.django_db
def test_a_metric_that_cannot_be_recorded_does_not_stop_the_write(
    on_commit, admin_user: User, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def broken(*labels: str) -> Any:
        raise OSError("No space left on device")

    monkeypatch.setattr(metrics.JOB_TRANSITIONS, "labels", broken)
    with on_commit(), caplog.at_level(logging.WARNING, logger="jobsite.metrics"):
        Job(name="Gear").insert(actor=admin_user, origin="ui")
    assert Job.objects.filter(name="Gear").exists()
    assert "metric not recorded: count_job_changes" in caplog.text


# --- Gauges, read at scrape time -------------------------------------------------------------


@pytest.mark.django_db
def test_jobs_by_status(scrape, make_job: Callable[..., Job]) -> None:
    for status in ("running", "running", "failed"):
        make_job(status=status)
    samples = scrape()
    assert value(samples, "jobsite_jobs", status="running") == 2
    assert value(samples, "jobsite_jobs", status="failed") == 1
    assert ("jobsite_jobs", frozenset({("status", "cancelled")})) in samples  # 0, but there


@pytest.mark.django_db
def test_queue_depth_and_the_oldest_queued_task(scrape, task_queue: Any) -> None:
    samples = scrape()
    assert value(samples, "jobsite_queue_depth") == 0
    assert ("jobsite_oldest_queued_seconds", frozenset()) in samples
    assert value(samples, "jobsite_oldest_queued_seconds") == 0
    now = timezone.now()
    for hours in (2, 1):
        task_queue.enqueue(
            SignedPackage.dumps(
                {
                    "id": f"task-{hours}",
                    "func": "math.floor",
                    "started": now - timedelta(hours=hours),
                }
            )
        )
    samples = scrape()
    assert value(samples, "jobsite_queue_depth") == 2
    assert value(samples, "jobsite_oldest_queued_seconds") >= 2 * 3600


@pytest.mark.django_db
def test_stale_leases_are_runs_whose_worker_died(scrape) -> None:
    now = timezone.now()

    def processing(lease_expires_at: Any) -> None:
        ImportJob.objects.create(
            original_filename="big.csv",
            file_size=1,
            file_hash="1" * 64,
            status=ImportStatus.PROCESSING,
            lease_owner="host:1:abc",
            lease_expires_at=lease_expires_at,
        )

    processing(now - timedelta(minutes=5))
    processing(now + timedelta(minutes=1))  # its worker is alive
    samples = scrape()
    assert value(samples, "jobsite_stale_leases", run="import") == 1
    assert value(samples, "jobsite_stale_leases", run="bulk_run") == 0
    assert ("jobsite_stale_leases", frozenset({("run", "bulk_run")})) in samples


@pytest.mark.django_db
def test_a_broker_that_cannot_be_read_leaves_out_only_its_gauges(
    scrape, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> Any:
        raise ConnectionError("broker down")

    monkeypatch.setattr(metrics, "get_broker", down)
    samples = scrape()
    assert ("jobsite_queue_depth", frozenset()) not in samples
    assert ("jobsite_jobs", frozenset({("status", "pending")})) in samples
    assert ("jobsite_stale_leases", frozenset({("run", "import")})) in samples


# --- gunicorn ------------------------------------------------------------------------------

GUNICORN_MASTER = """
import os, runpy, types
conf = runpy.run_path("jobsite/gunicorn_conf.py")
from prometheus_client import values
assert values.ValueClass is not values.MutexValue, "not in multiprocess mode"
assert conf["wsgi_app"] == "jobsite.wsgi:application"
folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
open(f"{folder}/gauge_livesum_4242.db", "wb").close()
open(f"{folder}/counter_4242.db", "wb").close()
conf["child_exit"](None, types.SimpleNamespace(pid=4242))
print(folder, sorted(os.listdir(folder)))
"""


def test_gunicorn_config_puts_the_master_in_multiprocess_mode(tmp_path: Path) -> None:
    """The config loads the settings (which choose the folder: by default var/prometheus)
    before prometheus_client, which the forked workers inherit; a worker that exits loses
    its live gauges and keeps its counters."""
    env = qcluster.environment(JOBSITE_VAR_DIR=str(tmp_path))
    for outer in ("DJANGO_SETTINGS_MODULE", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(outer, None)
    completed = subprocess.run(
        [sys.executable, "-c", GUNICORN_MASTER],
        cwd=qcluster.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"{tmp_path / 'prometheus'} ['counter_4242.db']"
