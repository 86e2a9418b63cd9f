"""The import itself (docs/csv-import.md), run in-process through importer.run_import."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from imports.importer import UNEXPECTED_FAILURE, Importer, run_import
from imports.models import ImportErrorRecord, ImportJob, ImportStatus
from imports.reading import Record
from imports.tests.conftest import SAMPLES
from jobs.models import Job, JobEvent, Printer
from jobs.status import JobStatus
from jobs.tests.test_job_creation import assert_created_with_side_effects

pytestmark = pytest.mark.django_db

Run = Callable[..., ImportJob]


def errors_of(import_job: ImportJob) -> list[tuple[int, str | None, str]]:
    return list(import_job.errors.order_by("row", "id").values_list("row", "field", "error_type"))


def counts(import_job: ImportJob) -> tuple[int, int, int, int, int]:
    return (
        import_job.processed_rows,
        import_job.created_count,
        import_job.updated_count,
        import_job.skipped_count,
        import_job.error_count,
    )


# --- samples ------------------------------------------------------------------------------


def test_valid_sample_imports_every_row(
    run_csv: Run, sample_printers: dict[str, Printer], uploader: User
) -> None:
    import_job = run_csv(SAMPLES / "jobs-valid.csv")
    assert import_job.status == ImportStatus.COMPLETED
    assert counts(import_job) == (200, 200, 0, 0, 0)
    assert (import_job.total_rows, import_job.checkpoint, import_job.attempts) == (200, 200, 1)
    assert import_job.progress_percent == 100
    assert Job.objects.filter(source_import=import_job, created_by=uploader).count() == 200
    job = Job.objects.get(reference="ORD-10001")
    assert (job.name, job.status, job.priority, job.is_business) == (
        "Bracket v1",
        "scheduled",
        6,
        True,
    )
    assert (job.customer_name, job.notes, job.printer.name) == (
        "Acme 4",
        "PLA, 0.2 mm",
        "Prusa MK4 #1",
    )
    assert (job.version, job.updated_by) == (1, uploader)
    event = JobEvent.objects.get(job=job)
    assert event.kind == JobEvent.Kind.IMPORTED
    assert event.actor == uploader
    assert event.changes["name"] == [None, "Bracket v1"]
    assert event.changes["printer"] == [None, "Prusa MK4 #1"]
    assert JobEvent.objects.filter(kind="imported").count() == 200


def test_errors_sample_reports_rows_3_to_8(
    run_csv: Run, sample_printers: dict[str, Printer]
) -> None:
    import_job = run_csv(SAMPLES / "jobs-with-errors.csv")
    assert import_job.status == ImportStatus.COMPLETED
    assert counts(import_job) == (8, 2, 0, 0, 6)
    assert errors_of(import_job) == [
        (3, "name", "validation"),
        (4, "status", "validation"),
        (5, "customer_name", "validation"),
        (6, "printer", "validation"),
        (7, "priority", "validation"),
        (8, "reference", "duplicate"),
    ]
    assert set(Job.objects.values_list("reference", flat=True)) == {"ERR-1", "ERR-8"}
    error = import_job.errors.get(row=6)
    assert error.raw_data == "Unknown printer,pending,3,no,,Ender 3,ERR-5"


# --- encodings, delimiters, line endings --------------------------------------------------------


def test_utf8_bom(run_csv: Run) -> None:
    import_job = run_csv("\ufeffName,Notes\nCafé,naïve\n")
    assert import_job.encoding == "utf-8-sig"
    assert counts(import_job) == (1, 1, 0, 0, 0)
    assert Job.objects.get().notes == "naïve"


def test_cp1252(run_csv: Run) -> None:
    import_job = run_csv("name,notes\nCrème brûlée,“à la carte” – 5 €\n", encoding="cp1252")
    assert import_job.encoding == "cp1252"
    job = Job.objects.get()
    assert (job.name, job.notes) == ("Crème brûlée", "“à la carte” – 5 €")


def test_utf16_with_bom(run_csv: Run) -> None:
    import_job = run_csv("name\tpriority\nZahnräder\t4\n", encoding="utf-16")
    assert (import_job.encoding, import_job.delimiter) == ("utf-16", "\t")
    assert Job.objects.get().name == "Zahnräder"


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiters(run_csv: Run, delimiter: str) -> None:
    content = delimiter.join(["name", "notes", "priority"]) + "\n"
    content += delimiter.join(["Bracket", "PLA, 0.2 mm", "7"]) + "\n"
    import_job = run_csv(content)
    assert import_job.delimiter == delimiter
    job = Job.objects.get()
    assert (job.name, job.notes, job.priority) == ("Bracket", "PLA, 0.2 mm", 7)


def test_crlf_and_quoted_newlines_keep_spreadsheet_row_numbers(run_csv: Run) -> None:
    content = 'name,notes,priority\r\nA,"first line\r\nsecond line",1\r\nB,x,99\r\n'
    import_job = run_csv(content)
    assert Job.objects.get().notes == "first line\nsecond line"  # notes keep LF line breaks
    # The multi-line record is row 2 (as a spreadsheet shows it), so B is row 3.
    assert errors_of(import_job) == [(3, "priority", "validation")]


def test_header_case_whitespace_and_aliases(run_csv: Run, printer: Printer) -> None:
    run_csv(f" JOB_NAME ,Printer_Name , STATUS\nGear,{printer.name},RUNNING\n")
    job = Job.objects.get()
    assert (job.name, job.printer, job.status) == ("Gear", printer, "running")
    assert job.started_at is not None  # the status side effect of running


def test_cells_are_trimmed_and_empty_means_null(run_csv: Run) -> None:
    run_csv("name,status,priority,is_business,printer,reference,notes\n  Gear  , , ,  , , ,  \n")
    job = Job.objects.get()
    assert (job.name, job.status, job.priority, job.is_business) == ("Gear", "pending", 0, False)
    assert (job.printer, job.reference, job.notes) == (None, None, "")


def test_blank_lines_are_not_records(run_csv: Run) -> None:
    import_job = run_csv("name,notes\nA,x\n\n,\nB,y\n\n")
    assert counts(import_job) == (2, 2, 0, 0, 0)


def test_header_only_completes_with_nothing(run_csv: Run) -> None:
    import_job = run_csv("name,status\n")
    assert import_job.status == ImportStatus.COMPLETED
    assert (import_job.total_rows, import_job.processed_rows) == (0, 0)
    assert import_job.progress_percent == 100


def test_unknown_columns_are_ignored_and_warned(run_csv: Run) -> None:
    import_job = run_csv("name,colour\nGear,red\n")
    assert import_job.warnings == ["Ignored unknown column: “colour”."]
    assert Job.objects.get().name == "Gear"


# --- parse errors: the row fails, the import goes on ------------------------------------------


def test_ragged_rows_are_parse_errors(run_csv: Run) -> None:
    import_job = run_csv("name,priority\nA,1\nB,2,extra\nC\nD,4\n")
    assert errors_of(import_job) == [(3, None, "parse"), (4, None, "parse")]
    assert import_job.errors.get(row=3).raw_data == "B,2,extra"
    assert "3 cells" in import_job.errors.get(row=3).message
    assert list(Job.objects.order_by("name").values_list("name", flat=True)) == ["A", "D"]
    assert counts(import_job) == (4, 2, 0, 0, 2)


def test_nul_byte_is_a_parse_error(run_csv: Run) -> None:
    import_job = run_csv(b"name,notes\nA,ok\nB,bad\x00byte\nC,ok\n")
    assert errors_of(import_job) == [(3, None, "parse")]
    assert "NUL" in import_job.errors.get().message
    assert sorted(Job.objects.values_list("name", flat=True)) == ["A", "C"]


def test_over_long_field_is_a_parse_error(run_csv: Run) -> None:
    import_job = run_csv("name,notes\nA,ok\nB," + "x" * 200_000 + "\nC,ok\n")
    assert errors_of(import_job) == [(3, None, "parse")]
    error = import_job.errors.get()
    assert len(error.raw_data) == 500
    assert sorted(Job.objects.values_list("name", flat=True)) == ["A", "C"]


# --- validation: the same rules and messages as the edit form ----------------------------------


@pytest.mark.parametrize(
    ("row", "field", "message_part"),
    [
        (",pending,0,no,,,,,", "name", "Name is required."),
        ("x" * 201 + ",pending,0,no,,,,,", "name", "at most 200 characters"),
        ("A,finished,0,no,,,,,", "status", "Unknown status “finished”"),
        ("A,pending,high,no,,,,,", "priority", "whole number"),
        ("A,pending,11,no,,,,,", "priority", "from 0 to 10 (got 11)"),
        ("A,pending,-1,no,,,,,", "priority", "from 0 to 10 (got -1)"),
        ("A,pending,0,maybe,,,,,", "is_business", "“maybe” is not a yes/no value"),
        ("A,pending,0,yes,,,,,", "customer_name", "A business job needs a customer name."),
        ("A,pending,0,yes," + "c" * 201 + ",,,,", "customer_name", "at most 200"),
        ("A,pending,0,no,," + "n" * 1001 + ",,,", "notes", "at most 1000"),
        ("A,pending,0,no,,,f" + "f" * 255 + ",,", "file_name", "at most 255"),
        ("A,pending,0,no,,,,Ender 3,", "printer", "no printer named “Ender 3”"),
        ("A,pending,0,no,,,,Old one,", "printer", "inactive and cannot be assigned"),
        ("A,pending,0,no,,,,," + "r" * 101, "reference", "at most 100"),
    ],
)
def test_each_validation_failure_names_row_and_field(
    run_csv: Run, row: str, field: str, message_part: str
) -> None:
    Printer.objects.create(name="Old one", is_active=False)
    header = "name,status,priority,is_business,customer_name,notes,file_name,printer,reference"
    import_job = run_csv(f"{header}\nGood,pending,0,no,,,,,\n{row}\n")
    assert errors_of(import_job) == [(3, field, "validation")]
    assert message_part in import_job.errors.get().message
    assert counts(import_job) == (2, 1, 0, 0, 1)


def test_validation_messages_come_from_jobs_validation(run_csv: Run) -> None:
    from django.core.exceptions import ValidationError

    from jobs import validation

    import_job = run_csv("name,priority\nA,12\n")
    with pytest.raises(ValidationError) as expected:
        validation.clean_priority("12")
    assert import_job.errors.get().message == expected.value.messages[0]


def test_several_errors_in_one_row_are_all_reported_and_counted_once(run_csv: Run) -> None:
    import_job = run_csv("name,priority,is_business\n,99,yes\n")
    assert sorted(errors_of(import_job)) == [
        (2, "customer_name", "validation"),
        (2, "name", "validation"),
        (2, "priority", "validation"),
    ]
    assert import_job.error_count == 1


def test_status_is_case_insensitive_and_sets_its_side_effects(run_csv: Run) -> None:
    run_csv("name,status\nA,Completed\nB,CANCELLED\n")
    a, b = Job.objects.order_by("name")
    assert (a.status, b.status) == ("completed", "cancelled")
    assert a.completed_at is not None
    assert b.cancelled_at is not None


def test_new_jobs_get_their_status_side_effects_at_creation(run_csv: Run, uploader: User) -> None:
    """The same rule as Job.insert and the admin (jobs/tests/test_job_creation.py)."""
    rows = "".join(f"{status} job,{status}\n" for status in JobStatus.values)
    import_job = run_csv("name,status\n" + rows)
    assert import_job.created_count == len(JobStatus.values)
    for job in Job.objects.all():
        assert_created_with_side_effects(job, uploader)
    running = Job.objects.get(status=JobStatus.RUNNING)
    assert running.started_at is not None
    assert running.started_at == running.created_at


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("TRUE", True),
        ("Yes", True),
        ("y", True),
        ("1", True),
        ("false", False),
        ("NO", False),
        ("n", False),
        ("0", False),
        ("", False),
    ],
)
def test_is_business_values(run_csv: Run, text: str, value: bool) -> None:
    run_csv(f"name,is_business,customer_name\nA,{text},Acme\n")
    assert Job.objects.get().is_business is value


# --- references -------------------------------------------------------------------------------


def test_reference_repeated_in_file_is_a_duplicate_on_the_later_row(run_csv: Run) -> None:
    import_job = run_csv("name,reference\nA,R1\nB,R2\nC,R1\nD,R1\n")
    assert errors_of(import_job) == [(4, "reference", "duplicate"), (5, "reference", "duplicate")]
    assert Job.objects.get(reference="R1").name == "A"


def test_on_existing_update(
    run_csv: Run, make_job: Callable[..., Job], printer: Printer, uploader: User
) -> None:
    job = make_job(name="Old", reference="R1", status="running", priority=1)
    import_job = run_csv(
        f"name,status,priority,printer,reference\nNew,completed,5,{printer.name},R1\nOther,,,,R2\n"
    )
    assert counts(import_job) == (2, 1, 1, 0, 0)
    job.refresh_from_db()
    assert (job.name, job.status, job.priority, job.printer) == ("New", "completed", 5, printer)
    assert job.completed_at is not None
    assert (job.version, job.updated_by, job.source_import) == (2, uploader, None)
    event = JobEvent.objects.get(job=job)
    assert event.kind == JobEvent.Kind.UPDATED
    assert event.changes["name"] == ["Old", "New"]
    assert event.changes["status"] == ["running", "completed"]


def test_update_keeps_columns_the_file_does_not_have(
    run_csv: Run, make_job: Callable[..., Job]
) -> None:
    job = make_job(name="Old", reference="R1", priority=7, notes="keep me")
    run_csv("name,reference\nNew,R1\n")
    job.refresh_from_db()
    assert (job.name, job.priority, job.notes, job.status) == ("New", 7, "keep me", "pending")


def test_update_with_a_forbidden_status_change_is_an_error(
    run_csv: Run, make_job: Callable[..., Job]
) -> None:
    job = make_job(name="Done", reference="R1", status="completed")
    import_job = run_csv("name,status,reference\nDone,running,R1\n")
    assert errors_of(import_job) == [(2, "status", "validation")]
    assert "cannot be moved to running" in import_job.errors.get().message
    job.refresh_from_db()
    assert (job.status, job.version) == ("completed", 1)


def test_update_changing_nothing_writes_nothing(run_csv: Run, make_job: Callable[..., Job]) -> None:
    job = make_job(name="Same", reference="R1", priority=2)
    import_job = run_csv("name,priority,reference\nSame,2,R1\n")
    assert counts(import_job) == (1, 0, 0, 1, 0)
    job.refresh_from_db()
    assert job.version == 1
    assert not JobEvent.objects.filter(job=job).exists()


def test_on_existing_skip(run_csv: Run, make_job: Callable[..., Job]) -> None:
    job = make_job(name="Old", reference="R1")
    import_job = run_csv("name,reference\nNew,R1\nOther,R2\n", on_existing="skip")
    assert counts(import_job) == (2, 1, 0, 1, 0)
    job.refresh_from_db()
    assert (job.name, job.version) == ("Old", 1)


def test_on_existing_error(run_csv: Run, make_job: Callable[..., Job]) -> None:
    job = make_job(name="Old", reference="R1")
    import_job = run_csv("name,reference\nNew,R1\nOther,R2\n", on_existing="error")
    assert counts(import_job) == (2, 1, 0, 0, 1)
    assert errors_of(import_job) == [(2, "reference", "duplicate")]
    assert f"job {job.pk}" in import_job.errors.get().message
    job.refresh_from_db()
    assert job.name == "Old"


# --- all or nothing, error cap, batches -------------------------------------------------------


def test_abort_mode_writes_nothing_when_any_row_is_invalid(run_csv: Run, settings: Any) -> None:
    settings.IMPORT_BATCH_SIZE = 2
    import_job = run_csv("name,priority\nA,1\nB,2\nC,3\nD,99\nE,5\n", on_error="abort")
    assert import_job.status == ImportStatus.FAILED
    assert not Job.objects.exists()
    assert errors_of(import_job) == [(5, "priority", "validation")]
    assert import_job.error_count == 1
    assert import_job.created_count == 0
    assert "Nothing was imported" in import_job.failure_message
    assert "1 of 5 rows" in import_job.failure_message


def test_abort_mode_imports_a_valid_file(run_csv: Run, settings: Any) -> None:
    settings.IMPORT_BATCH_SIZE = 2
    import_job = run_csv("name,reference\nA,R1\nB,R2\nC,R3\n", on_error="abort")
    assert import_job.status == ImportStatus.COMPLETED
    assert counts(import_job) == (3, 3, 0, 0, 0)
    assert import_job.total_rows == 3


def test_abort_mode_counts_in_file_duplicates(run_csv: Run) -> None:
    import_job = run_csv("name,reference\nA,R1\nB,R1\n", on_error="abort")
    assert import_job.status == ImportStatus.FAILED
    assert errors_of(import_job) == [(3, "reference", "duplicate")]
    assert not Job.objects.exists()


def test_stored_errors_are_capped_but_counted(run_csv: Run, settings: Any) -> None:
    settings.IMPORT_MAX_STORED_ERRORS = 3
    settings.IMPORT_BATCH_SIZE = 2
    import_job = run_csv("name,priority\n" + "A,99\n" * 7 + "B,1\n")
    assert import_job.error_count == 7
    assert ImportErrorRecord.objects.filter(import_job=import_job).count() == 3
    assert [row for row, _, _ in errors_of(import_job)] == [2, 3, 4]
    assert import_job.created_count == 1


def test_batches_advance_checkpoint_and_version(run_csv: Run, settings: Any) -> None:
    settings.IMPORT_BATCH_SIZE = 2
    seen: list[tuple[int, int]] = []
    original = Importer.write_batch

    def spy(self: Importer, batch: list[Record]) -> None:
        original(self, batch)
        row = ImportJob.objects.get(pk=self.run.pk)
        seen.append((row.checkpoint, row.processed_rows))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Importer, "write_batch", spy)
        import_job = run_csv("name\nA\nB\nC\nD\nE\n")
    assert seen == [(2, 2), (4, 4), (5, 5)]
    assert import_job.checkpoint == 5


# --- failures ---------------------------------------------------------------------------------


def test_missing_file_fails_with_a_plain_message(
    run_csv: Run, uploader: User, write_csv: Any
) -> None:
    from imports import intake

    with write_csv("name\nA\n").open("rb") as file:
        import_job = intake.create_import(
            file, intake.inspect_upload(file), user=uploader, enqueue=False
        )
    import_job.file.delete(save=False)
    run_import(import_job.pk)
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.FAILED
    assert import_job.failure_message.startswith("The uploaded file is no longer available")


def test_unexpected_error_fails_without_a_traceback(
    run_csv: Run, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(self: Any, batch: Any) -> None:
        raise RuntimeError("boom at /secret/path.py SELECT * FROM x")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Importer, "write_batch", explode)
        import_job = run_csv("name\nA\n")
    assert import_job.status == ImportStatus.FAILED
    assert import_job.failure_message == UNEXPECTED_FAILURE
    assert "boom" not in import_job.failure_message
    assert "import crashed" in caplog.text  # the details go to the log


def test_unknown_import_id_does_nothing() -> None:
    run_import("00000000-0000-0000-0000-000000000000")


def test_progress_figures(run_csv: Run) -> None:
    import_job = run_csv("name\nA\nB\n")
    assert import_job.elapsed_seconds is not None and import_job.elapsed_seconds >= 0
    assert import_job.eta_seconds is None  # finished
    import_job.status = ImportStatus.PROCESSING
    import_job.started_at = timezone.now() - timedelta(seconds=10)
    import_job.processed_rows, import_job.total_rows, import_job.estimated_rows = 50, None, 200
    assert import_job.progress_percent == 25
    assert import_job.rows_per_second == pytest.approx(5, rel=0.1)
    assert import_job.eta_seconds == pytest.approx(30, rel=0.1)
    import_job.processed_rows = 400  # the estimate was short
    assert import_job.progress_percent == 99
