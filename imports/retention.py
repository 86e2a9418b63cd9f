"""Retention (docs/csv-import.md, "Processing, resume and cancel"): delete old imports.

Each write is a short transaction of its own (bounded chunks of error records, of jobs
detached from their import, then of imports with their events), so a cleanup of any size
never holds the database write lock for long and the web app and the cluster keep working
while it runs. Stored files are removed after the rows are committed; a file left behind by
a crash between the two is swept as an orphan on the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import Max, Min, QuerySet
from django.utils import timezone
from django_q.models import Schedule

from imports.intake import expired_held_uploads
from imports.models import (
    TERMINAL_STATUSES,
    ImportErrorRecord,
    ImportEvent,
    ImportJob,
    ImportStatus,
)
from imports.schedules import locked_single_schedule
from imports.signals import imports_deleted
from jobs.models import Job
from jobs.signals import send_when_committed

logger = logging.getLogger(__name__)

IMPORT_CHUNK = 200  # imports (with their events) deleted per transaction
ERROR_CHUNK = 2_000  # error records deleted per transaction
JOB_CHUNK = 5_000  # jobs detached from their import per transaction
FILES_FOLDER = "imports"
# An upload writes its file a moment before its ImportJob row commits: never sweep a
# file that young, or a running upload could lose its file.
ORPHAN_GRACE = timedelta(days=1)


@dataclass
class CleanupResult:
    days: int
    include_failed: bool
    cutoff: datetime
    dry_run: bool
    actor: str
    imports: int = 0
    error_records: int = 0
    events: int = 0
    files: int = 0
    orphan_files: int = 0
    held_uploads: int = 0
    jobs_detached: int = 0
    oldest_completed_at: datetime | None = None
    newest_completed_at: datetime | None = None
    longest_write_seconds: float = 0.0
    duration_seconds: float = 0.0


def expired_imports(*, days: int, include_failed: bool, now: datetime) -> QuerySet[ImportJob]:
    """Finished imports that completed more than `days` days before `now`."""
    statuses = [s for s in TERMINAL_STATUSES if include_failed or s != ImportStatus.FAILED]
    return ImportJob.objects.filter(
        status__in=statuses, completed_at__lt=now - timedelta(days=days)
    )


def cleanup_imports(
    *,
    days: int | None = None,
    include_failed: bool | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    actor: str = "system",
) -> CleanupResult:
    """Delete (or with dry_run, count) expired imports, their records, events and files.

    Defaults come from IMPORT_RETENTION_DAYS and IMPORT_RETENTION_KEEP_FAILED. Jobs are
    never deleted: the ones an import created stay, with source_import cleared.
    """
    days = settings.IMPORT_RETENTION_DAYS if days is None else days
    if days < 0:
        raise ValueError(f"days must be 0 or more, not {days}")
    if include_failed is None:
        include_failed = not settings.IMPORT_RETENTION_KEEP_FAILED
    now = now or timezone.now()
    started = time.monotonic()
    result = CleanupResult(
        days=days,
        include_failed=include_failed,
        cutoff=now - timedelta(days=days),
        dry_run=dry_run,
        actor=actor,
    )
    expired = expired_imports(days=days, include_failed=include_failed, now=now)
    storage = ImportJob._meta.get_field("file").storage
    if dry_run:
        _count(expired, storage, result)
    else:
        _delete(expired, storage, result)
    for name in _orphan_files(storage, now):
        if not dry_run:
            storage.delete(name)
        result.orphan_files += 1
    # Uploads kept for "Import anyway" and not used within the hour.
    for name in expired_held_uploads(storage, now):
        if not dry_run:
            storage.delete(name)
        result.held_uploads += 1
    result.duration_seconds = time.monotonic() - started
    _log(result)
    return result


def _count(expired: QuerySet[ImportJob], storage: Storage, result: CleanupResult) -> None:
    bounds = expired.aggregate(oldest=Min("completed_at"), newest=Max("completed_at"))
    result.oldest_completed_at = bounds["oldest"]
    result.newest_completed_at = bounds["newest"]
    result.imports = expired.count()
    result.error_records = ImportErrorRecord.objects.filter(import_job__in=expired).count()
    result.events = ImportEvent.objects.filter(import_job__in=expired).count()
    result.jobs_detached = Job.objects.filter(source_import__in=expired).count()
    names = expired.exclude(file="").values_list("file", flat=True).iterator()
    result.files = sum(1 for name in names if storage.exists(name))


def _delete(expired: QuerySet[ImportJob], storage: Storage, result: CleanupResult) -> None:
    timer = _WriteTimer()
    while True:
        chunk = list(
            expired.order_by("completed_at", "pk").values_list("pk", "completed_at", "file")[
                :IMPORT_CHUNK
            ]
        )
        if not chunk:
            break
        ids = [pk for pk, _, _ in chunk]
        result.error_records += _delete_in_chunks(
            ImportErrorRecord.objects.filter(import_job_id__in=ids), ERROR_CHUNK, timer
        )
        result.jobs_detached += _detach_jobs(ids, timer)
        with timer.write(), transaction.atomic():
            # Re-apply the criteria: only what is still expired goes.
            _, per_model = expired.filter(pk__in=ids).delete()
            deleted = per_model.get(ImportJob._meta.label, 0)
            if deleted:
                send_when_committed(imports_deleted, count=deleted)
        result.imports += deleted
        result.events += per_model.get(ImportEvent._meta.label, 0)
        result.error_records += per_model.get(ImportErrorRecord._meta.label, 0)
        still_there = set(ImportJob.objects.filter(pk__in=ids).values_list("pk", flat=True))
        for pk, completed_at, name in chunk:
            if pk in still_there:
                continue
            if result.oldest_completed_at is None or completed_at < result.oldest_completed_at:
                result.oldest_completed_at = completed_at
            if result.newest_completed_at is None or completed_at > result.newest_completed_at:
                result.newest_completed_at = completed_at
            if name and storage.exists(name):
                storage.delete(name)
                result.files += 1
    result.longest_write_seconds = timer.longest


def _delete_in_chunks(queryset: QuerySet, size: int, timer: _WriteTimer) -> int:
    deleted = 0
    while pks := list(queryset.values_list("pk", flat=True)[:size]):
        with timer.write(), transaction.atomic():
            count, _ = queryset.model.objects.filter(pk__in=pks).delete()
        deleted += count
    return deleted


def _detach_jobs(import_ids: list, timer: _WriteTimer) -> int:
    """Clear source_import on the jobs of these imports, a bounded chunk per transaction."""
    detached = 0
    jobs = Job.objects.filter(source_import_id__in=import_ids)
    while pks := list(jobs.values_list("pk", flat=True)[:JOB_CHUNK]):
        with timer.write(), transaction.atomic():
            detached += Job.objects.filter(pk__in=pks).update(source_import=None)
    return detached


def _orphan_files(storage: Storage, now: datetime) -> Iterator[str]:
    """Files under the imports folder that no ImportJob refers to (older than the grace)."""
    candidates: list[str] = []
    for name in _walk(storage, FILES_FOLDER):
        try:
            modified = storage.get_modified_time(name)
        except FileNotFoundError:  # removed meanwhile (another cleanup run)
            continue
        if modified < now - ORPHAN_GRACE:
            candidates.append(name)
    for start in range(0, len(candidates), IMPORT_CHUNK):
        names = candidates[start : start + IMPORT_CHUNK]
        known = set(ImportJob.objects.filter(file__in=names).values_list("file", flat=True))
        yield from (name for name in names if name not in known)


def _walk(storage: Storage, folder: str) -> Iterator[str]:
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    yield from (f"{folder}/{name}" for name in files)
    for sub in folders:
        yield from _walk(storage, f"{folder}/{sub}")


class _WriteTimer:
    """Measures each write transaction; the longest one is what other writers wait for."""

    def __init__(self) -> None:
        self.longest = 0.0

    @contextmanager
    def write(self) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.longest = max(self.longest, time.monotonic() - started)


def _log(result: CleanupResult) -> None:
    fields = {
        "actor": result.actor,
        "dry_run": result.dry_run,
        "days": result.days,
        "include_failed": result.include_failed,
        "imports": result.imports,
        "error_records": result.error_records,
        "events": result.events,
        "files": result.files,
        "orphan_files": result.orphan_files,
        "held_uploads": result.held_uploads,
        "jobs_detached": result.jobs_detached,
        "oldest_completed_at": _iso(result.oldest_completed_at),
        "newest_completed_at": _iso(result.newest_completed_at),
        "longest_write_ms": round(result.longest_write_seconds * 1000, 1),
        "duration_ms": round(result.duration_seconds * 1000, 1),
    }
    logger.info(
        "import retention run: %s",
        " ".join(f"{key}={value}" for key, value in fields.items()),
        extra={"event": "import_retention", **fields},
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


SCHEDULE_NAME = "imports-retention"
SCHEDULE_FUNC = "imports.tasks.cleanup_imports_task"


def ensure_retention_schedule(schedule_model: type, *, using: str = "default") -> None:
    """Keep exactly one `imports-retention` schedule, run daily at IMPORT_RETENTION_HOUR.

    Called after every migrate (a deploy), so it must leave a correct schedule alone: its
    next run moves only when the configured hour changed, never just because of a deploy.
    `schedule_model` is django_q's Schedule (the migration state's during post_migrate).
    """
    hour = settings.IMPORT_RETENTION_HOUR
    with transaction.atomic(using=using):
        schedule = locked_single_schedule(
            schedule_model, SCHEDULE_NAME, using=using
        ) or schedule_model(name=SCHEDULE_NAME)
        wanted = {
            "func": SCHEDULE_FUNC,
            "schedule_type": Schedule.DAILY,
            "repeats": -1,
            "args": None,
            "kwargs": None,
        }
        changed = [field for field, value in wanted.items() if getattr(schedule, field) != value]
        for field in changed:
            setattr(schedule, field, wanted[field])
        next_run = schedule.next_run and timezone.localtime(schedule.next_run)
        if schedule.pk is None or not next_run or (next_run.hour, next_run.minute) != (hour, 0):
            schedule.next_run = _next_at_hour(hour)
            changed.append("next_run")
        if changed:
            schedule.save(using=using)
            logger.info(
                "import retention schedule saved: changed=%s next_run=%s",
                ",".join(changed),
                schedule.next_run.isoformat(),
                extra={"event": "import_retention_schedule", "changed": changed},
            )


def _next_at_hour(hour: int) -> datetime:
    """The next time it is hour:00 in the configured time zone."""
    now = timezone.localtime()
    candidate = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(days=1)
