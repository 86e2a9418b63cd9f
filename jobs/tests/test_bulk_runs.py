"""Bulk runs in-process (jobs.bulk_runs, docs/bulk-runs.md): each action and skip reason, the
selection and its re-check in every batch, the run machinery's resume, cancel and attempts.
test_bulk_runs_cluster.py runs one on a real qcluster that is killed mid-run."""

import csv
import io
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from jobs import bulk_runs
from jobs.bulk_runs import (
    GONE,
    NO_LONGER_MATCHES,
    BulkRunner,
    BulkRunRefused,
    draft_bulk_run,
    preview,
    resume_stalled_bulk_runs,
    run_bulk_run,
    skipped_csv_lines,
    start_bulk_run,
)
from jobs.models import BulkRun, BulkRunBatch, BulkRunEvent, Job, JobEvent, Printer
from jobs.runs import RunStatus
from jobs.signals import bulk_items_processed, jobs_changed
from jobs.status import JobStatus

pytestmark = pytest.mark.django_db

S = JobStatus


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: escapes every `except Exception`, like a dead process."""


def make_jobs(count: int, **fields: Any) -> list[Job]:
    fields.setdefault("status", S.PENDING)
    Job.objects.bulk_create(Job(name=f"Job {n}", **fields) for n in range(count))
    return list(Job.objects.filter(name__startswith="Job ").order_by("pk"))


def start(actor: User | None, **request: Any) -> BulkRun:
    run = draft_bulk_run(actor=actor, origin="cli", **request)
    return start_bulk_run(run, enqueue=False)


def finished(run: BulkRun) -> BulkRun:
    run_bulk_run(run.pk)
    run.refresh_from_db()
    return run


def bulk_events(run: BulkRun) -> Any:
    return JobEvent.objects.filter(origin="bulk", origin_ref=str(run.pk))


def test_set_priority_changes_every_matching_job_once_with_one_event_each(
    editor: User, settings: Any
) -> None:
    settings.BULK_RUN_BATCH_SIZE = 3
    jobs = make_jobs(8, priority=1)
    other = Job.objects.create(name="Other", priority=1, status=S.RUNNING)
    run = finished(start(editor, action="set_priority", priority="7", query="status=pending&q=Job"))
    assert run.status == RunStatus.COMPLETED
    assert (run.total_count, run.processed_count, run.changed_count, run.skipped_count) == (
        8,
        8,
        8,
        0,
    )
    assert run.checkpoint == jobs[-1].pk
    for job in Job.objects.filter(pk__in=[j.pk for j in jobs]):
        assert (job.priority, job.version, job.updated_by) == (7, 2, editor)
    other.refresh_from_db()
    assert (other.priority, other.version) == (1, 1)  # not selected: not touched
    events = bulk_events(run)
    assert events.count() == 8
    assert set(events.values_list("kind", flat=True)) == {"updated"}
    assert events.first().changes == {"priority": [1, 7]}
    assert set(events.values_list("actor", flat=True)) == {editor.pk}
    messages = list(BulkRunEvent.objects.filter(run=run).values_list("message", flat=True))
    assert messages[0].startswith("Started from Command line: set priority to 7")
    assert messages[-1] == "8 jobs: 8 changed, 0 skipped."


def test_set_status_follows_the_status_rules_and_skips_with_the_rules_reason(
    editor: User,
) -> None:
    pending = make_jobs(2)
    completed = Job.objects.create(name="Done", status=S.COMPLETED)
    already = Job.objects.create(name="Running", status=S.RUNNING, started_at=timezone.now())
    run = finished(start(editor, action="set_status", status="running"))
    assert (run.changed_count, run.skipped_count) == (2, 2)
    assert run.skip_counts == {
        "A completed job cannot be moved to running.": 1,
        "Already running.": 1,
    }
    for job in Job.objects.filter(pk__in=[j.pk for j in pending]):
        assert job.status == S.RUNNING
        assert job.started_at is not None  # the status rule's side effect
    completed.refresh_from_db()
    already.refresh_from_db()
    assert (completed.status, completed.version) == (S.COMPLETED, 1)
    assert already.version == 1
    assert set(bulk_events(run).values_list("kind", flat=True)) == {"status_changed"}


def test_cancel_with_a_reason_skips_jobs_that_may_not_be_cancelled(editor: User) -> None:
    make_jobs(3)
    done = Job.objects.create(name="Done", status=S.COMPLETED)
    gone = Job.objects.create(name="Gone", status=S.CANCELLED)
    run = finished(start(editor, action="cancel", reason="  printer broke  "))
    assert (run.changed_count, run.skipped_count) == (3, 2)
    assert run.skip_counts == {"A completed job cannot be cancelled.": 1, "Already cancelled.": 1}
    cancelled = Job.objects.filter(name__startswith="Job ")
    assert set(cancelled.values_list("status", "cancellation_reason", "cancelled_by")) == {
        (S.CANCELLED, "printer broke", editor.pk)
    }
    assert set(bulk_events(run).values_list("kind", flat=True)) == {"cancelled"}
    assert bulk_events(run).first().changes == {
        "status": ["pending", "cancelled"],
        "cancellation_reason": ["", "printer broke"],
    }
    done.refresh_from_db()
    gone.refresh_from_db()
    assert (done.version, gone.version) == (1, 1)


def test_retry_failed_moves_failed_jobs_to_pending_only(editor: User) -> None:
    failed = Job.objects.create(name="F", status=S.FAILED, completed_at=timezone.now())
    running = Job.objects.create(name="R", status=S.RUNNING)
    run = finished(start(editor, action="retry_failed"))
    failed.refresh_from_db()
    assert (failed.status, failed.completed_at) == (S.PENDING, None)
    assert run.skip_counts == {"Not failed (the job is running).": 1}
    running.refresh_from_db()
    assert running.status == S.RUNNING


def test_assign_printer_takes_active_printers_only(editor: User, printer: Printer) -> None:
    jobs = make_jobs(2)
    Job.objects.filter(pk=jobs[0].pk).update(printer=printer)
    run = finished(start(editor, action="set_printer", printer=printer.name))
    assert run.skip_counts == {f"Already on printer {printer.name}.": 1}
    assert set(Job.objects.values_list("printer", flat=True)) == {printer.pk}
    assert bulk_events(run).get().changes == {"printer": [None, printer.name]}

    Printer.objects.create(name="Old", is_active=False)
    with pytest.raises(BulkRunRefused, match="not active"):
        draft_bulk_run(actor=editor, origin="ui", action="set_printer", printer="Old")
    with pytest.raises(BulkRunRefused, match="No printer is called"):
        draft_bulk_run(actor=editor, origin="ui", action="set_printer", printer="Nope")


def test_a_printer_deactivated_during_the_run_fails_it_and_keeps_what_was_done(
    editor: User, printer: Printer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BULK_RUN_BATCH_SIZE = 2
    make_jobs(5)
    run = start(editor, action="set_printer", printer=printer.name)
    original = BulkRunner.write_batch
    batches = {"count": 0}

    def deactivate_after_first(self: BulkRunner, ids: list[int]) -> None:
        original(self, ids)
        batches["count"] += 1
        Printer.objects.filter(pk=printer.pk).update(is_active=False)

    monkeypatch.setattr(BulkRunner, "write_batch", deactivate_after_first)
    run = finished(run)
    assert run.status == RunStatus.FAILED
    assert "was deactivated during the run" in run.failure_message
    assert run.changed_count == 2
    assert Job.objects.filter(printer=printer).count() == 2


def test_the_set_is_bounded_by_the_highest_id_at_the_start(editor: User) -> None:
    make_jobs(3)
    run = start(editor, action="set_priority", priority=5)
    late = Job.objects.create(name="Job late")
    run = finished(run)
    assert run.total_count == 3
    late.refresh_from_db()
    assert late.priority == 0


def test_a_job_changed_before_its_batch_to_no_longer_match_is_skipped(
    editor: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BULK_RUN_BATCH_SIZE = 2
    jobs = make_jobs(4)
    run = start(editor, action="set_priority", priority=9, query="status=pending")
    original = BulkRunner.write_batch

    def others_write_meanwhile(self: BulkRunner, ids: list[int]) -> None:
        if ids[0] == jobs[0].pk:
            # After the snapshot, before the batches reach them: one job moves out of the
            # filter, one is deleted.
            Job.objects.filter(pk=jobs[2].pk).update(status=S.RUNNING)
            Job.objects.filter(pk=jobs[3].pk).delete()
        original(self, ids)

    monkeypatch.setattr(BulkRunner, "write_batch", others_write_meanwhile)
    run = finished(run)
    assert run.status == RunStatus.COMPLETED
    assert (run.total_count, run.changed_count, run.skipped_count) == (4, 2, 2)
    assert run.skip_counts == {NO_LONGER_MATCHES: 1, GONE: 1}
    assert Job.objects.get(pk=jobs[2].pk).priority == 0


def test_ticked_jobs_are_a_selection_too(editor: User) -> None:
    jobs = make_jobs(4)
    run = finished(
        start(editor, action="set_priority", priority=3, job_ids=[jobs[1].pk, jobs[3].pk])
    )
    assert run.total_count == 2
    assert list(Job.objects.order_by("pk").values_list("priority", flat=True)) == [0, 3, 0, 3]


def test_relative_ages_count_from_the_runs_making(editor: User) -> None:
    old = Job.objects.create(name="Old", updated_at=timezone.now() - timedelta(days=10))
    new = Job.objects.create(name="New")
    run = finished(start(editor, action="set_priority", priority=4, query="q=updated:<7d"))
    assert run.changed_count == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.priority, new.priority) == (0, 4)


def test_bad_requests_are_refused_with_a_reason(editor: User) -> None:
    def refused(**request: Any) -> str:
        with pytest.raises(BulkRunRefused) as error:
            draft_bulk_run(actor=editor, origin="api", **request)
        return str(error.value)

    assert "action must be one of" in refused(action="delete")
    assert "status must be one of" in refused(action="set_status", status="done")
    assert "priority must be a whole number from 0 to 10" in refused(
        action="set_priority", priority="11"
    )
    assert "priority must be" in refused(action="set_priority", priority="x")
    assert "priority:" in refused(action="cancel", query="q=priority:high")
    assert "not a job id" in refused(action="cancel", job_ids=["1", "x"])
    assert "Select at least one job" in refused(action="cancel", job_ids=[])
    assert "at most 10,000 are" in refused(action="cancel", job_ids=range(1, 10_002))
    assert not BulkRun.objects.exists()


def test_preview_counts_samples_and_predicts_skips(editor: User) -> None:
    make_jobs(12)
    Job.objects.create(name="Done", status=S.COMPLETED)
    draft = draft_bulk_run(actor=editor, origin="ui", action="set_status", status="running")
    seen = preview(draft)
    assert (seen.count, seen.will_change) == (13, 12)
    assert seen.skips == [("A completed job cannot be moved to running.", 1)]
    assert len(seen.sample) == bulk_runs.SAMPLE_SIZE
    assert draft.pk is None  # a preview saves nothing
    assert not BulkRun.objects.exists()


def test_skipped_csv_lists_jobs_and_reasons_formula_safe(editor: User) -> None:
    Job.objects.create(name="=HYPERLINK(1)", status=S.COMPLETED)
    run = finished(start(editor, action="cancel"))
    rows = list(csv.reader(io.StringIO("".join(skipped_csv_lines(run)))))
    job = Job.objects.get()
    assert rows == [
        ["job_id", "name", "status", "reason"],
        [str(job.pk), "'=HYPERLINK(1)", "completed", "A completed job cannot be cancelled."],
    ]


def test_each_committed_batch_sends_its_transitions_and_outcomes(
    editor: User, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.BULK_RUN_BATCH_SIZE = 3
    for status in (S.PENDING, S.PENDING, S.COMPLETED, S.RUNNING, S.SCHEDULED, S.RUNNING):
        Job.objects.create(name=f"Job {status}", status=status)
    run = start(editor, action="set_status", status="running")
    received: list[tuple[str, dict[str, Any]]] = []

    def receiver(name: str) -> Any:
        def receive(sender: object, signal: object, **kwargs: Any) -> None:
            received.append((name, kwargs))

        return receive

    on_changed, on_processed = receiver("changed"), receiver("processed")
    jobs_changed.connect(on_changed)
    bulk_items_processed.connect(on_processed)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = finished(run)
    finally:
        jobs_changed.disconnect(on_changed)
        bulk_items_processed.disconnect(on_processed)
    assert run.changed_count == 3
    assert received == [
        ("changed", {"transitions": Counter({("pending", "running"): 2}), "surface": "bulk"}),
        ("processed", {"outcomes": Counter({"changed": 2, "not_allowed": 1})}),
        ("changed", {"transitions": Counter({("scheduled", "running"): 1}), "surface": "bulk"}),
        ("processed", {"outcomes": Counter({"changed": 1, "unchanged": 2})}),
    ]


def test_a_batch_that_changes_nothing_announces_no_change(
    editor: User, django_capture_on_commit_callbacks: Any
) -> None:
    make_jobs(2, priority=4)
    run = start(editor, action="set_priority", priority=4)
    received: list[dict[str, Any]] = []

    def receive(sender: object, signal: object, **kwargs: Any) -> None:
        received.append(kwargs)

    jobs_changed.connect(receive)
    bulk_items_processed.connect(receive)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            finished(run)
    finally:
        jobs_changed.disconnect(receive)
        bulk_items_processed.disconnect(receive)
    assert received == [{"outcomes": Counter({"unchanged": 2})}]


def test_batches_are_sized_by_how_long_the_last_transaction_took() -> None:
    size = bulk_runs.next_batch_size
    target = bulk_runs.BATCH_TARGET_MS
    assert size(1000, 1000, target * 2, 1000) == 500  # twice as slow: half as many
    assert size(500, 500, target / 4, 1000) == 1000  # growing twofold at most
    assert size(1000, 1000, target / 10, 1000) == 1000  # never past BULK_RUN_BATCH_SIZE
    assert size(1000, 1000, target * 1000, 1000) == bulk_runs.MIN_BATCH_SIZE
    assert size(3, 3, target * 1000, 3) == 3  # a setting below the minimum stays


# --- The run machinery: resume, attempts, cancel ------------------------------------------


def kill_after_batches(monkeypatch: pytest.MonkeyPatch, batches: int) -> None:
    original = BulkRunner.write_batch
    written = {"count": 0}

    def write_then_die(self: BulkRunner, ids: list[int]) -> None:
        if written["count"] == batches:
            raise WorkerKilled
        original(self, ids)
        written["count"] += 1

    monkeypatch.setattr(BulkRunner, "write_batch", write_then_die)


def expire_lease(run: BulkRun) -> None:
    BulkRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_a_resumed_run_changes_every_job_exactly_once(
    editor: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BULK_RUN_BATCH_SIZE = 3
    make_jobs(10)
    run = start(editor, action="set_priority", priority=6)
    with monkeypatch.context() as patch:
        kill_after_batches(patch, 2)
        with pytest.raises(WorkerKilled):
            run_bulk_run(run.pk)
    run.refresh_from_db()
    assert (run.status, run.processed_count, run.attempts) == ("processing", 6, 1)
    run_bulk_run(run.pk)  # re-delivered while the lease is live: no-op
    run.refresh_from_db()
    assert run.attempts == 1
    expire_lease(run)
    run = finished(run)
    assert (run.status, run.attempts, run.changed_count) == (RunStatus.COMPLETED, 2, 10)
    assert bulk_events(run).count() == 10
    assert set(Job.objects.values_list("version", "priority")) == {(2, 6)}
    assert BulkRunEvent.objects.filter(run=run, message__startswith="Resumed after job").exists()


def test_a_run_resumed_inside_a_noted_batch_goes_on_after_its_checkpoint(
    editor: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BULK_RUN_BATCH_SIZE = 4  # noted as 4 + 4 + 2 jobs
    jobs = make_jobs(10)
    monkeypatch.setattr(bulk_runs, "next_batch_size", lambda *args: 2)
    run = start(editor, action="set_priority", priority=6)
    with monkeypatch.context() as patch:
        kill_after_batches(patch, 2)  # 4 jobs, then 2 of the second noted batch
        with pytest.raises(WorkerKilled):
            run_bulk_run(run.pk)
    run.refresh_from_db()
    assert (run.processed_count, run.checkpoint) == (6, jobs[5].pk)
    expire_lease(run)
    run = finished(run)
    assert (run.status, run.changed_count) == (RunStatus.COMPLETED, 10)
    assert bulk_events(run).count() == 10
    assert set(Job.objects.values_list("version", "priority")) == {(2, 6)}


def test_a_batch_killed_midway_leaves_nothing_half_written(
    editor: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BULK_RUN_BATCH_SIZE = 5
    make_jobs(5)
    run = start(editor, action="set_priority", priority=6)

    def die_after_writing(*args: Any, **kwargs: Any) -> None:
        Job.objects.update(priority=6)
        raise WorkerKilled

    monkeypatch.setattr(bulk_runs, "write_changes", die_after_writing)
    with pytest.raises(WorkerKilled):
        run_bulk_run(run.pk)
    assert set(Job.objects.values_list("priority", flat=True)) == {0}
    run.refresh_from_db()
    assert (run.checkpoint, run.changed_count) == (0, 0)


def test_attempts_are_capped(editor: User, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.BULK_RUN_MAX_ATTEMPTS = 2
    make_jobs(3)
    run = start(editor, action="set_priority", priority=6)
    kill_after_batches(monkeypatch, 0)
    for _ in range(2):
        with pytest.raises(WorkerKilled):
            run_bulk_run(run.pk)
        expire_lease(run)
    run = finished(run)
    assert run.status == RunStatus.FAILED
    assert "stopped after 2 attempts" in run.failure_message


def test_cancel_stops_at_a_batch_boundary(
    editor: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BULK_RUN_BATCH_SIZE = 2
    make_jobs(7)
    run = start(editor, action="set_priority", priority=2)
    original = BulkRunner.write_batch

    def cancel_after_two(self: BulkRunner, ids: list[int]) -> None:
        original(self, ids)
        if self.progress["processed_count"] == 4:
            BulkRun.objects.get(pk=run.pk).request_cancel(actor=editor, reason="enough")

    monkeypatch.setattr(BulkRunner, "write_batch", cancel_after_two)
    run = finished(run)
    assert run.status == RunStatus.CANCELLED
    assert (run.processed_count, run.cancellation_reason) == (4, "enough")
    assert Job.objects.filter(priority=2).count() == 4


def test_a_pending_run_cancels_at_once(editor: User) -> None:
    make_jobs(2)
    run = start(editor, action="cancel")
    run.request_cancel(actor=editor)
    assert run.status == RunStatus.CANCELLED
    run = finished(run)
    assert run.status == RunStatus.CANCELLED
    assert set(Job.objects.values_list("status", flat=True)) == {S.PENDING}


def test_stalled_runs_are_reenqueued(editor: User, task_queue: Any) -> None:
    make_jobs(1)
    stalled = start(editor, action="cancel")
    BulkRun.objects.filter(pk=stalled.pk).update(
        status=RunStatus.PROCESSING, lease_expires_at=timezone.now() - timedelta(seconds=5)
    )
    assert resume_stalled_bulk_runs() == [stalled.pk]
    assert task_queue.queue_size() == 1


def test_the_selection_is_noted_in_steps_cut_in_batches(
    editor: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk_runs, "SNAPSHOT_RANGE", 4)
    settings.BULK_RUN_BATCH_SIZE = 2
    jobs = make_jobs(8)
    Job.objects.filter(pk=jobs[1].pk).update(status=S.RUNNING)
    run = start(editor, action="set_priority", priority=1, query="status=pending")
    batches = []
    original = BulkRunner.write_batch

    def note(self: BulkRunner, ids: list[int]) -> None:
        batches.append(ids)
        original(self, ids)

    monkeypatch.setattr(BulkRunner, "write_batch", note)
    run = finished(run)
    selected = [job.pk for job in jobs if job != jobs[1]]
    assert run.total_count == 7
    assert [job_id for batch in batches for job_id in batch] == selected
    # Each snapshot step notes one range of 4 ids, cut in batches of at most 2 jobs.
    assert {len({(job_id - 1) // 4 for job_id in batch}) for batch in batches} == {1}
    assert {len(batch) for batch in batches} == {1, 2}
    assert not BulkRunBatch.objects.filter(run=run).exists()  # forgotten once the run ended
