"""Crash safety, one worker per import, attempts, cancel, events (docs/csv-import.md),
in-process; test_cluster.py does the same against a real qcluster."""

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from imports import intake
from imports.importer import Importer, resume_stalled_imports, run_import
from imports.models import ImportEvent, ImportJob, ImportNotCancellable, ImportStatus
from imports.reading import Record
from imports.signals import import_status_changed
from imports.writer import insert_jobs
from jobs.models import Job

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: escapes every `except Exception`, like a dead process."""


@pytest.fixture
def make_import(uploader: User, write_csv: Callable[..., Path]) -> Callable[..., ImportJob]:
    def make(content: str, **options: Any) -> ImportJob:
        with write_csv(content).open("rb") as file:
            info = intake.inspect_upload(file)
            return intake.create_import(file, info, user=uploader, enqueue=False, **options)

    return make


def kill_after_batches(monkeypatch: pytest.MonkeyPatch, batches: int) -> None:
    original = Importer.write_batch
    written = {"count": 0}

    def write_then_die(self: Importer, batch: list[Record]) -> None:
        if written["count"] == batches:
            raise WorkerKilled
        original(self, batch)
        written["count"] += 1

    monkeypatch.setattr(Importer, "write_batch", write_then_die)


def expire_lease(import_job: ImportJob) -> None:
    ImportJob.objects.filter(pk=import_job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


ROWS = "name,reference\n" + "".join(f"Job {n},R{n}\n" for n in range(1, 8)) + "Again,R2\n"


def test_resume_from_checkpoint_imports_every_row_once(
    make_import: Callable[..., ImportJob], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.IMPORT_BATCH_SIZE = 2
    import_job = make_import(ROWS)
    with monkeypatch.context() as patch:
        kill_after_batches(patch, 2)
        with pytest.raises(WorkerKilled):
            run_import(import_job.pk)
    import_job.refresh_from_db()
    assert (import_job.status, import_job.checkpoint, import_job.created_count) == (
        "processing",
        4,
        4,
    )
    assert import_job.lease_is_live
    run_import(import_job.pk)  # re-delivered while the lease is live: no-op
    import_job.refresh_from_db()
    assert (import_job.attempts, import_job.checkpoint) == (1, 4)

    expire_lease(import_job)  # the dead worker's lease runs out
    run_import(import_job.pk)
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.COMPLETED
    assert import_job.attempts == 2
    names = sorted(Job.objects.values_list("name", flat=True))
    assert names == sorted(f"Job {n}" for n in range(1, 8))
    # R2 was committed before the crash; its repeat after the resume is still a duplicate.
    assert list(import_job.errors.values_list("row", "error_type")) == [(9, "duplicate")]
    assert (import_job.processed_rows, import_job.created_count, import_job.error_count) == (
        8,
        7,
        1,
    )
    assert ImportEvent.objects.filter(
        import_job=import_job, message__startswith="Resumed after row 5"
    ).exists()


def test_killed_batch_leaves_nothing_half_written(
    make_import: Callable[..., ImportJob], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.IMPORT_BATCH_SIZE = 3
    import_job = make_import(ROWS)

    def die_mid_batch(self: Any, plan: Any) -> None:
        insert_jobs(plan.creates, actor=self.actor, at=timezone.now(), source_import=self.run)
        raise WorkerKilled  # after the jobs, before the counters and checkpoint

    monkeypatch.setattr(Importer, "write", die_mid_batch)
    with pytest.raises(WorkerKilled):
        run_import(import_job.pk)
    assert not Job.objects.exists()  # the batch's transaction rolled back
    import_job.refresh_from_db()
    assert import_job.checkpoint == 0


def test_attempts_are_capped(
    make_import: Callable[..., ImportJob], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.IMPORT_BATCH_SIZE = 2
    settings.IMPORT_MAX_ATTEMPTS = 3
    import_job = make_import(ROWS)
    kill_after_batches(monkeypatch, 0)  # a file that kills the worker every time
    for _ in range(3):
        with pytest.raises(WorkerKilled):
            run_import(import_job.pk)
        expire_lease(import_job)
    run_import(import_job.pk)  # the 4th pickup gives up
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.FAILED
    assert import_job.attempts == 3
    assert "stopped after 3 attempts" in import_job.failure_message
    assert "Traceback" not in import_job.failure_message


def test_a_second_worker_loses_the_lease_and_writes_nothing(
    make_import: Callable[..., ImportJob], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker presumed dead (lease expired) comes back after another one took over."""
    settings.IMPORT_BATCH_SIZE = 2
    import_job = make_import(ROWS)
    original = Importer.write_batch
    calls = {"count": 0}

    def slow_worker(self: Importer, batch: list[Record]) -> None:
        calls["count"] += 1
        if calls["count"] == 2:
            # While this worker stalls, its lease expires and another worker claims the import.
            expire_lease(self.run)
            assert Importer.claim(self.run.pk, "other-worker") is not None
        original(self, batch)

    monkeypatch.setattr(Importer, "write_batch", slow_worker)
    run_import(import_job.pk)  # stops quietly at its fenced write
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.PROCESSING
    assert import_job.lease_owner == "other-worker"
    assert import_job.checkpoint == 2  # only the first batch of the stale worker counted
    assert Job.objects.count() == 2


def test_stalled_imports_are_reenqueued(
    make_import: Callable[..., ImportJob], task_queue: Any
) -> None:

    stalled = make_import("name\nA\n")
    live = make_import("name\nB\n")
    ImportJob.objects.filter(pk=stalled.pk).update(
        status=ImportStatus.PROCESSING, lease_expires_at=timezone.now() - timedelta(seconds=5)
    )
    ImportJob.objects.filter(pk=live.pk).update(
        status=ImportStatus.PROCESSING, lease_expires_at=timezone.now() + timedelta(seconds=60)
    )
    assert resume_stalled_imports() == [str(stalled.pk)]
    assert task_queue.queue_size() == 1


def test_upload_stands_when_the_broker_is_down_and_the_sweep_enqueues_it(
    uploader: User,
    write_csv: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    task_queue: Any,
) -> None:
    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("django_q.tasks.async_task", broker_down)
    with write_csv("name\nA\n").open("rb") as file:
        with django_capture_on_commit_callbacks(execute=True):
            import_job = intake.create_import(file, intake.inspect_upload(file), user=uploader)
    import_job.refresh_from_db()
    assert (import_job.status, import_job.task_id) == (ImportStatus.PENDING, "")
    monkeypatch.undo()
    assert resume_stalled_imports() == []  # give the broker a minute first
    ImportJob.objects.filter(pk=import_job.pk).update(
        created_at=timezone.now() - timedelta(minutes=2)
    )
    assert resume_stalled_imports() == [str(import_job.pk)]
    import_job.refresh_from_db()
    assert import_job.task_id
    assert task_queue.queue_size() == 1


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_pending_is_immediate(make_import: Callable[..., ImportJob], uploader: User) -> None:
    import_job = make_import("name\nA\n")
    import_job.request_cancel(actor=uploader, reason="  oops  ")
    assert import_job.status == ImportStatus.CANCELLED
    assert (import_job.cancelled_by, import_job.cancellation_reason) == (uploader, "oops")
    assert not import_job.can_cancel
    run_import(import_job.pk)  # the task arriving later does nothing
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.CANCELLED
    assert not Job.objects.exists()


def test_cancel_processing_stops_at_the_next_batch_boundary(
    make_import: Callable[..., ImportJob],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    uploader: User,
) -> None:
    settings.IMPORT_BATCH_SIZE = 2
    import_job = make_import(ROWS)
    original = Importer.write_batch
    calls = {"count": 0}

    def cancel_during_second_batch(self: Importer, batch: Any) -> None:
        calls["count"] += 1
        original(self, batch)
        if calls["count"] == 2:
            row = ImportJob.objects.get(pk=self.run.pk)
            assert row.can_cancel
            row.request_cancel(actor=uploader, reason="enough")
            assert row.status == ImportStatus.PROCESSING  # requested, not yet done
            assert not row.can_cancel
            row.request_cancel(actor=uploader)  # asking again is a no-op

    monkeypatch.setattr(Importer, "write_batch", cancel_during_second_batch)
    run_import(import_job.pk)
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.CANCELLED
    assert (import_job.processed_rows, import_job.created_count) == (4, 4)
    assert Job.objects.count() == 4  # committed batches stay
    assert (import_job.cancelled_by, import_job.cancellation_reason) == (uploader, "enough")
    assert import_job.cancelled_at is not None and import_job.lease_owner == ""
    with pytest.raises(ImportNotCancellable) as refused:
        import_job.request_cancel(actor=uploader)
    assert str(refused.value) == "This import is already cancelled and can no longer be cancelled."


def test_cancel_processing_import_whose_worker_died_is_immediate(
    make_import: Callable[..., ImportJob], uploader: User
) -> None:
    import_job = make_import("name\nA\n")
    ImportJob.objects.filter(pk=import_job.pk).update(
        status=ImportStatus.PROCESSING, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    import_job.request_cancel(actor=uploader)
    assert import_job.status == ImportStatus.CANCELLED


def test_finished_import_cannot_be_cancelled(make_import: Callable[..., ImportJob]) -> None:
    import_job = make_import("name\nA\n")
    run_import(import_job.pk)
    import_job.refresh_from_db()
    assert not import_job.can_cancel
    with pytest.raises(ImportNotCancellable):
        import_job.request_cancel(actor=None)
    assert import_job.status == ImportStatus.COMPLETED


# --- events, signal, log --------------------------------------------------------------------


def test_every_status_change_writes_event_signal_and_log(
    make_import: Callable[..., ImportJob], caplog: pytest.LogCaptureFixture
) -> None:
    received: list[tuple[str, str]] = []

    def receiver(sender: Any, import_job: ImportJob, old_status: str, new_status: str, **kw: Any):
        received.append((old_status, new_status))

    import_status_changed.connect(receiver)
    try:
        with caplog.at_level(logging.INFO, logger="imports"):
            import_job = make_import("name\nA\n")
            run_import(import_job.pk)
    finally:
        import_status_changed.disconnect(receiver)
    assert received == [("pending", "processing"), ("processing", "completed")]
    events = list(import_job.events.values_list("old_status", "new_status"))
    assert events == [("", "pending"), ("pending", "processing"), ("processing", "completed")]
    lines = [r for r in caplog.records if r.getMessage().startswith("import status changed")]
    assert len(lines) == 2
    done = lines[-1]
    assert (done.import_id, done.old_status, done.new_status) == (
        str(import_job.pk),
        "processing",
        "completed",
    )
    assert (done.actor, done.created_count, done.error_count) == ("system", 1, 0)
    assert "new_status=completed" in done.getMessage()


def test_cancel_during_the_all_or_nothing_check_writes_nothing(
    make_import: Callable[..., ImportJob],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    uploader: User,
) -> None:
    settings.IMPORT_BATCH_SIZE = 2
    import_job = make_import(ROWS, on_error="abort")
    original = Importer.plan

    def cancel_while_checking(self: Importer, batch: Any, *, lock: bool) -> Any:
        ImportJob.objects.get(pk=self.run.pk).request_cancel(actor=uploader)
        return original(self, batch, lock=lock)

    monkeypatch.setattr(Importer, "plan", cancel_while_checking)
    run_import(import_job.pk)
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.CANCELLED
    assert not Job.objects.exists()


def test_reference_created_meanwhile_replans_the_batch(
    make_import: Callable[..., ImportJob], make_job: Callable[..., Job], monkeypatch: Any
) -> None:
    """Another writer creates a job with one of the batch's references between the lookup and
    the insert: the batch rolls back and is planned again, with nothing counted twice."""
    job = make_job(name="Old", reference="R1")
    import_job = make_import("name,reference\nNew,R1\nOther,R2\n")
    original = Importer.plan
    calls = {"count": 0}

    def lookup_misses_once(self: Importer, batch: Any, *, lock: bool) -> Any:
        calls["count"] += 1
        if calls["count"] > 1:
            return original(self, batch, lock=lock)
        Job.objects.filter(pk=job.pk).update(reference="hidden")
        plan = original(self, batch, lock=lock)
        Job.objects.filter(pk=job.pk).update(reference="R1")  # "created" meanwhile
        return plan

    monkeypatch.setattr(Importer, "plan", lookup_misses_once)
    run_import(import_job.pk)
    import_job.refresh_from_db()
    assert calls["count"] == 2
    assert import_job.status == ImportStatus.COMPLETED
    assert (import_job.created_count, import_job.updated_count, import_job.error_count) == (1, 1, 0)
    assert import_job.processed_rows == 2
    job.refresh_from_db()
    assert job.name == "New"
