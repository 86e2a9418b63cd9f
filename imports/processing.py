"""Running an import on the cluster (SPEC section 5).

`run_import(import_id)` is the whole task: claim the import (one worker at a time, attempts
counted), stream the stored file through the csv module, validate each row with the job
rules of `jobs.validation`, and write batches of IMPORT_BATCH_SIZE rows, each in one
transaction with its error records, the counters and the checkpoint. A re-delivered task
resumes after the checkpoint; a cancel request is honoured between batches.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, reset_queries, transaction
from django.db.models import F, Q
from django.utils import timezone

from imports.intake import Header, enqueue_import
from imports.models import (
    ErrorType,
    ImportErrorRecord,
    ImportEvent,
    ImportJob,
    ImportStatus,
    OnError,
    OnExisting,
)
from imports.reading import Record, UnreadableFile, open_records
from imports.schedules import locked_single_schedule
from jobs import validation
from jobs.models import EDITABLE_FIELDS, Job, JobEvent, Printer, creation_diff
from jobs.status import JobStatus

logger = logging.getLogger("imports")

TEXT_COLUMNS = (
    ("notes", "Notes", validation.NOTES_MAX),
    ("file_name", "File name", validation.FILE_NAME_MAX),
)
UNEXPECTED_FAILURE = (
    "The import stopped because of an unexpected error. Rows imported before it were kept; "
    "the server log has the details."
)


class ImportFatal(Exception):
    """The import cannot go on; str(exc) is the failure message users see."""


class LeaseLost(Exception):
    """Another worker took the import over (this one was presumed dead); stop quietly."""


class StopRequested(Exception):
    """Someone asked to cancel the import; stop at this batch boundary."""


# --- Validating one row ----------------------------------------------------------------


@dataclass(slots=True)
class RowError:
    row: int
    field: str | None
    error_type: str
    message: str
    raw: str


@dataclass
class BatchPlan:
    """What one batch of records turns into."""

    creates: list[tuple[Record, dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[Job, dict[str, Any]]] = field(default_factory=list)
    skipped: int = 0
    error_rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    records: int = 0  # records consumed, including unparseable ones
    rows: int = 0  # data rows counted as processed
    new_keys: list[bytes] = field(default_factory=list)  # references first met in the batch


class RowValidator:
    """Applies SPEC section 5 to one record, with the field rules of jobs.validation."""

    def __init__(self, header: Header):
        self.positions = header.positions
        self.printers = {printer.name: printer for printer in Printer.objects.all()}
        self.printers_folded = {name.casefold(): p for name, p in self.printers.items()}

    def values(self, cells: list[str]) -> dict[str, str | None]:
        return {column: cells[index].strip() or None for column, index in self.positions.items()}

    def reference(self, cells: list[str]) -> str | None:
        index = self.positions.get("reference")
        return cells[index].strip() or None if index is not None else None

    def clean(
        self, values: dict[str, str | None], existing: Job | None
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The clean editable values of the row (for an update: only its columns) and errors."""
        clean: dict[str, Any] = {}
        errors: list[tuple[str, str]] = []

        def check(name: str, function: Any, *args: Any) -> Any:
            try:
                return function(*args)
            except ValidationError as exc:
                errors.append((name, exc.messages[0]))
                return None

        present = self.positions
        clean["name"] = check("name", validation.clean_name, values.get("name"))
        status = values.get("status")
        if status is not None:
            before = len(errors)
            status = check("status", validation.clean_status_name, status)
            if existing is not None and status is not None:
                check("status", validation.check_status, existing.status, status)
            if len(errors) == before:
                clean["status"] = status
        elif existing is None:
            clean["status"] = JobStatus.PENDING
        if existing is None or "priority" in present:
            clean["priority"] = check("priority", validation.clean_priority, values.get("priority"))
        is_business = existing.is_business if existing is not None else False
        if "is_business" in present:
            before = len(errors)
            parsed = check("is_business", validation.clean_yes_no, values["is_business"])
            if len(errors) == before:
                is_business = clean["is_business"] = parsed
        elif existing is None:
            clean["is_business"] = False
        if existing is None or "customer_name" in present or "is_business" in present:
            customer = (
                existing.customer_name
                if existing is not None and "customer_name" not in present
                else values.get("customer_name")
            )
            clean["customer_name"] = check(
                "customer_name", validation.clean_customer, is_business, customer
            )
        for column, label, max_length in TEXT_COLUMNS:
            if existing is None or column in present:
                clean[column] = check(column, _clean_text, values.get(column), label, max_length)
        if existing is None or "printer" in present:
            clean["printer"] = self._printer(values.get("printer"), existing, errors)
        return clean, errors

    def _printer(
        self, name: str | None, existing: Job | None, errors: list[tuple[str, str]]
    ) -> Printer | None:
        if name is None:
            return None
        printer = self.printers.get(name) or self.printers_folded.get(name.casefold())
        try:
            printer = validation.check_printer_found(printer, name)
            validation.check_printer_assignable(
                printer, existing.printer_id if existing is not None else None
            )
        except ValidationError as exc:
            errors.append(("printer", exc.messages[0]))
            return None
        return printer


def reference_key(reference: str) -> bytes:
    return hashlib.blake2b(reference.encode(), digest_size=16).digest()


def _clean_text(value: str | None, label: str, max_length: int) -> str:
    return validation.clean_text(value, label=label, max_length=max_length)


# --- Running an import -----------------------------------------------------------------


def run_import(import_id: Any) -> None:
    """The import task: claim the import, run it to the end, or leave it to its owner.

    Runs the same in a cluster worker and in-process (`import_jobs --sync`).
    """
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]
    import_job = claim(import_id, owner)
    if import_job is None:
        return
    importer = Importer(import_job)
    try:
        importer.run()
    except LeaseLost:
        logger.warning(
            "import taken over by another worker", extra={"import_id": str(import_job.pk)}
        )
    except (ImportFatal, UnreadableFile) as exc:
        importer.fail(str(exc))
    except Exception:
        logger.exception("import crashed", extra={"import_id": str(import_job.pk)})
        importer.fail(UNEXPECTED_FAILURE)
    finally:
        importer.close()


def claim(import_id: Any, owner: str) -> ImportJob | None:
    """Take the import for this worker, or return None when it must not run here.

    Atomic (a locked read and conditional writes in one transaction), so two workers never
    hold one import: a live lease means its worker is still going. Every pickup counts an
    attempt; past IMPORT_MAX_ATTEMPTS the import fails instead of running again.
    """
    with transaction.atomic():
        import_job = ImportJob.objects.select_for_update().filter(pk=import_id).first()
        if import_job is None:
            logger.warning("import not found", extra={"import_id": str(import_id)})
            return None
        if import_job.is_finished:
            return None
        if import_job.status == ImportStatus.PROCESSING and import_job.lease_is_live:
            logger.info(
                "import already being processed",
                extra={"import_id": str(import_job.pk), "owner": import_job.lease_owner},
            )
            return None
        if import_job.cancel_requested_at is not None:
            import_job.transition(
                ImportStatus.CANCELLED,
                actor=import_job.cancelled_by,
                message=f"Cancelled after {import_job.processed_rows} rows.",
                expected_version=import_job.version,
                cancelled_at=timezone.now(),
                lease_owner="",
                lease_expires_at=None,
            )
            return None
        if import_job.attempts >= settings.IMPORT_MAX_ATTEMPTS:
            import_job.transition(
                ImportStatus.FAILED,
                message=f"Gave up after {import_job.attempts} attempts.",
                expected_version=import_job.version,
                failure_message=(
                    f"The import was stopped after {import_job.attempts} attempts: the worker "
                    "running it stopped unexpectedly each time (for example it ran out of "
                    f"memory or was restarted). {import_job.processed_rows} rows were "
                    "processed before that and were kept."
                ),
                lease_owner="",
                lease_expires_at=None,
            )
            return None
        attempt = import_job.attempts + 1
        fields = {
            "attempts": attempt,
            "lease_owner": owner,
            "lease_expires_at": import_job.lease_until(),
            "started_at": import_job.started_at or timezone.now(),
        }
        if import_job.status == ImportStatus.PENDING:
            import_job.transition(
                ImportStatus.PROCESSING,
                message=f"Started (attempt {attempt}).",
                expected_version=import_job.version,
                **fields,
            )
        else:
            # Resuming after a dead worker is not a status change, but worth an event.
            ImportJob.objects.filter(pk=import_job.pk).update(
                version=F("version") + 1, updated_at=timezone.now(), **fields
            )
            ImportEvent.objects.create(
                import_job=import_job,
                old_status=ImportStatus.PROCESSING,
                new_status=ImportStatus.PROCESSING,
                message=(
                    f"Resumed after row {import_job.checkpoint + 1} (attempt {attempt}); "
                    "the previous worker stopped."
                ),
            )
            logger.info(
                "import resumed",
                extra={
                    "import_id": str(import_job.pk),
                    "checkpoint": import_job.checkpoint,
                    "attempts": attempt,
                },
            )
        import_job.refresh_from_db()
    return import_job


def resume_stalled_imports() -> list[str]:
    """Re-enqueue imports left without a live task; return their ids.

    Processing imports whose worker died (lease expired): the ORM broker re-delivers a killed
    worker's task by itself (after Q_RETRY), the Redis broker never does. And pending imports
    that never got a task id (the broker was down at upload). A schedule runs this every
    minute; a spare delivery is harmless, since the claim lets only one worker run an import.
    """
    now = timezone.now()
    stalled = ImportJob.objects.filter(
        Q(status=ImportStatus.PROCESSING, lease_expires_at__lt=now)
        | Q(status=ImportStatus.PENDING, task_id="", created_at__lt=now - timedelta(minutes=1))
    )
    resumed = []
    for import_job in stalled:
        enqueue_import(import_job)
        resumed.append(str(import_job.pk))
        logger.info(
            "stalled import re-enqueued: import_id=%s status=%s",
            import_job.pk,
            import_job.status,
            extra={"import_id": str(import_job.pk)},
        )
    return resumed


RESUME_SCHEDULE_NAME = "imports-resume-stalled"


def ensure_resume_schedule(schedule_model: type, *, using: str = "default") -> None:
    """Keep exactly one `imports-resume-stalled` schedule (every minute) after every migrate.

    Crash recovery on the Redis broker depends on it, so it is re-created if deleted.
    `schedule_model` is django_q's Schedule (the migration state's during post_migrate).
    """
    wanted = {
        "func": "imports.tasks.resume_stalled_imports_task",
        "schedule_type": "I",  # every `minutes`
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


class Importer:
    """One claimed import being run by this worker."""

    def __init__(self, import_job: ImportJob):
        self.import_job = import_job
        self.version = import_job.version
        self.actor = import_job.created_by
        self.batch_size = max(settings.IMPORT_BATCH_SIZE, 1)
        self.stored_errors = import_job.errors.count()
        # Every reference met so far in the file, as a 16-byte digest: a million references
        # of any length then take about 70 MB, and the worker stays under its memory budget.
        self.seen_references: set[bytes] = set()
        self.stream: Any = None
        self.counts = {
            "checkpoint": import_job.checkpoint,
            "processed_rows": import_job.processed_rows,
            "created_count": import_job.created_count,
            "updated_count": import_job.updated_count,
            "skipped_count": import_job.skipped_count,
            "error_count": import_job.error_count,
        }

    # The run ------------------------------------------------------------------------
    def run(self) -> None:
        job = self.import_job
        try:
            if job.on_error == OnError.ABORT and job.checkpoint == 0:
                if not self.validate_everything():
                    return
            header, records, self.stream = open_records(job)
            self.validator = RowValidator(header)
            self.skip_done(records)
            for batch in self.batches(records):
                self.write_batch(batch)
        except StopRequested:
            self.finish_cancelled()
            return
        self.close()
        completed = job.transition(
            ImportStatus.COMPLETED,
            message=self.summary(),
            from_statuses=[ImportStatus.PROCESSING],
            expected_version=self.version,
            total_rows=self.counts["processed_rows"],
            lease_owner="",
            lease_expires_at=None,
        )
        if not completed:
            raise LeaseLost

    def batches(self, records: Iterator[Record]) -> Iterator[list[Record]]:
        batch: list[Record] = []
        for record in records:
            batch.append(record)
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def skip_done(self, records: Iterator[Record]) -> None:
        """On resume, read past the rows a previous worker committed.

        Their references are remembered so a later repeat is still reported as a duplicate.
        """
        for _ in range(self.counts["checkpoint"]):
            record = next(records, None)
            if record is None:
                return
            if record.cells is not None:
                reference = self.validator.reference(record.cells)
                if reference is not None:
                    self.seen_references.add(reference_key(reference))

    def validate_everything(self) -> bool:
        """on_error=abort: a read-only pass over the whole file before anything is written.

        Returns True when every row is valid; otherwise records the errors, fails the
        import and returns False.
        """
        header, records, self.stream = open_records(self.import_job)
        self.validator = RowValidator(header)
        rows = error_rows = 0
        errors: list[RowError] = []
        for batch in self.batches(records):
            reset_queries()
            self._fence()  # keeps the lease alive and notices a cancel request
            plan = self.plan(batch, lock=False)
            rows += plan.rows
            error_rows += plan.error_rows
            room = settings.IMPORT_MAX_STORED_ERRORS - len(errors)
            errors += plan.errors[: max(room, 0)]
        self.close()
        self.seen_references.clear()
        if not error_rows:
            ImportJob.objects.filter(pk=self.import_job.pk).update(total_rows=rows)
            return True
        with transaction.atomic():
            self._fence()
            self._store_errors(errors)
            self.counts.update(processed_rows=rows, error_count=error_rows)
            self._save_counts(total_rows=rows)
        self.version += 1
        self.fail(
            f"Nothing was imported: {error_rows} of {rows} rows are invalid and the import "
            "was set to all-or-nothing. Fix the rows listed below and upload the file again."
        )
        return False

    # One batch ------------------------------------------------------------------------
    def write_batch(self, batch: list[Record]) -> None:
        # With DEBUG on, Django keeps the last 9,000 queries; ours are large multi-row
        # INSERTs, so a long import would hold hundreds of MB of SQL text.
        reset_queries()
        for attempt in (1, 2):
            counts, stored_errors = dict(self.counts), self.stored_errors
            plan = None
            try:
                with transaction.atomic():
                    self._fence()
                    plan = self.plan(batch, lock=True)
                    self._write(plan)
            except Exception as exc:
                # Nothing of the batch was committed: forget what it counted and remembered.
                self.counts, self.stored_errors = counts, stored_errors
                if plan is not None:
                    self.seen_references.difference_update(plan.new_keys)
                if attempt == 1 and isinstance(exc, IntegrityError):
                    # Someone else created a job with one of our references between our
                    # lookup and our insert: plan the batch again with fresh data.
                    continue
                raise
            self.version += 1
            return

    def _fence(self) -> None:
        """Renew the lease, iff this worker still holds the import and no cancel is pending."""
        renewed = ImportJob.objects.filter(
            pk=self.import_job.pk,
            version=self.version,
            status=ImportStatus.PROCESSING,
            cancel_requested_at__isnull=True,
        ).update(lease_expires_at=self.import_job.lease_until())
        if not renewed:
            current = ImportJob.objects.filter(pk=self.import_job.pk).values(
                "version", "status", "cancel_requested_at"
            )[0]
            if (
                current["version"] == self.version
                and current["status"] == ImportStatus.PROCESSING
                and current["cancel_requested_at"] is not None
            ):
                raise StopRequested
            raise LeaseLost

    def plan(self, batch: list[Record], *, lock: bool) -> BatchPlan:
        """Validate a batch and decide each row's fate; one query for existing references."""
        validator = self.validator
        job = self.import_job
        plan = BatchPlan(records=len(batch))
        candidates: list[tuple[Record, dict[str, str | None], str | None, bytes]] = []
        for record in batch:
            if record.cells is None:
                plan.rows += 1
                plan.error_rows += 1
                plan.errors.append(
                    RowError(record.row, None, ErrorType.PARSE, record.parse_error, record.raw)
                )
                continue
            values = validator.values(record.cells)
            reference = values.get("reference")
            key = reference_key(reference) if reference is not None else b""
            candidates.append((record, values, reference, key))
        seen = self.seen_references
        wanted = {ref for _, _, ref, key in candidates if ref and key not in seen}
        existing: dict[str, Job] = {}
        if wanted:
            query = Job.objects.filter(reference__in=wanted)
            if lock:
                query = query.select_for_update()
            existing = {found.reference: found for found in query}
        for record, values, reference, key in candidates:
            plan.rows += 1
            errors: list[tuple[str, str, str]] = []
            current = None
            if reference is not None:
                if key in seen:
                    errors.append(
                        (
                            "reference",
                            ErrorType.DUPLICATE,
                            f"The reference “{reference}” appears earlier in this file.",
                        )
                    )
                else:
                    seen.add(key)
                    plan.new_keys.append(key)
                    try:
                        validation.clean_reference(reference)
                    except ValidationError as exc:
                        errors.append(("reference", ErrorType.VALIDATION, exc.messages[0]))
                    current = existing.get(reference)
            if current is not None and not errors:
                if job.on_existing == OnExisting.SKIP:
                    plan.skipped += 1
                    continue
                if job.on_existing == OnExisting.ERROR:
                    errors.append(
                        (
                            "reference",
                            ErrorType.DUPLICATE,
                            f"A job with the reference “{reference}” already exists "
                            f"(job {current.pk}).",
                        )
                    )
            clean, field_errors = validator.clean(values, current if not errors else None)
            errors += [(name, ErrorType.VALIDATION, message) for name, message in field_errors]
            if errors:
                plan.error_rows += 1
                raw = record.raw
                plan.errors += [
                    RowError(record.row, name, kind, message, raw) for name, kind, message in errors
                ]
            elif current is None:
                clean["reference"] = reference
                plan.creates.append((record, clean))
            else:
                plan.updates.append((current, clean))
        return plan

    def _write(self, plan: BatchPlan) -> None:
        now = timezone.now()
        created = _insert_jobs(plan.creates, self.import_job, self.actor, now)
        updated = self._update_jobs(plan.updates, now)
        skipped = plan.skipped + len(plan.updates) - updated
        self._store_errors(plan.errors)
        counts = self.counts
        counts["checkpoint"] += plan.records
        counts["processed_rows"] += plan.rows
        counts["created_count"] += created
        counts["updated_count"] += updated
        counts["skipped_count"] += skipped
        counts["error_count"] += plan.error_rows
        self._save_counts()

    def _update_jobs(self, updates: list[tuple[Job, dict[str, Any]]], now: datetime) -> int:
        """Apply rows to existing jobs: status through the status rules, one event each.

        A row that changes nothing writes nothing (it counts as skipped).
        """
        changed_jobs: list[Job] = []
        events: list[JobEvent] = []
        fields: set[str] = set()
        for found, clean in updates:
            touched, diff = found.assign_changes(clean, actor=self.actor, at=now)
            if not diff:
                continue
            found.updated_at = now
            found.updated_by = self.actor
            found.version += 1
            fields.update(touched)
            changed_jobs.append(found)
            events.append(
                JobEvent(
                    job=found,
                    actor=self.actor,
                    kind=JobEvent.Kind.UPDATED,
                    changes=diff,
                    created_at=now,
                )
            )
        if changed_jobs:
            Job.objects.bulk_update(
                changed_jobs, [*sorted(fields), "updated_at", "updated_by", "version"]
            )
            JobEvent.objects.bulk_create(events)
        return len(changed_jobs)

    def _store_errors(self, errors: list[RowError]) -> None:
        room = settings.IMPORT_MAX_STORED_ERRORS - self.stored_errors
        if room <= 0 or not errors:
            return
        kept = errors[:room]
        ImportErrorRecord.objects.bulk_create(
            ImportErrorRecord(
                import_job=self.import_job,
                row=error.row,
                field=error.field,
                error_type=error.error_type,
                message=error.message[:500],
                raw_data=error.raw,
            )
            for error in kept
        )
        self.stored_errors += len(kept)

    def _save_counts(self, **extra: Any) -> None:
        ImportJob.objects.filter(pk=self.import_job.pk).update(
            **self.counts, **extra, version=self.version + 1, updated_at=timezone.now()
        )

    # Endings --------------------------------------------------------------------------
    def summary(self) -> str:
        c = self.counts
        return (
            f"{c['processed_rows']} rows: {c['created_count']} created, "
            f"{c['updated_count']} updated, {c['skipped_count']} skipped, "
            f"{c['error_count']} with errors."
        )

    def finish_cancelled(self) -> None:
        self.close()
        self.import_job.refresh_from_db()
        cancelled = self.import_job.transition(
            ImportStatus.CANCELLED,
            actor=self.import_job.cancelled_by,
            message=f"Cancelled at a batch boundary. {self.summary()}",
            from_statuses=[ImportStatus.PROCESSING],
            expected_version=self.version,
            cancelled_at=timezone.now(),
            lease_owner="",
            lease_expires_at=None,
        )
        if not cancelled:
            raise LeaseLost

    def fail(self, message: str) -> None:
        self.close()
        failed = self.import_job.transition(
            ImportStatus.FAILED,
            message=message,
            from_statuses=[ImportStatus.PROCESSING],
            expected_version=self.version,
            failure_message=message,
            lease_owner="",
            lease_expires_at=None,
        )
        if not failed:
            logger.warning(
                "import could not be marked failed: another worker holds it",
                extra={"import_id": str(self.import_job.pk)},
            )

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None


# --- Writing new jobs fast ---------------------------------------------------------------

JOB_COLUMNS = (
    "name",
    "status",
    "priority",
    "is_business",
    "customer_name",
    "notes",
    "file_name",
    "printer",
    "reference",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "cancelled_at",
    "cancelled_by",
    "cancellation_reason",
    "version",
    "source_import",
)
EVENT_COLUMNS = ("job", "actor", "kind", "changes", "created_at")


def _insert_jobs(
    creates: list[tuple[Record, dict[str, Any]]], import_job: ImportJob, actor: Any, now: datetime
) -> int:
    """Insert new jobs and their `imported` events with multi-row INSERTs.

    Rows are already clean, so this skips the per-field preparation of Model.save and
    bulk_create, which is most of an import's time; the values are the same a save writes.
    """
    if not creates:
        return 0
    ops = connection.ops
    at = ops.adapt_datetimefield_value(now)
    actor_id = actor.pk if actor is not None else None
    source = ImportJob._meta.pk.get_db_prep_value(import_job.pk, connection)
    rows = []
    changes = []
    for _, clean in creates:
        status = clean["status"]
        printer = clean["printer"]
        started = at if status == JobStatus.RUNNING else None
        completed = at if status in (JobStatus.COMPLETED, JobStatus.FAILED) else None
        cancelled = status == JobStatus.CANCELLED
        rows.append(
            (
                clean["name"],
                status,
                clean["priority"],
                clean["is_business"],
                clean["customer_name"],
                clean["notes"],
                clean["file_name"],
                printer.pk if printer is not None else None,
                clean["reference"],
                actor_id,
                actor_id,
                at,
                at,
                started,
                completed,
                at if cancelled else None,
                actor_id if cancelled else None,
                "",
                1,
                source,
            )
        )
        changes.append(creation_diff({name: clean[name] for name in EDITABLE_FIELDS}))
    ids = _insert(Job, JOB_COLUMNS, rows, returning=True)
    kind = JobEvent.Kind.IMPORTED.value
    _insert(
        JobEvent,
        EVENT_COLUMNS,
        [
            (job_id, actor_id, kind, ops.adapt_json_value(change, None), at)
            for job_id, change in zip(ids, changes, strict=True)
        ],
    )
    return len(ids)


def _insert(
    model: type[models.Model], names: tuple[str, ...], rows: list[tuple], *, returning: bool = False
) -> list[Any]:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in names)
    row_sql = "(" + ", ".join(["%s"] * len(names)) + ")"
    per_statement = max(1, _max_query_params() // len(names))
    ids: list[Any] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            sql = (
                f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
                f"VALUES {', '.join([row_sql] * len(chunk))}"
            )
            params = [value for row in chunk for value in row]
            if returning:
                cursor.execute(f"{sql} RETURNING {quote(model._meta.pk.column)}", params)
                ids += [row[0] for row in cursor.fetchall()]
            else:
                cursor.execute(sql, params)
    return ids


def _max_query_params() -> int:
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    if connection.vendor == "postgresql":
        return 65535
    return connection.features.max_query_params or 999
