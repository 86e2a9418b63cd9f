"""Fixtures for the import engine tests: CSV files written by the test, run in-process."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from imports import intake
from imports.importer import run_import
from imports.models import ImportJob
from jobs.models import Printer

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
SAMPLE_PRINTERS = ("Prusa MK4 #1", "Prusa MK4 #2", "Bambu X1C", "Form 3")


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def uploader(db: None) -> User:
    return User.objects.create_user("uploader", password="pw-uploader")


@pytest.fixture
def sample_printers(db: None) -> dict[str, Printer]:
    return {name: Printer.objects.create(name=name) for name in SAMPLE_PRINTERS}


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write `content` (str, encoded with `encoding`, or bytes) to a file and return its path."""
    counter = iter(range(10_000))

    def write(content: str | bytes, *, encoding: str = "utf-8", name: str = "") -> Path:
        path = tmp_path / (name or f"upload-{next(counter)}.csv")
        data = content if isinstance(content, bytes) else content.encode(encoding)
        path.write_bytes(data)
        return path

    return write


@pytest.fixture
def run_csv(uploader: User, write_csv: Callable[..., Path]) -> Callable[..., ImportJob]:
    """Upload a CSV through intake and run the import in-process; return the finished import."""

    def run(
        content: str | bytes | Path,
        *,
        on_error: str = "skip",
        on_existing: str = "update",
        encoding: str = "utf-8",
    ) -> ImportJob:
        path = content if isinstance(content, Path) else write_csv(content, encoding=encoding)
        with path.open("rb") as file:
            info = intake.inspect_upload(file)
            import_job = intake.create_import(
                file,
                info,
                user=uploader,
                on_error=on_error,
                on_existing=on_existing,
                enqueue=False,
            )
        run_import(import_job.pk)
        import_job.refresh_from_db()
        return import_job

    return run
