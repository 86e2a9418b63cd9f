"""An export of the jobs list (jobs/export.py) is a CSV the import reads back: its columns
are the import's, and re-importing it (on_existing=update) gives the same jobs."""

from collections.abc import Callable
from pathlib import Path

import pytest

from imports.intake import COLUMNS
from imports.models import ImportJob, ImportStatus
from jobs import export
from jobs.models import Job, JobEvent, Printer

pytestmark = pytest.mark.django_db
FIELDS = ("name", "status", "priority", "is_business", "customer_name", "notes", "file_name")


@pytest.fixture
def exported_jobs(sample_printers: dict[str, Printer]) -> list[Job]:
    retired = Printer.objects.create(name="Retired", is_active=False)
    values = [
        ("Bracket", "pending", 0, False, "", "", "", None),
        ("Gear, 20 teeth", "scheduled", 3, True, "Acme, Inc.", 'PLA "silk"', "gear.3mf", "Form 3"),
        ("=1+1", "running", 10, True, "@Globex", "-0.2 mm\nsecond line", "+x.stl", "Bambu X1C"),
        ("Ölwanne ✓", "completed", 5, False, "", "semi;colon | pipe", "", "Retired"),
        ("Hinge", "failed", 7, False, "", "", "", None),
        ("Lid", "cancelled", 1, False, "", "'quoted already", "", None),
    ]
    printers = {**sample_printers, "Retired": retired}
    jobs = []
    for n, (name, status, priority, business, customer, notes, file_name, printer) in enumerate(
        values
    ):
        job = Job(
            name=name,
            status=status,
            priority=priority,
            is_business=business,
            customer_name=customer,
            notes=notes,
            file_name=file_name,
            printer=printers.get(printer),
            reference=f"EXP-{n}" if n != 2 else "=REF-2",
        )
        job.insert(actor=None, origin=JobEvent.Origin.UI)
        jobs.append(job)
    return jobs


def snapshot() -> list[tuple]:
    return list(
        Job.objects.order_by("reference").values_list(
            "reference", *FIELDS, "printer__name", "version"
        )
    )


def write_export(tmp_path: Path) -> Path:
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as file:
        export.write_csv(Job.objects.order_by("pk"), file)
    return path


def test_export_columns_are_the_import_columns() -> None:
    assert export.CSV_HEADER == list(COLUMNS)


def test_reimport_of_an_unchanged_export_changes_nothing(
    exported_jobs: list[Job], run_csv: Callable[..., ImportJob], tmp_path: Path
) -> None:
    before = snapshot()
    events = JobEvent.objects.count()
    import_job = run_csv(write_export(tmp_path), on_existing="update")
    assert import_job.status == ImportStatus.COMPLETED
    assert list(import_job.errors.values_list("row", "field", "message")) == []
    assert (import_job.processed_rows, import_job.error_count) == (6, 0)
    assert (import_job.created_count, import_job.updated_count, import_job.skipped_count) == (
        0,
        0,
        6,
    )
    assert snapshot() == before
    assert JobEvent.objects.count() == events


def test_an_export_imports_back_to_the_same_jobs(
    exported_jobs: list[Job], run_csv: Callable[..., ImportJob], tmp_path: Path
) -> None:
    path = write_export(tmp_path)
    before = [row[:-1] for row in snapshot()]  # all but the version
    Job.objects.all().delete()
    import_job = run_csv(path, on_existing="update")
    assert (import_job.status, import_job.created_count) == (ImportStatus.COMPLETED, 5)
    # A new job cannot get an inactive printer (docs/csv-import.md, "Columns"); a job that
    # has one keeps it (the re-import above).
    assert list(import_job.errors.values_list("row", "field")) == [(5, "printer")]
    assert [row[:-1] for row in snapshot()] == [row for row in before if row[-1] != "Retired"]


def test_an_edited_export_updates_only_what_changed(
    exported_jobs: list[Job], run_csv: Callable[..., ImportJob], tmp_path: Path
) -> None:
    path = write_export(tmp_path)
    text = path.read_text(encoding="utf-8").replace('"Hinge","failed","7"', '"Hinge","failed","8"')
    path.write_text(text, encoding="utf-8")
    import_job = run_csv(path, on_existing="update")
    assert (import_job.updated_count, import_job.skipped_count) == (1, 5)
    hinge = Job.objects.get(name="Hinge")
    assert (hinge.priority, hinge.version) == (8, 2)
