"""One user's imports run IMPORT_MAX_RUNNING_PER_USER at a time (docs/csv-import.md, "Limits");
the rest wait, pending, and start as the running ones end.

Red-team finding (issue 13, item 8a): one user uploading many files held every worker of the
cluster. A "worker" here is the claim and the run of the task (`Importer.run_task` is
`claim` then `execute`), in-process.
"""

import io
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_q.signing import SignedPackage

from imports import intake
from imports.importer import Importer, resume_stalled_imports, run_import
from imports.models import ImportJob, ImportStatus
from imports.tests.web_helpers import make_import as make_import_row
from jobs.models import Job

pytestmark = pytest.mark.django_db

ONE_RUNNING = "1 of your imports is running; this one starts when it ends."
TWO_RUNNING = "2 of your imports are running; this one starts when one of them ends."


@pytest.fixture
def upload(uploader: User, write_csv: Callable[..., Path]) -> Callable[..., ImportJob]:
    """`upload(user=uploader)`: a pending import of one job, as the upload page leaves it."""
    counter = iter(range(1000))

    def make(user: User = uploader) -> ImportJob:
        n = next(counter)
        with write_csv(f"name,reference\nJob {n},{user.username}-{n}\n").open("rb") as file:
            info = intake.inspect_upload(file)
            return intake.create_import(file, info, user=user, enqueue=False)

    return make


def start(import_job: ImportJob) -> Importer:
    """A worker picks the import up and is running it."""
    claimed = Importer.claim(import_job.pk, f"worker-{import_job.pk}")
    assert claimed is not None and claimed.status == ImportStatus.PROCESSING
    return Importer(claimed)


def queued_import_ids(task_queue: Any) -> list[str]:
    ids = []
    for ack_id, payload in task_queue.dequeue() or []:
        task = SignedPackage.loads(payload)
        task_queue.acknowledge(ack_id)
        assert task["func"] == "imports.tasks.run_import_task"
        ids.append(task["args"][0])
    return ids


def test_an_import_past_the_limit_waits_and_starts_when_the_running_one_ends(
    upload: Callable[..., ImportJob],
    settings: Any,
    task_queue: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.IMPORT_MAX_RUNNING_PER_USER = 1
    first, second = upload(), upload()
    running = start(first)
    events = list(second.events.values_list("new_status", flat=True))

    run_import(second.pk)  # a worker picks the second one up while the first runs

    second.refresh_from_db()
    assert second.status == ImportStatus.PENDING
    assert second.waiting_reason == ONE_RUNNING
    assert (second.attempts, second.started_at, second.task_id) == (0, None, "")
    assert list(second.events.values_list("new_status", flat=True)) == events

    with django_capture_on_commit_callbacks(execute=True):
        running.execute()  # the first one ends

    first.refresh_from_db()
    assert first.status == ImportStatus.COMPLETED
    assert queued_import_ids(task_queue) == [str(second.pk)]
    run_import(second.pk)
    second.refresh_from_db()
    assert (second.status, second.waiting_reason, second.attempts) == (
        ImportStatus.COMPLETED,
        "",
        1,
    )
    assert Job.objects.count() == 2


def test_the_import_page_and_the_list_say_why_it_waits(
    upload: Callable[..., ImportJob], uploader: User, client_for: Callable[..., Client]
) -> None:
    uploader.user_permissions.add(Permission.objects.get(codename="add_importjob"))
    start(upload())
    start(upload())
    waiting = upload()

    run_import(waiting.pk)  # the default limit is 2

    waiting.refresh_from_db()
    assert waiting.status == ImportStatus.PENDING
    assert waiting.waiting_reason == TWO_RUNNING
    client = client_for(uploader)
    message = f"Waiting: {TWO_RUNNING}"
    assert message in client.get(waiting.get_absolute_url()).content.decode()
    assert message in client.get("/imports/").content.decode()
    polled = client.get(waiting.get_absolute_url(), headers={"HX-Request": "true"})
    assert message in polled.content.decode()


def test_another_users_import_is_not_held_back(
    upload: Callable[..., ImportJob], settings: Any
) -> None:
    settings.IMPORT_MAX_RUNNING_PER_USER = 1
    start(upload())
    other = upload(User.objects.create_user("other-uploader"))

    run_import(other.pk)

    other.refresh_from_db()
    assert (other.status, other.waiting_reason) == (ImportStatus.COMPLETED, "")


def test_a_finished_or_dead_import_does_not_count(
    upload: Callable[..., ImportJob], settings: Any
) -> None:
    settings.IMPORT_MAX_RUNNING_PER_USER = 1
    run_import(upload().pk)  # completed
    dead = upload()
    start(dead)
    ImportJob.objects.filter(pk=dead.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    latest = upload()

    run_import(latest.pk)

    latest.refresh_from_db()
    assert latest.status == ImportStatus.COMPLETED


def test_a_limit_of_0_is_no_limit(upload: Callable[..., ImportJob], settings: Any) -> None:
    settings.IMPORT_MAX_RUNNING_PER_USER = 0
    for _ in range(3):
        start(upload())
    assert ImportJob.objects.filter(status=ImportStatus.PROCESSING).count() == 3


def test_the_sweep_re_enqueues_a_waiting_import_whose_task_was_used_up(
    upload: Callable[..., ImportJob], settings: Any, task_queue: Any
) -> None:
    settings.IMPORT_MAX_RUNNING_PER_USER = 1
    running = start(upload())
    waiting = upload()
    ImportJob.objects.filter(pk=waiting.pk).update(task_id="its-delivered-task")

    run_import(waiting.pk)  # that task is used up telling it to wait
    ImportJob.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(minutes=2))

    assert resume_stalled_imports() == [str(waiting.pk)]
    assert queued_import_ids(task_queue) == [str(waiting.pk)]
    run_import(waiting.pk)  # still one running: it waits again, and the sweep goes on
    waiting.refresh_from_db()
    assert (waiting.status, waiting.task_id, waiting.attempts) == (ImportStatus.PENDING, "", 0)
    assert resume_stalled_imports() == [str(waiting.pk)]
    assert resume_stalled_imports() == []  # once queued, not again

    running.execute()
    assert queued_import_ids(task_queue) == [str(waiting.pk)]
    run_import(waiting.pk)
    waiting.refresh_from_db()
    assert waiting.status == ImportStatus.COMPLETED


def test_with_the_broker_down_at_the_end_the_sweep_starts_the_waiting_import(
    upload: Callable[..., ImportJob],
    settings: Any,
    task_queue: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.IMPORT_MAX_RUNNING_PER_USER = 1
    running = start(upload())
    waiting = upload()
    run_import(waiting.pk)

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("django_q.tasks.async_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        running.execute()
    monkeypatch.undo()

    assert ImportJob.objects.get(pk=running.run.pk).status == ImportStatus.COMPLETED
    waiting.refresh_from_db()
    assert (waiting.status, waiting.task_id) == (ImportStatus.PENDING, "")
    ImportJob.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert resume_stalled_imports() == [str(waiting.pk)]
    run_import(waiting.pk)
    assert ImportJob.objects.get(pk=waiting.pk).status == ImportStatus.COMPLETED


def test_an_ending_import_makes_way_for_the_oldest_waiting_one_only(
    upload: Callable[..., ImportJob],
    uploader: User,
    settings: Any,
    task_queue: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.IMPORT_MAX_RUNNING_PER_USER = 1
    running = upload()
    start(running)
    older, newer = upload(), upload()
    run_import(newer.pk)
    run_import(older.pk)
    ImportJob.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=1))
    not_waiting = upload()  # pending, never picked up yet: not waiting for a turn
    ImportJob.objects.filter(pk=not_waiting.pk).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    ImportJob.objects.filter(pk=running.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        ImportJob.objects.get(pk=running.pk).request_cancel(actor=uploader)

    assert ImportJob.objects.get(pk=running.pk).status == ImportStatus.CANCELLED
    assert queued_import_ids(task_queue) == [str(older.pk)]


def test_cancelling_a_waiting_import_makes_way_for_nothing(
    upload: Callable[..., ImportJob],
    uploader: User,
    settings: Any,
    task_queue: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.IMPORT_MAX_RUNNING_PER_USER = 1
    start(upload())
    first, second = upload(), upload()
    run_import(first.pk)
    run_import(second.pk)

    with django_capture_on_commit_callbacks(execute=True):
        ImportJob.objects.get(pk=first.pk).request_cancel(actor=uploader)

    assert ImportJob.objects.get(pk=first.pk).status == ImportStatus.CANCELLED
    assert task_queue.queue_size() == 0


@pytest.mark.django_db(transaction=True)
def test_two_workers_starting_two_imports_of_one_user_at_once_start_one(
    uploader: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim locks only the import's row; the user's row makes the second claim wait
    for the first to commit and count it. (SQLite runs one write transaction at a time.)"""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: the race needs PostgreSQL")
    settings.IMPORT_MAX_RUNNING_PER_USER = 1
    first = make_import_row(created_by=uploader)
    second = make_import_row(created_by=uploader)
    started, go_on = threading.Event(), threading.Event()
    original = ImportJob.write_event

    def pause_the_first_claim_before_it_commits(self: ImportJob, **event: Any) -> None:
        original(self, **event)
        if self.pk == first.pk:
            started.set()
            assert go_on.wait(60), "the test never let the first claim commit"

    monkeypatch.setattr(ImportJob, "write_event", pause_the_first_claim_before_it_commits)
    results: dict[Any, Any] = {}

    def claim(import_job: ImportJob) -> None:
        try:
            results[import_job.pk] = Importer.claim(import_job.pk, f"worker-{import_job.pk}")
        finally:
            connection.close()

    workers = [threading.Thread(target=claim, args=(first,))]
    workers[0].start()
    assert started.wait(60), "the first claim never got as far as starting its import"
    workers.append(threading.Thread(target=claim, args=(second,)))
    workers[1].start()
    # Until the second claim either waits for a lock or is done (the race lost): no timing.
    while workers[1].is_alive() and not waiting_for_a_lock():
        workers[1].join(0.05)
    go_on.set()
    for worker in workers:
        worker.join(60)

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == ImportStatus.PROCESSING and results[first.pk] is not None
    assert (second.status, second.waiting_reason) == (ImportStatus.PENDING, ONE_RUNNING)
    assert results[second.pk] is None


def waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0] > 0


def test_sync_at_the_limit_says_why_it_did_not_run_and_exits_5(
    upload: Callable[..., ImportJob], write_csv: Callable[..., Path], settings: Any
) -> None:
    settings.IMPORT_MAX_RUNNING_PER_USER = 1
    start(upload())
    out, err = io.StringIO(), io.StringIO()
    path = write_csv("name,reference\nLate,late-1\n")
    with pytest.raises(SystemExit) as exited:
        call_command(
            "import_jobs", str(path), "--sync", "--user", "uploader", stdout=out, stderr=err
        )

    assert exited.value.code == 5
    assert f"Not run here: {ONE_RUNNING} The cluster starts it then" in out.getvalue()
    waiting = ImportJob.objects.get(original_filename=path.name)
    assert (waiting.status, waiting.waiting_reason) == (ImportStatus.PENDING, ONE_RUNNING)
    assert not Job.objects.filter(reference="late-1").exists()
