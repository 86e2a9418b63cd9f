"""Files as spreadsheet programs write them import right (docs/csv-import.md, "Encodings and
delimiters"): exact names and counts, through the upload checks and the import."""

import codecs
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command

from imports.intake import UploadRejected
from imports.models import ImportJob, ImportStatus
from jobs.models import Job

pytestmark = pytest.mark.django_db

Run = Callable[..., ImportJob]

NAMES = ["Crème brûlée", "Zahnräder für Müller", "Niño", "Plain"]


def rows_text(delimiter: str = ",", newline: str = "\n") -> str:
    lines = [delimiter.join(["name", "notes", "priority"])]
    lines += [
        delimiter.join([name, f"note {index}", str(index)]) for index, name in enumerate(NAMES)
    ]
    return newline.join(lines) + newline


def stored() -> list[tuple[str, str, int]]:
    return list(Job.objects.order_by("priority").values_list("name", "notes", "priority"))


EXPECTED = [(name, f"note {index}", index) for index, name in enumerate(NAMES)]


def counts(import_job: ImportJob) -> tuple[str, int, int, int]:
    return (
        import_job.status,
        import_job.processed_rows,
        import_job.created_count,
        import_job.error_count,
    )


def test_utf8_with_bom_and_crlf(run_csv: Run) -> None:
    import_job = run_csv(codecs.BOM_UTF8 + rows_text(newline="\r\n").encode())
    assert (import_job.encoding, import_job.warnings) == ("utf-8-sig", [])
    assert counts(import_job) == ("completed", 4, 4, 0)
    assert stored() == EXPECTED


def test_windows_1252(run_csv: Run) -> None:
    import_job = run_csv(rows_text(newline="\r\n").encode("cp1252"))
    assert import_job.encoding == "cp1252"
    assert import_job.warnings == ["Read as Windows-1252: the file is not UTF-8."]
    assert counts(import_job) == ("completed", 4, 4, 0)
    assert stored() == EXPECTED


def test_cr_only_line_endings(run_csv: Run) -> None:
    content = rows_text(newline="\r").replace("note 1", '"note\ron two lines"')
    import_job = run_csv(content.encode())
    assert counts(import_job) == ("completed", 4, 4, 0)
    assert import_job.estimated_rows == 5  # a line count: the quoted line break adds one
    # Line breaks inside cells are stored as LF, as every other line break of a job's text.
    assert Job.objects.get(priority=1).notes == "note\non two lines"
    assert [name for name, _, _ in stored()] == NAMES


def test_mac_roman_with_cr_line_endings(run_csv: Run) -> None:
    """Excel for Mac's "CSV (Macintosh)": Mac Roman and CR line endings."""
    import_job = run_csv(rows_text(newline="\r").encode("mac_roman"))
    assert import_job.encoding == "mac_roman"
    assert import_job.warnings == ["Read as Mac Roman: the file is not UTF-8."]
    assert counts(import_job) == ("completed", 4, 4, 0)
    assert stored() == EXPECTED


@pytest.mark.parametrize(
    ("codec", "data_codec"),
    [("utf-16", "utf-16"), ("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be")],
)
def test_utf16_tab_separated_with_and_without_bom(
    run_csv: Run, codec: str, data_codec: str
) -> None:
    """Excel's "Unicode text": UTF-16 with tabs; some programs leave out the byte order mark."""
    import_job = run_csv(rows_text("\t", "\r\n").encode(data_codec))
    assert (import_job.encoding, import_job.delimiter) == (codec, "\t")
    assert counts(import_job) == ("completed", 4, 4, 0)
    assert stored() == EXPECTED


def test_semicolon_separated(run_csv: Run) -> None:
    """Excel in locales with a decimal comma separates with semicolons."""
    content = rows_text(";").replace("note 2", '"2,5 mm; quoted"')
    import_job = run_csv(content)
    assert import_job.delimiter == ";"
    assert counts(import_job) == ("completed", 4, 4, 0)
    assert Job.objects.get(priority=2).notes == "2,5 mm; quoted"


def test_utf8_file_with_one_latin1_row_is_utf8_and_that_row_is_an_error(run_csv: Run) -> None:
    """The walkthrough's file: 1,000 UTF-8 rows and one pasted from an older system."""
    lines = ["name,priority"] + [f"Café {index},1" for index in range(1000)]
    data = ("\n".join(lines[:501]) + "\n").encode()
    data += "Crème latin,2\n".encode("latin-1")  # row 502
    data += ("\n".join(lines[501:]) + "\n").encode()
    import_job = run_csv(data)
    assert import_job.encoding == "utf-8"
    assert import_job.warnings == [
        "1 line of the file is not valid UTF-8; its row is listed as an error."
    ]
    assert counts(import_job) == ("completed", 1001, 1000, 1)
    error = import_job.errors.get()
    assert (error.row, error.field, error.error_type) == (502, None, "parse")
    assert error.message == (
        "The row is not valid UTF-8 text (it has the byte 0xE8, which is not a character in "
        "that encoding)."
    )
    assert error.raw_data == "Cr\ufffdme latin,2"
    assert Job.objects.filter(name__startswith="Café ").count() == 1000


def test_file_mixing_utf8_and_another_encoding_is_refused(run_csv: Run) -> None:
    data = "name\nCafé\nThé\n".encode() + "Crème\nNoël\n".encode("cp1252")
    with pytest.raises(UploadRejected) as rejected:
        run_csv(data)
    assert str(rejected.value) == (
        "The file mixes UTF-8 with another encoding: 2 lines (the first at line 4, 5) are not "
        "valid UTF-8, 2 other lines with accents or symbols are. Save the file again as CSV "
        "UTF-8 and upload it."
    )


def test_windows_1252_byte_that_is_no_character_makes_a_row_error(run_csv: Run) -> None:
    """0x81 has no character in Windows-1252; that row fails, the others import."""
    data = "name\nCrème\nNoël\n".encode("cp1252") + b"Bad \x81 byte\nPlain\n"
    import_job = run_csv(data)
    assert import_job.encoding == "cp1252"
    assert counts(import_job) == ("completed", 4, 3, 1)
    assert list(import_job.errors.values_list("row", "error_type")) == [(4, "parse")]
    assert "not valid Windows-1252 text (it has the byte 0x81" in import_job.errors.get().message
    assert sorted(Job.objects.values_list("name", flat=True)) == ["Crème", "Noël", "Plain"]


def test_cyrillic_windows_1251_is_detected(run_csv: Run) -> None:
    text = "name,notes\nПринтер для кронштейнов,заметка о детали\nШестерня большая,ещё одна\n"
    import_job = run_csv(text.encode("cp1251"))
    assert import_job.encoding == "cp1251"
    assert import_job.warnings == ["Read as Windows-1251: the file is not UTF-8."]
    assert sorted(Job.objects.values_list("name", flat=True)) == [
        "Принтер для кронштейнов",
        "Шестерня большая",
    ]


# --- the formula guard ----------------------------------------------------------------------


def test_apostrophe_before_a_formula_character_is_dropped(run_csv: Run) -> None:
    content = (
        "name,notes,file_name\n"
        "'=1+1,'+49 30 123,'-minus\n"
        "'@home,\"'\tTab\",'@x\n"
        "'quoted,''=twice,it's\n"
        '"a,\'-b","a;\'\'=c",x\n'
    )
    import_job = run_csv(content)
    assert counts(import_job) == ("completed", 4, 4, 0)
    rows = list(Job.objects.order_by("id").values_list("name", "notes", "file_name"))
    # Cells are trimmed after the apostrophe goes, so the tab of "'\tTab" goes too.
    assert rows == [
        ("=1+1", "+49 30 123", "-minus"),
        ("@home", "Tab", "@x"),
        # An apostrophe the export doubled loses one: the value was "'=twice".
        ("'quoted", "'=twice", "it's"),
        # Where a cell could start inside a value, too, as the export writes it.
        ("a,-b", "a;'=c", "x"),
    ]


# --- files that are not CSV of the expected shape -------------------------------------------


def test_past_the_parse_error_cap_the_import_fails_and_keeps_earlier_batches(
    run_csv: Run, settings: Any
) -> None:
    settings.IMPORT_MAX_PARSE_ERRORS = 5
    settings.IMPORT_BATCH_SIZE = 3
    content = "name,priority\n" + "A,1\nB,2\nC,3\n" + "x\n" * 10 + "D,4\n"
    import_job = run_csv(content)
    assert import_job.status == ImportStatus.FAILED
    assert "this does not look like a CSV file of the expected shape" in (
        import_job.failure_message
    )
    # Row 10 is the sixth unparseable row (rows 5 to 9 are the first five).
    assert import_job.failure_message.startswith("The import stopped at row 10: more than 5 rows")
    assert sorted(Job.objects.values_list("name", flat=True)) == ["A", "B", "C"]
    # The rows read before the sixth parse error are written and reported, then it stops.
    assert list(import_job.errors.values_list("row", flat=True)) == [5, 6, 7, 8, 9]
    assert (import_job.processed_rows, import_job.error_count) == (8, 5)
    assert import_job.failure_message.endswith("Rows imported before it were kept.")


def test_past_the_parse_error_cap_an_all_or_nothing_import_says_nothing_was_imported(
    run_csv: Run, settings: Any
) -> None:
    settings.IMPORT_MAX_PARSE_ERRORS = 5
    settings.IMPORT_BATCH_SIZE = 3
    content = "name,priority\n" + "A,1\nB,2\nC,3\n" + "x\n" * 10 + "D,4\n"
    import_job = run_csv(content, on_error="abort")
    assert import_job.status == ImportStatus.FAILED
    assert import_job.failure_message.startswith("The import stopped at row 10: more than 5 rows")
    assert import_job.failure_message.endswith("Nothing was imported (all-or-nothing).")
    assert "were kept" not in import_job.failure_message
    assert not Job.objects.exists()


def test_unclosed_quote_in_a_large_file_ends_with_few_errors(run_csv: Run) -> None:
    """The walkthrough's 50 MB file, smaller: an unclosed quote swallows lines until the csv
    field limit, then reading goes on; the import ends, with one error per swallowed block."""
    body = "".join(f"Job {index},{index % 10}\n" for index in range(200_000))
    content = 'name,priority\nFirst,1\n"Unclosed,2\n' + body
    import_job = run_csv(content)
    assert import_job.status == ImportStatus.COMPLETED
    errors = list(import_job.errors.values_list("error_type", flat=True))
    assert errors and set(errors) == {"parse"}
    assert len(errors) < 1000
    assert "field larger than field limit" in import_job.errors.first().message


def test_line_longer_than_any_row_is_a_parse_error_and_reading_goes_on(run_csv: Run) -> None:
    content = "name,notes\nA,x\nB," + "y" * 3_000_000 + "\nC,z\n"
    import_job = run_csv(content)
    assert counts(import_job) == ("completed", 3, 2, 1)
    error = import_job.errors.get()
    assert (error.row, error.error_type) == (3, "parse")
    assert error.message == "The row has a line longer than 1,048,576 characters."
    assert len(error.raw_data) == 500
    assert sorted(Job.objects.values_list("name", flat=True)) == ["A", "C"]


def test_import_jobs_command_reads_an_excel_for_mac_file(write_csv: Callable[..., Any]) -> None:
    """The walkthrough's first finding: `import_jobs` printed a csv traceback for this file."""
    path = write_csv(rows_text(newline="\r").encode("mac_roman"))
    out = io.StringIO()
    call_command("import_jobs", str(path), "--sync", stdout=out, stderr=io.StringIO())
    assert (
        out.getvalue().splitlines()[1] == "4 rows: 4 created, 0 updated, 0 skipped, 0 with errors."
    )
    assert stored() == EXPECTED
