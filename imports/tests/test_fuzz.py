"""Fuzzing the upload checks, the reader, the row checks and the import with Hypothesis.

Properties: whatever the bytes, the upload check either refuses the file with a message
(UploadRejected) or accepts it; an accepted file's header is the one the reader finds; the
reader hands out rows or parse errors (or stops past IMPORT_MAX_PARSE_ERRORS), all of them
text a database can store; an import ends completed or failed with a message of its own;
the upload page never answers 500 and `import_jobs` never prints a traceback.

Inputs: arbitrary bytes, CSV-like text, and mutations of docs/samples (line endings, each
delimiter, encodings with and without a byte order mark, unclosed quotes, NUL and stray
bytes, blank lines, very long fields and lines, thousands of columns).

`make test` runs the bounded, derandomized "fuzz" profile (a few hundred examples in memory,
a few dozen through the database). The long run, 100,000+ examples of the reader and row
checks in memory and a few thousand through the database, is one command:

    HYPOTHESIS_PROFILE=fuzz-long .venv/bin/pytest imports/tests/test_fuzz.py -p no:cacheprovider

Each failure it found has a regression test (test_encodings.py, test_intake.py, and the
explicit examples below).
"""

import codecs
import csv
import io
import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from imports import intake
from imports.encodings import UNDECODABLE
from imports.importer import UNEXPECTED_FAILURE, run_import
from imports.intake import COLUMNS, UploadRejected, inspect_upload
from imports.models import ImportJob, ImportStatus
from imports.reading import RAW_DATA_MAX, UnreadableFile, read_records
from imports.rows import RowValidator

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
SAMPLE_TEXTS = [
    (SAMPLES / name).read_text(encoding="utf-8")
    for name in ("jobs-valid.csv", "jobs-with-errors.csv")
]

settings.register_profile(
    "fuzz",
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
settings.register_profile("fuzz-long", parent=settings.get_profile("fuzz"), derandomize=False)
PROFILE = "fuzz-long" if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz-long" else "fuzz"
# Examples per test: in memory (reader and row checks), through the database (an import),
# through the web page or the command.
EXAMPLES = {
    "fuzz": {"memory": 400, "database": 30, "surface": 12},
    "fuzz-long": {"memory": 100_000, "database": 1_500, "surface": 300},
}[PROFILE]


def sized(kind: str) -> settings:
    return settings(settings.get_profile(PROFILE), max_examples=EXAMPLES[kind])


# --- inputs ---------------------------------------------------------------------------------

ENCODINGS = [
    "utf-8",
    "utf-8-sig",
    "cp1252",
    "mac_roman",
    "latin-1",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
]
STRAY_BYTES = [
    b"\x00",
    b'"',
    b"\r",
    b"\n",
    b"\r\n",
    b"\xff",
    b"\xe9",
    b"\x81",
    b"\xc3",
    codecs.BOM_UTF8,
    codecs.BOM_UTF16_LE,
    b",",
    b";",
    b"\t",
    b"|",
    b"'=",
]
# Mostly short cells; now and then one past the csv field limit or the reader's line limit.
LONG_CELL = st.sampled_from([0] * 30 + [5_000, 140_000, 1_100_000])


@st.composite
def sample_files(draw: st.DrawFn) -> bytes:
    """A docs/samples file, cut and re-written the ways spreadsheets and accidents do."""
    rows = list(csv.reader(io.StringIO(draw(st.sampled_from(SAMPLE_TEXTS)))))
    header, body = rows[0], rows[1:]
    count = draw(st.integers(0, 25))
    start = draw(st.integers(0, max(len(body) - count, 0)))
    body = [list(row) for row in body[start : start + count]]
    if draw(st.integers(0, 20)) == 0:  # thousands of columns
        extra = draw(st.integers(1, 3000))
        header = header + [f"extra {index}" for index in range(extra)]
        body = [row + ["x"] * extra for row in body]
    if body and (length := draw(LONG_CELL)):
        row = draw(st.integers(0, len(body) - 1))
        body[row][draw(st.integers(0, len(body[row]) - 1))] = "y" * length
    for _ in range(draw(st.integers(0, 3))):  # blank lines, or rows of empty cells
        body.insert(draw(st.integers(0, len(body))), [""] * draw(st.sampled_from([1, len(header)])))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows([header, *body])
    text = buffer.getvalue()
    ending = draw(st.sampled_from(["\n", "\r\n", "\r", "mixed"]))
    if ending == "mixed":
        text = re.sub("\n", lambda _: draw(st.sampled_from(["\n", "\r\n", "\r"])), text)
    else:
        text = text.replace("\n", ending)
    for _ in range(draw(st.integers(0, 2))):  # quotes that open and never close
        position = draw(st.integers(0, len(text)))
        text = text[:position] + '"' + text[position:]
    data = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            data = data[:position] + draw(st.sampled_from(STRAY_BYTES)) + data[position:]
        else:
            data = data[:position] + data[position + draw(st.integers(1, 20)) :]
    return data


@st.composite
def sample_variants(draw: st.DrawFn) -> tuple[bytes, list[list[str]]]:
    """A docs/samples file saved as a spreadsheet program may save it, unharmed, with the rows
    it holds: any delimiter, line ending and encoding that can hold its text."""
    rows = list(csv.reader(io.StringIO(draw(st.sampled_from(SAMPLE_TEXTS)))))
    count = draw(st.integers(1, 40))
    start = draw(st.integers(1, max(len(rows) - count, 1)))
    rows = [rows[0], *rows[start : start + count]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=draw(st.sampled_from([",", ";", "\t", "|"])))
    writer.writerows(rows)
    text = buffer.getvalue().replace("\r\n", draw(st.sampled_from(["\n", "\r\n", "\r"])))
    encoding = draw(st.sampled_from([e for e in ENCODINGS if e != "latin-1"]))
    return text.encode(encoding), rows


CSV_ALPHABET = st.sampled_from(
    list('name,;\t|"\r\n') + ["status", "priority", "reference", "é", "€", "\x00", "'=", " "]
)


@st.composite
def csv_like(draw: st.DrawFn) -> bytes:
    """Text that starts like a header and goes on in CSV's significant characters."""
    text = draw(st.sampled_from(["name", "Name,notes", "job_name;priority", ""]))
    text += "".join(draw(st.lists(CSV_ALPHABET, max_size=200)))
    return text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


FILES = st.one_of(sample_files(), csv_like(), st.binary(max_size=2048))


# --- what must hold -------------------------------------------------------------------------

SURROGATE_OR_NUL = re.compile("[\x00\ud800-\udfff]")


def assert_storable(text: str) -> None:
    """Text a database and a web page can hold: no NUL, no lone surrogate."""
    assert not SURROGATE_OR_NUL.search(text), repr(text[:200])


def check_in_memory(data: bytes) -> None:
    try:
        info = inspect_upload(io.BytesIO(data))
    except UploadRejected as rejected:
        assert str(rejected)
        assert_storable(str(rejected))
        event("rejected at upload")
        return
    for warning in info.warnings:
        assert_storable(warning)
    header, records, stream = read_records(io.BytesIO(data), info.encoding, info.delimiter)
    with stream:
        assert header.width == len(info.columns)
        assert all(info.columns[index] == column for column, index in header.positions.items())
        validator = RowValidator(header)
        previous = 1
        try:
            for record in records:
                assert record.row > previous
                previous = record.row
                assert len(record.raw) <= RAW_DATA_MAX
                assert_storable(record.raw)
                if record.cells is None:
                    assert record.parse_error
                    assert_storable(record.parse_error)
                    continue
                assert len(record.cells) == header.width
                for cell in record.cells:
                    assert_storable(cell)
                _, errors = validator.clean(validator.values(record.cells), None)
                for field, message in errors:
                    assert field in COLUMNS and message
        except UnreadableFile as stopped:
            assert "does not look like a CSV file of the expected shape" in str(stopped)
            event("stopped past the parse error cap")
        else:
            event(f"read as {info.encoding}")


def check_import(data: bytes, uploader: User) -> None:
    try:
        info = inspect_upload(io.BytesIO(data))
    except UploadRejected:
        event("rejected at upload")
        return
    import_job = intake.create_import(
        io.BytesIO(data), info, user=uploader, on_error="skip", enqueue=False
    )
    run_import(import_job.pk)
    import_job.refresh_from_db()
    assert import_job.status in (ImportStatus.COMPLETED, ImportStatus.FAILED)
    event(f"import {import_job.status}")
    if import_job.status == ImportStatus.FAILED:
        assert import_job.failure_message
        assert import_job.failure_message != UNEXPECTED_FAILURE
    else:
        done = import_job.created_count + import_job.updated_count + import_job.skipped_count
        assert done + import_job.error_count == import_job.processed_rows
    assert all(row >= 2 for row in import_job.errors.values_list("row", flat=True))


# --- the properties -------------------------------------------------------------------------


@pytest.mark.django_db
@sized("memory")
@given(data=FILES)
@example(data=b"name,notes\rA,x\rB,y\r")  # classic Mac line endings
@example(data="name\tnotes\r\nZahnräder\tü\r\n".encode("utf-16-le"))  # UTF-16, no BOM
@example(data=b'name,notes\nA,"never closed\n' + b"B,x\n" * 50_000)
@example(data=b"name\n" + "Café\n".encode() * 30 + "Crème\n".encode("cp1252"))
def test_upload_check_reader_and_row_checks_in_memory(data: bytes) -> None:
    check_in_memory(data)


@pytest.mark.django_db
@sized("memory")
@given(variant=sample_variants())
def test_sample_files_read_back_exactly_in_any_encoding_delimiter_and_line_ending(
    variant: tuple[bytes, list[list[str]]],
) -> None:
    data, rows = variant
    info = inspect_upload(io.BytesIO(data))
    header, records, stream = read_records(io.BytesIO(data), info.encoding, info.delimiter)
    with stream:
        assert [record.cells for record in records] == rows[1:]
    assert header.width == len(rows[0])


@sized("memory")
@given(data=FILES.filter(bool), chunk_size=st.integers(1, 64))
def test_the_upload_scan_sorts_lines_as_a_plain_reading_does(data: bytes, chunk_size: int) -> None:
    """The scan that decides the encoding reads in chunks with list tricks for speed; with tiny
    chunks (so lines, CR LF pairs and UTF-8 sequences straddle them) it must find what a
    line-by-line reading of the whole file finds."""
    with pytest.MonkeyPatch.context() as patch:
        # Tiny chunks, but never more than 500 of them (a long cell makes a large file).
        patch.setattr(intake, "CHUNK_SIZE", max(chunk_size, len(data) // 500))
        scan = intake._scan(io.BytesIO(data), "utf-8", len(data))
    text = data.decode("utf-8", "surrogateescape")
    lines = intake.LINE_BREAK.split(text)
    breaks = len(lines) - 1
    bad = [number for number, line in enumerate(lines, 1) if UNDECODABLE.search(line)]
    good = [line for line in lines if not line.isascii() and not UNDECODABLE.search(line)]
    counts = scan.lines
    assert (counts.line_breaks, counts.ends_with_newline) == (breaks, text.endswith(("\r", "\n")))
    assert (counts.undecodable_lines, counts.first_undecodable) == (len(bad), bad[:3])
    assert counts.non_ascii_lines == len(good)


@pytest.mark.django_db
@sized("database")
@given(data=FILES)
@example(data=b"name\n\xef\xbb\xbf\n")  # a byte order mark on a line of its own
def test_any_file_imports_to_an_end(data: bytes, uploader: User) -> None:
    check_import(data, uploader)


@pytest.mark.django_db
@sized("surface")
@given(data=FILES)
def test_upload_page_never_answers_500(data: bytes, editor: User) -> None:
    client = Client()
    client.force_login(editor)
    response = client.post(
        "/imports/new/",
        {
            "file": SimpleUploadedFile("fuzz.csv", data, content_type="text/csv"),
            "on_error": "skip",
            "on_existing": "update",
        },
    )
    assert response.status_code in (200, 302)
    if response.status_code == 200:
        assert b"Traceback" not in response.content


@pytest.mark.django_db
@sized("surface")
@given(data=FILES)
def test_import_command_never_prints_a_traceback(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_jobs", str(path), "--sync", "--force", stdout=out, stderr=err)
    except CommandError as refused:
        assert refused.returncode == 2
        assert_storable(str(refused))
    except SystemExit as exit:
        assert exit.code in (1, 3)
    assert "Traceback" not in out.getvalue() + err.getvalue()
    assert not ImportJob.objects.filter(status=ImportStatus.PROCESSING).exists()
