"""Retention (docs/csv-import.md, "Processing, resume and cancel"): what goes, what stays."""

import hashlib
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile

from imports import retention
from imports.models import ErrorType, ImportErrorRecord, ImportEvent, ImportJob, ImportStatus
from imports.retention import cleanup_imports
from jobs.models import Job

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_RETENTION_DAYS = 90
    settings.IMPORT_RETENTION_KEEP_FAILED = True
    return settings.MEDIA_ROOT


def make_import(
    *,
    age: timedelta | None,
    status: str = ImportStatus.COMPLETED,
    errors: int = 0,
    events: int = 1,
    with_file: bool = True,
) -> ImportJob:
    """An import that completed `age` before NOW (age None: never completed)."""
    content = f"name\nBracket {age} {status}\n".encode()
    job = ImportJob(
        original_filename="jobs.csv",
        file_size=len(content),
        file_hash=hashlib.sha256(content).hexdigest(),
        status=status,
        created_at=NOW - (age or timedelta()) - timedelta(minutes=5),
        completed_at=None if age is None else NOW - age,
    )
    if with_file:
        job.file.save("jobs.csv", ContentFile(content), save=False)
    job.save()
    ImportErrorRecord.objects.bulk_create(
        ImportErrorRecord(
            import_job=job, row=row + 2, error_type=ErrorType.VALIDATION, message="Name is required"
        )
        for row in range(errors)
    )
    ImportEvent.objects.bulk_create(
        ImportEvent(import_job=job, old_status="", new_status=status) for _ in range(events)
    )
    return job


def remaining() -> set:
    return set(ImportJob.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_boundary_89_90_91_days() -> None:
    day89 = make_import(age=timedelta(days=89))
    day90 = make_import(age=timedelta(days=90))
    just_over_90 = make_import(age=timedelta(days=90, seconds=1))
    day91 = make_import(age=timedelta(days=91))

    result = cleanup_imports(now=NOW)

    # "Older than 90 days": exactly 90 days is not older yet; one second more is.
    assert remaining() == {day89.pk, day90.pk}
    assert not ImportJob.objects.filter(pk__in=[just_over_90.pk, day91.pk]).exists()
    assert result.imports == 2
    assert result.oldest_completed_at == NOW - timedelta(days=91)
    assert result.newest_completed_at == NOW - timedelta(days=90, seconds=1)


@pytest.mark.django_db
def test_days_argument_overrides_the_setting(settings: Any) -> None:
    settings.IMPORT_RETENTION_DAYS = 10
    day20 = make_import(age=timedelta(days=20))
    day5 = make_import(age=timedelta(days=5))

    assert cleanup_imports(now=NOW, days=30).imports == 0
    assert cleanup_imports(now=NOW).imports == 1
    assert remaining() == {day5.pk}
    assert cleanup_imports(now=NOW, days=0).imports == 1
    assert remaining() == set()
    assert day20.pk not in remaining()


@pytest.mark.django_db
def test_failed_imports_are_kept_while_keep_failed(settings: Any) -> None:
    failed = make_import(age=timedelta(days=200), status=ImportStatus.FAILED)
    cancelled = make_import(age=timedelta(days=200), status=ImportStatus.CANCELLED)
    completed = make_import(age=timedelta(days=200))

    result = cleanup_imports(now=NOW)

    assert remaining() == {failed.pk}
    assert result.imports == 2
    assert not ImportJob.objects.filter(pk__in=[cancelled.pk, completed.pk]).exists()


@pytest.mark.django_db
def test_failed_imports_go_when_not_kept(settings: Any) -> None:
    settings.IMPORT_RETENTION_KEEP_FAILED = False
    make_import(age=timedelta(days=200), status=ImportStatus.FAILED)

    assert cleanup_imports(now=NOW).imports == 1
    assert remaining() == set()


@pytest.mark.django_db
def test_include_failed_argument_overrides_keep_failed() -> None:
    make_import(age=timedelta(days=200), status=ImportStatus.FAILED)

    assert cleanup_imports(now=NOW, include_failed=False).imports == 0
    assert cleanup_imports(now=NOW, include_failed=True).imports == 1
    assert remaining() == set()


@pytest.mark.django_db
def test_unfinished_imports_are_never_deleted() -> None:
    # Even with a (stray) completed_at far in the past, and with retention 0 days.
    pending = make_import(age=timedelta(days=400), status=ImportStatus.PENDING)
    processing = make_import(age=timedelta(days=400), status=ImportStatus.PROCESSING)
    never_completed = make_import(age=None, status=ImportStatus.PROCESSING)

    result = cleanup_imports(now=NOW, days=0, include_failed=True)

    assert result.imports == 0
    assert remaining() == {pending.pk, processing.pk, never_completed.pk}
    assert all(Path(job.file.path).exists() for job in (pending, processing, never_completed))


@pytest.mark.django_db
def test_error_records_and_events_go_with_their_import() -> None:
    old = make_import(age=timedelta(days=100), errors=7, events=3)
    young = make_import(age=timedelta(days=1), errors=2, events=2)

    result = cleanup_imports(now=NOW)

    assert (result.imports, result.error_records, result.events) == (1, 7, 3)
    assert not ImportErrorRecord.objects.filter(import_job_id=old.pk).exists()
    assert not ImportEvent.objects.filter(import_job_id=old.pk).exists()
    assert ImportErrorRecord.objects.filter(import_job=young).count() == 2
    assert ImportEvent.objects.filter(import_job=young).count() == 2


@pytest.mark.django_db
def test_error_records_are_deleted_in_bounded_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "ERROR_CHUNK", 3)
    monkeypatch.setattr(retention, "IMPORT_CHUNK", 2)
    olds = [make_import(age=timedelta(days=100 + n), errors=4) for n in range(5)]

    result = cleanup_imports(now=NOW)

    assert result.imports == 5
    assert result.error_records == 20
    assert not ImportErrorRecord.objects.exists()
    assert not ImportJob.objects.filter(pk__in=[job.pk for job in olds]).exists()


@pytest.mark.django_db
def test_stored_files_are_removed_with_their_import(media: Path) -> None:
    old = make_import(age=timedelta(days=100))
    young = make_import(age=timedelta(days=10))
    old_path, young_path = Path(old.file.path), Path(young.file.path)
    assert old_path.is_relative_to(media / "imports") and old_path.exists()

    result = cleanup_imports(now=NOW)

    assert result.files == 1
    assert not old_path.exists()
    assert young_path.exists()


@pytest.mark.django_db
def test_an_import_whose_file_is_already_gone_is_still_deleted() -> None:
    old = make_import(age=timedelta(days=100))
    Path(old.file.path).unlink()
    no_file = make_import(age=timedelta(days=100), with_file=False)

    result = cleanup_imports(now=NOW)

    assert (result.imports, result.files) == (2, 0)
    assert not ImportJob.objects.filter(pk__in=[old.pk, no_file.pk]).exists()


def _orphan(media: Path, name: str, *, age: timedelta) -> Path:
    path = media / "imports" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("name\nOrphan\n")
    stamp = time.time() - age.total_seconds()
    os.utime(path, (stamp, stamp))
    return path


@pytest.mark.django_db
def test_orphaned_files_are_removed_but_not_young_ones_or_known_ones(media: Path) -> None:
    kept = make_import(age=None, status=ImportStatus.PROCESSING)
    os.utime(kept.file.path, (0, 0))  # an old file, but its import still exists
    orphan = _orphan(media, "2025/01/lost.csv", age=timedelta(days=30))
    uploading = _orphan(media, "2026/06/being-uploaded.csv", age=timedelta(minutes=1))
    outside = media / "elsewhere.csv"
    outside.write_text("not ours")
    os.utime(outside, (0, 0))

    result = cleanup_imports()

    assert result.orphan_files == 1
    assert not orphan.exists()
    assert uploading.exists()  # within the grace period: may belong to a running upload
    assert Path(kept.file.path).exists()
    assert outside.exists()


@pytest.mark.django_db
def test_jobs_are_never_deleted_only_detached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "JOB_CHUNK", 2)
    old = make_import(age=timedelta(days=100))
    young = make_import(age=timedelta(days=1))
    from_old = [Job.objects.create(name=f"Old {n}", source_import=old) for n in range(5)]
    from_young = Job.objects.create(name="Young", source_import=young)
    unrelated = Job.objects.create(name="Typed in")
    versions = {job.pk: job.version for job in from_old}

    result = cleanup_imports(now=NOW)

    assert result.jobs_detached == 5
    assert Job.objects.count() == 7
    for job in from_old:
        job.refresh_from_db()
        assert job.source_import_id is None
        assert job.version == versions[job.pk]
    from_young.refresh_from_db()
    assert from_young.source_import_id == young.pk
    assert Job.objects.filter(pk=unrelated.pk).exists()


@pytest.mark.django_db
def test_dry_run_deletes_nothing_and_reports_the_same_counts(media: Path) -> None:
    olds = [make_import(age=timedelta(days=100 + n), errors=n, events=2) for n in range(3)]
    Job.objects.create(name="From old", source_import=olds[0])
    make_import(age=timedelta(days=5), errors=4)
    orphan = _orphan(media, "2024/02/lost.csv", age=timedelta(days=400))
    before = (
        ImportJob.objects.count(),
        ImportErrorRecord.objects.count(),
        ImportEvent.objects.count(),
        sorted(p.name for p in media.rglob("*.csv")),
    )

    preview = cleanup_imports(now=NOW, dry_run=True)

    after = (
        ImportJob.objects.count(),
        ImportErrorRecord.objects.count(),
        ImportEvent.objects.count(),
        sorted(p.name for p in media.rglob("*.csv")),
    )
    assert after == before
    assert Job.objects.get(name="From old").source_import_id == olds[0].pk
    assert orphan.exists()

    done = cleanup_imports(now=NOW)

    counts = (
        "imports",
        "error_records",
        "events",
        "files",
        "orphan_files",
        "jobs_detached",
        "oldest_completed_at",
        "newest_completed_at",
    )
    assert {c: getattr(preview, c) for c in counts} == {c: getattr(done, c) for c in counts}
    assert (done.imports, done.error_records, done.events, done.files) == (3, 3, 6, 3)
    assert (done.orphan_files, done.jobs_detached) == (1, 1)
    assert preview.dry_run and not done.dry_run


@pytest.mark.django_db
def test_negative_days_is_refused() -> None:
    make_import(age=timedelta(days=100))
    with pytest.raises(ValueError, match="0 or more"):
        cleanup_imports(days=-1)
    assert ImportJob.objects.count() == 1


@pytest.mark.django_db
def test_one_structured_log_line_per_run(caplog: pytest.LogCaptureFixture) -> None:
    make_import(age=timedelta(days=100), errors=2)

    with caplog.at_level(logging.INFO, logger="imports"):
        cleanup_imports(now=NOW, actor="schedule")

    lines = [r for r in caplog.records if getattr(r, "event", None) == "import_retention"]
    assert len(lines) == 1
    line = lines[0]
    assert line.name.startswith("imports")
    assert (line.actor, line.imports, line.error_records, line.dry_run) == ("schedule", 1, 2, False)
    assert "actor=schedule" in line.getMessage() and "imports=1" in line.getMessage()
