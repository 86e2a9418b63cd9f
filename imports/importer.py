"""Running an import on the cluster (docs/csv-import.md, "Processing, resume and cancel").

`run_import(import_id)` is the whole task: claim the import (jobs.runner: one worker at a
time, attempts counted), read the stored file (imports.reading), check and plan each batch
of IMPORT_BATCH_SIZE rows (imports.rows), and write it (imports.writer) in one transaction
with its error records, the counters and the checkpoint. A re-delivered task resumes after
the checkpoint; a cancel request is honoured between batches.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, reset_queries, transaction
from django.utils import timezone
from django_q.models import Schedule

from imports.intake import enqueue_import, enqueue_or_log
from imports.models import ImportErrorRecord, ImportJob, ImportStatus, OnError
from imports.reading import Record, UnreadableFile, open_records
from imports.rows import BatchPlan, RowError, RowValidator, plan_batch, reference_key
from imports.schedules import locked_single_schedule
from imports.signals import import_rows_processed
from imports.writer import insert_jobs, update_jobs
from jobs.runner import RunFailed, Runner
from jobs.runs import FINISHED_STATUSES
from jobs.search import merge_index
from jobs.signals import send_when_committed

logger = logging.getLogger("imports")

ERROR_MESSAGE_MAX = ImportErrorRecord._meta.get_field("message").max_length
UNEXPECTED_FAILURE = (
    "The import stopped because of an unexpected error. Rows imported before it were kept; "
    "the server log has the details."
)
RESUME_SCHEDULE_NAME = "imports-resume-stalled"


def run_import(import_id: Any) -> None:
    """The import task: claim the import, run it to the end, or leave it to its owner.

    Runs the same in a cluster worker and in-process (`import_jobs --sync`).
    """
    Importer.run_task(import_id)


class Importer(Runner):
    """One claimed import being run by this worker."""

    model = ImportJob
    progress_fields = (
        "checkpoint",
        "processed_rows",
        "created_count",
        "updated_count",
        "skipped_count",
        "error_count",
    )
    unexpected_failure = UNEXPECTED_FAILURE
    run: ImportJob

    def __init__(self, import_job: ImportJob):
        super().__init__(import_job)
        self.actor = import_job.created_by
        self.batch_size = max(settings.IMPORT_BATCH_SIZE, 1)
        self.stored_errors = import_job.errors.count()
        # Every reference met so far in the file, as a 16-byte digest: a million references
        # of any length then take about 70 MB, and the worker stays under its memory budget.
        self.seen_references: set[bytes] = set()
        self.stream: Any = None
        self.validator: RowValidator | None = None

    @classmethod
    def lease_seconds(cls) -> int:
        return settings.IMPORT_LEASE_SECONDS

    @classmethod
    def max_attempts(cls) -> int:
        return settings.IMPORT_MAX_ATTEMPTS

    @classmethod
    def reason_to_wait(cls, run: ImportJob) -> str | None:
        """One user's imports run IMPORT_MAX_RUNNING_PER_USER at a time, 0 for no limit
        (docs/csv-import.md, "Limits")."""
        limit = settings.IMPORT_MAX_RUNNING_PER_USER
        if limit <= 0 or run.created_by_id is None:
            return None
        # Two workers starting two imports of one user would each count the other's as not
        # yet running: the user's row makes them take turns (SQLite serialises writers anyway).
        lock_user(run.created_by_id)
        running = (
            ImportJob.objects.filter(
                created_by_id=run.created_by_id,
                status=ImportStatus.PROCESSING,
                lease_expires_at__gt=timezone.now(),
            )
            .exclude(pk=run.pk)
            .count()
        )
        if running < limit:
            return None
        if running == 1:
            return "1 of your imports is running; this one starts when it ends."
        return f"{running} of your imports are running; this one starts when one of them ends."

    # The run ------------------------------------------------------------------------
    def work(self) -> None:
        import_job = self.run
        if import_job.on_error == OnError.ABORT and import_job.checkpoint == 0:
            try:
                self.validate_everything()
            except UnreadableFile as exc:
                raise RunFailed(f"{exc} Nothing was imported (all-or-nothing).") from None
        try:
            header, records, self.stream = open_records(import_job)
            self.validator = RowValidator(header)
            self.skip_done(records)
            for batch in self.batches(records):
                self.write_batch(batch)
                merge_index()  # between batches, so that it never lengthens one
        except UnreadableFile as exc:
            kept = self.progress["created_count"] + self.progress["updated_count"]
            tail = " Rows imported before it were kept." if kept else ""
            raise RunFailed(f"{exc}{tail}") from None

    def complete(self, **fields: Any) -> None:
        super().complete(total_rows=self.progress["processed_rows"], **fields)

    def batches(self, records: Iterator[Record]) -> Iterator[list[Record]]:
        batch: list[Record] = []
        try:
            for record in records:
                batch.append(record)
                if len(batch) >= self.batch_size:
                    yield batch
                    batch = []
        except UnreadableFile:
            if batch:  # the rows read before the file gave out still count, then it fails
                yield batch
            raise
        if batch:
            yield batch

    def skip_done(self, records: Iterator[Record]) -> None:
        """On resume, read past the rows a previous worker committed.

        Their references are remembered so a later repeat is still reported as a duplicate.
        """
        for _ in range(self.progress["checkpoint"]):
            record = next(records, None)
            if record is None:
                return
            if record.cells is not None:
                reference = self.validator.reference(record.cells)
                if reference is not None:
                    self.seen_references.add(reference_key(reference))

    def validate_everything(self) -> None:
        """on_error=abort: a read-only pass over the whole file before anything is written.

        Returns when every row is valid; otherwise stores the errors and raises RunFailed.
        """
        header, records, self.stream = open_records(self.run)
        self.validator = RowValidator(header)
        rows = error_rows = 0
        errors: list[RowError] = []
        for batch in self.batches(records):
            reset_queries()
            self.fence()  # keeps the lease alive and notices a cancel request
            plan = self.plan(batch, lock=False)
            rows += plan.rows
            error_rows += plan.error_rows
            room = settings.IMPORT_MAX_STORED_ERRORS - len(errors)
            errors += plan.errors[: max(room, 0)]
        self.close()
        self.seen_references.clear()
        if not error_rows:
            ImportJob.objects.filter(pk=self.run.pk).update(total_rows=rows)
            return
        with self.step(total_rows=rows):
            self.store_errors(errors)
            self.progress.update(processed_rows=rows, error_count=error_rows)
            announce_rows(failed=error_rows)
        raise RunFailed(
            f"Nothing was imported: {error_rows} of {rows} rows are invalid and the import "
            "was set to all-or-nothing. Fix the rows listed below and upload the file again."
        )

    # One batch ------------------------------------------------------------------------
    def write_batch(self, batch: list[Record]) -> None:
        # With DEBUG on, Django keeps the last 9,000 queries; ours are large multi-row
        # INSERTs, so a long import would hold hundreds of MB of SQL text.
        reset_queries()
        # The batch is first checked and planned before its transaction, which then only
        # writes: a short write keeps the web app's writers from waiting (on SQLite they wait
        # for the whole transaction). What moved meanwhile fails the write, which the writer
        # detects (a job's version, a reference taken), and the batch is planned again, this
        # time inside the transaction with its jobs locked.
        for locked in (False, True):
            stored_errors = self.stored_errors
            plan = None
            try:
                if locked:
                    with self.step():
                        plan = self.plan(batch, lock=True)
                        self.write(plan)
                else:
                    plan = self.plan(batch, lock=False)
                    with self.step():
                        self.write(plan)
            except Exception as exc:
                # Nothing of the batch was committed: forget what it remembered (the step
                # forgets what it counted).
                self.stored_errors = stored_errors
                if plan is not None:
                    self.seen_references.difference_update(plan.new_keys)
                if not locked and isinstance(exc, IntegrityError):
                    continue
                raise
            return

    def plan(self, batch: list[Record], *, lock: bool) -> BatchPlan:
        return plan_batch(
            batch,
            validator=self.validator,
            on_existing=self.run.on_existing,
            seen_references=self.seen_references,
            lock=lock,
        )

    def write(self, plan: BatchPlan) -> None:
        now = timezone.now()
        created = insert_jobs(plan.creates, actor=self.actor, at=now, source_import=self.run)
        updated = update_jobs(plan.updates, actor=self.actor, at=now, source_import=self.run)
        self.store_errors(plan.errors)
        progress = self.progress
        progress["checkpoint"] += plan.records
        progress["processed_rows"] += plan.rows
        progress["created_count"] += created
        progress["updated_count"] += updated
        progress["skipped_count"] += plan.skipped + len(plan.updates) - updated
        progress["error_count"] += plan.error_rows
        announce_rows(
            created=created,
            updated=updated,
            unchanged=len(plan.updates) - updated,
            skipped=plan.skipped,
            failed=plan.error_rows,
        )

    def store_errors(self, errors: list[RowError]) -> None:
        """Keep the errors as records, up to IMPORT_MAX_STORED_ERRORS for the import."""
        room = settings.IMPORT_MAX_STORED_ERRORS - self.stored_errors
        if room <= 0 or not errors:
            return
        kept = errors[:room]
        ImportErrorRecord.objects.bulk_create(
            ImportErrorRecord(
                import_job=self.run,
                row=error.row,
                field=error.field,
                error_type=error.error_type,
                message=error.message[:ERROR_MESSAGE_MAX],
                raw_data=error.raw,
            )
            for error in kept
        )
        self.stored_errors += len(kept)

    # Endings --------------------------------------------------------------------------
    def summary(self) -> str:
        p = self.progress
        return (
            f"{p['processed_rows']} rows: {p['created_count']} created, "
            f"{p['updated_count']} updated, {p['skipped_count']} skipped, "
            f"{p['error_count']} with errors."
        )

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def announce_rows(**outcomes: int) -> None:
    """Send `import_rows_processed` with the rows of a batch by outcome once it commits."""
    counted = Counter({outcome: rows for outcome, rows in outcomes.items() if rows})
    if counted:
        send_when_committed(import_rows_processed, outcomes=counted)


# --- Imports waiting for their turn -------------------------------------------------------


def lock_user(user_id: int) -> None:
    """Lock the user's row until the transaction ends (not its key: jobs may still name it)."""
    get_user_model().objects.select_for_update(no_key=True).filter(pk=user_id).exists()


def make_way_for_waiting(
    *, import_job: ImportJob, old_status: str, new_status: str, **kwargs: Any
) -> None:
    """`import_status_changed` receiver: an import that stops running makes way for the next
    of its user's waiting ones, once the ending is committed. Robust: an error there is
    logged and does not undo the ending; the stalled-import sweep enqueues the waiting
    import within a minute or two."""
    if (
        old_status == ImportStatus.PROCESSING
        and new_status in FINISHED_STATUSES
        and import_job.created_by_id is not None
    ):
        user_id = import_job.created_by_id
        transaction.on_commit(partial(start_next_waiting, user_id), robust=True)


def start_next_waiting(user_id: int) -> None:
    """One of the user's imports ended: enqueue the oldest of theirs waiting for its turn.

    The rest wait for the next import to end, or for the stalled-import sweep."""
    with transaction.atomic():
        lock_user(user_id)  # a claim deciding to make one wait has committed by now
        waiting = (
            ImportJob.objects.filter(created_by_id=user_id, status=ImportStatus.PENDING)
            .exclude(waiting_reason="")
            .order_by("created_at")
            .first()
        )
    if waiting is not None:
        enqueue_or_log(waiting)


# --- Imports whose worker died ------------------------------------------------------------


def resume_stalled_imports() -> list[str]:
    """Re-enqueue imports left without a live task; return their ids.

    Processing imports whose worker died (lease expired): the ORM broker re-delivers a killed
    worker's task by itself (after Q_RETRY), the Redis broker never does. And pending imports
    without a task id: the broker was down at upload, or a worker told them to wait for their
    turn. A schedule runs this every minute; a spare delivery is harmless, since the claim lets
    only one worker run an import.
    """
    resumed = []
    for import_job in ImportJob.objects.stalled():
        enqueue_import(import_job)
        resumed.append(str(import_job.pk))
        logger.info(
            "stalled import re-enqueued: import_id=%s status=%s",
            import_job.pk,
            import_job.status,
            extra={"import_id": str(import_job.pk)},
        )
    return resumed


def ensure_resume_schedule(schedule_model: type, *, using: str = "default") -> None:
    """Keep exactly one `imports-resume-stalled` schedule (every minute) after every migrate.

    Crash recovery on the Redis broker depends on it, so it is re-created if deleted.
    `schedule_model` is django_q's Schedule (the migration state's during post_migrate).
    """
    wanted = {
        "func": "imports.tasks.resume_stalled_imports_task",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
        "repeats": -1,
    }
    with transaction.atomic(using=using):
        schedule = locked_single_schedule(schedule_model, RESUME_SCHEDULE_NAME, using=using)
        if schedule is None:
            schedule_model.objects.using(using).create(
                name=RESUME_SCHEDULE_NAME, next_run=timezone.now(), **wanted
            )
        elif any(getattr(schedule, field) != value for field, value in wanted.items()):
            for field, value in wanted.items():
                setattr(schedule, field, value)
            schedule.save(using=using)
