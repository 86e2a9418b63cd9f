"""manage.py cleanup_imports [--days N] [--include-failed] [--dry-run]."""

import io
import os
import subprocess
import sys
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.management import CommandError, call_command
from django.utils import timezone

from imports import intake
from imports.models import ErrorType, ImportErrorRecord, ImportJob, ImportStatus


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_RETENTION_DAYS = 90
    settings.IMPORT_RETENTION_KEEP_FAILED = True


def make_import(days_ago: int, status: str = ImportStatus.COMPLETED, errors: int = 0) -> ImportJob:
    job = ImportJob.objects.create(
        original_filename="jobs.csv",
        file_hash="0" * 64,
        status=status,
        completed_at=timezone.now() - timedelta(days=days_ago),
    )
    ImportErrorRecord.objects.bulk_create(
        ImportErrorRecord(import_job=job, row=n + 2, error_type=ErrorType.PARSE, message="Bad")
        for n in range(errors)
    )
    return job


def run(*args: str) -> str:
    out = StringIO()
    call_command("cleanup_imports", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_prints_counts_and_the_oldest_and_newest_affected() -> None:
    oldest = make_import(300, errors=2)
    newest = make_import(120, errors=1)
    make_import(10)

    output = run()

    assert "Imports:        2" in output
    assert "Error records:  3" in output
    assert f"Oldest completed: {oldest.completed_at:%Y-%m-%d %H:%M} UTC" in output
    assert f"Newest completed: {newest.completed_at:%Y-%m-%d %H:%M} UTC" in output
    assert ImportJob.objects.count() == 1


@pytest.mark.django_db
def test_dry_run_deletes_nothing_and_prints_the_same_counts() -> None:
    make_import(300, errors=2)
    make_import(120, errors=1)

    preview = run("--dry-run")
    assert ImportJob.objects.count() == 2
    assert ImportErrorRecord.objects.count() == 3
    done = run()

    assert preview.startswith("Dry run: nothing deleted.")
    assert preview.splitlines()[1:] == done.splitlines()[1:]
    assert ImportJob.objects.count() == 0


@pytest.mark.django_db
def test_days_and_include_failed_options() -> None:
    make_import(40)
    failed = make_import(40, status=ImportStatus.FAILED)

    assert "Imports:        0" in run()
    assert "Imports:        1" in run("--days", "30")
    assert list(ImportJob.objects.values_list("pk", flat=True)) == [failed.pk]
    assert "failed imports kept" in run("--days", "30")
    output = run("--days", "30", "--include-failed")
    assert "Imports:        1" in output and "failed imports included" in output
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_nothing_to_delete_says_so() -> None:
    assert "Nothing to delete." in run()
    assert "Nothing would be deleted." in run("--dry-run")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "message"), [("-1", "0 or more"), ("ten", "whole number"), ("1.5", "whole number")]
)
def test_bad_days_is_a_clear_error_and_deletes_nothing(value: str, message: str) -> None:
    make_import(300)
    with pytest.raises(CommandError, match=message):
        run("--days", value)
    assert ImportJob.objects.count() == 1


def test_bad_days_from_the_shell_has_no_traceback() -> None:
    completed = subprocess.run(
        [sys.executable, "manage.py", "cleanup_imports", "--days", "-5"],
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 1
    assert "--days must be 0 or more, not -5." in completed.stderr
    assert "Traceback" not in completed.stderr + completed.stdout


@pytest.mark.django_db
def test_counts_the_unused_held_uploads_it_removes() -> None:
    user = User.objects.create_user("uploader")
    intake.hold_upload(File(io.BytesIO(b"name\nA\n"), name="jobs.csv"), user=user)
    (held,) = (Path(django_settings.MEDIA_ROOT) / intake.HELD_UPLOADS_FOLDER).iterdir()
    two_hours_ago = time.time() - 2 * 3600
    os.utime(held, (two_hours_ago, two_hours_ago))

    assert "Held uploads:   1" in run()
    assert not held.exists()
