"""Upload checks before an ImportJob exists, duplicates, creation (docs/csv-import.md)."""

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from imports import intake
from imports.intake import UploadRejected, find_duplicate, inspect_upload
from imports.models import ImportEvent, ImportJob, ImportStatus

HEADER = "name,status,priority\n"


def inspect_bytes(data: bytes) -> intake.UploadInfo:
    return inspect_upload(io.BytesIO(data))


def rejected(data: bytes) -> str:
    with pytest.raises(UploadRejected) as excinfo:
        inspect_bytes(data)
    return str(excinfo.value)


def test_plain_utf8_comma_file() -> None:
    info = inspect_bytes(b"name,priority\nBracket,3\nGear,4\n")
    assert info.encoding == "utf-8"
    assert info.delimiter == ","
    assert info.estimated_rows == 2
    assert info.columns == ["name", "priority"]
    assert info.warnings == []
    assert info.file_size == len(b"name,priority\nBracket,3\nGear,4\n")
    assert len(info.file_hash) == 64


def test_utf8_bom_is_detected_and_not_part_of_the_header() -> None:
    info = inspect_bytes("\ufeffName,Notes\nCafé,x\n".encode())
    assert info.encoding == "utf-8-sig"
    assert info.columns == ["name", "notes"]


def test_cp1252_text_is_detected() -> None:
    data = "name,notes\nCrème brûlée à la carte,“quoted” – 5 €\n".encode("cp1252")
    info = inspect_bytes(data)
    assert info.encoding == "cp1252"


def test_utf16_with_bom() -> None:
    info = inspect_bytes("name;notes\nZahnrad;ü\n".encode("utf-16"))
    assert info.encoding == "utf-16"
    assert info.delimiter == ";"
    assert info.estimated_rows == 1


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_delimiters_are_sniffed(delimiter: str, name: str) -> None:
    data = delimiter.join(["name", "notes", "priority"]) + "\nA, with comma" + delimiter + "x,y"
    info = inspect_bytes((data + delimiter + "1\n").encode())
    assert info.delimiter == delimiter
    assert info.columns == ["name", "notes", "priority"]


def test_crlf_and_quoted_newlines_count_as_an_estimate() -> None:
    data = b'name,notes\r\nA,"two\r\nlines"\r\nB,plain\r\n'
    info = inspect_bytes(data)
    # The estimate counts lines (a quick scan), so a quoted newline adds one.
    assert info.estimated_rows == 3


def test_last_line_without_newline_counts() -> None:
    assert inspect_bytes(b"name\nA\nB").estimated_rows == 2


def test_header_names_are_case_insensitive_trimmed_and_aliased() -> None:
    info = inspect_bytes(b" Job_Name , PRINTER_NAME ,Status\nA,,\n")
    assert info.columns == ["name", "printer", "status"]


def test_unknown_columns_are_listed_as_a_warning() -> None:
    info = inspect_bytes(b"name,colour,Weight\nA,red,3\n")
    assert info.warnings == ["Ignored unknown columns: “colour”, “Weight”."]


def test_missing_name_column_is_rejected() -> None:
    message = rejected(b"title,priority\nA,1\n")
    assert "name" in message and "title, priority" in message


def test_column_named_twice_is_rejected() -> None:
    assert "twice" in rejected(b"name,Name\nA,B\n")


def test_empty_file_is_rejected() -> None:
    assert rejected(b"") == "The file is empty."


def test_blank_first_line_is_rejected() -> None:
    assert "header" in rejected(b"\n\nname\nA\n")


def test_header_only_file_is_accepted_with_no_rows() -> None:
    info = inspect_bytes(b"name,status\n")
    assert info.estimated_rows == 0


@pytest.mark.parametrize(
    "data",
    [
        b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)),  # an .xlsx (zip)
        b"%PDF-1.7\n" + bytes(range(256)),
        b"name\x00\x01\x02\x03" + bytes(range(256)) * 4,  # NUL bytes without a UTF-16 BOM
    ],
)
def test_binary_junk_is_rejected(data: bytes) -> None:
    assert "not a CSV text file" in rejected(data)


def test_undecodable_high_bytes_without_a_name_column_are_rejected() -> None:
    # Not UTF-8; read as Windows-1252, five of these bytes are not characters at all.
    assert rejected(bytes(range(128, 256)) * 8) == (
        "The header row is not valid Windows-1252 text. "
        "Save the file again as CSV UTF-8 and upload it."
    )


def test_file_over_the_size_limit_is_rejected(settings: Any) -> None:
    settings.IMPORT_MAX_UPLOAD_MB = 1
    data = HEADER.encode() + b"A,pending,1\n" * 100_000
    assert rejected(data) == "The file is larger than the 1 MB upload limit."


def test_file_is_read_in_chunks_not_at_once() -> None:
    class ChunkOnly(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            assert size is not None and 0 < size <= intake.CHUNK_SIZE
            return super().read(size)

    data = HEADER.encode() + b"A,pending,1\n" * 200_000
    info = inspect_upload(ChunkOnly(data))
    assert info.estimated_rows == 200_000


def test_django_uploaded_file_is_accepted() -> None:
    upload = SimpleUploadedFile("jobs.csv", b"name\nA\n", content_type="text/csv")
    assert inspect_upload(upload).estimated_rows == 1


# --- duplicates and creation ---------------------------------------------------------------


@pytest.fixture
def create(uploader: User, write_csv: Callable[..., Path]) -> Callable[..., ImportJob]:
    def make(content: str = "name\nA\n", **options: Any) -> ImportJob:
        with write_csv(content).open("rb") as file:
            info = inspect_upload(file)
            return intake.create_import(file, info, user=uploader, enqueue=False, **options)

    return make


def test_create_import_stores_file_and_records_the_upload(
    create: Callable[..., ImportJob], uploader: User
) -> None:
    import_job = create("Name;Colour\nA;red\nB;blue\n", on_error="abort", on_existing="skip")
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.PENDING
    assert import_job.created_by == uploader
    assert (import_job.encoding, import_job.delimiter) == ("utf-8", ";")
    assert (import_job.on_error, import_job.on_existing) == ("abort", "skip")
    assert import_job.estimated_rows == 2
    assert import_job.warnings == ["Ignored unknown column: “Colour”."]
    assert import_job.original_filename.endswith(".csv")
    with import_job.file.open("rb") as stored:
        assert stored.read() == b"Name;Colour\nA;red\nB;blue\n"
    event = ImportEvent.objects.get(import_job=import_job)
    assert (event.old_status, event.new_status, event.actor) == ("", "pending", uploader)


def test_create_import_enqueues_on_commit_and_stores_the_task_id(
    uploader: User,
    write_csv: Callable[..., Path],
    django_capture_on_commit_callbacks: Any,
    task_queue: Any,
) -> None:
    with write_csv("name\nA\n").open("rb") as file:
        info = inspect_upload(file)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            import_job = intake.create_import(file, info, user=uploader)
        assert task_queue.queue_size() == 0  # nothing is queued before the commit
        for callback in callbacks:
            callback()
    import_job.refresh_from_db()
    assert import_job.task_id
    assert task_queue.queue_size() == 1


def test_create_import_refuses_unknown_options(create: Callable[..., ImportJob]) -> None:
    with pytest.raises(ValueError):
        create(on_error="maybe")
    assert not ImportJob.objects.exists()


def test_find_duplicate_returns_newest_not_failed_import(
    create: Callable[..., ImportJob],
) -> None:
    first = create()
    second = create()
    other = create("name\nsomething else\n")
    assert first.file_hash == second.file_hash != other.file_hash
    assert find_duplicate(first.file_hash) == second
    ImportJob.objects.filter(pk=second.pk).update(status=ImportStatus.FAILED)
    assert find_duplicate(first.file_hash) == first
    ImportJob.objects.filter(pk=first.pk).update(status=ImportStatus.FAILED)
    assert find_duplicate(first.file_hash) is None
    assert find_duplicate("0" * 64) is None


# --- line endings, encodings and odd headers ---------------------------------------------------


def test_cr_only_line_endings() -> None:
    info = inspect_bytes(b"name,notes\rA,x\rB,y\r")
    assert (info.columns, info.estimated_rows) == (["name", "notes"], 2)


@pytest.mark.parametrize(
    ("codec", "expected"),
    [
        ("utf-16-le", "utf-16-le"),
        ("utf-16-be", "utf-16-be"),
        ("utf-32-le", "utf-32-le"),
        ("utf-32-be", "utf-32-be"),
        ("utf-32", "utf-32"),  # with a byte order mark
    ],
)
def test_utf16_and_utf32_are_told_by_their_zero_bytes(codec: str, expected: str) -> None:
    info = inspect_bytes("name\tnotes\r\nZahnräder\tü\r\n".encode(codec))
    assert (info.encoding, info.delimiter, info.estimated_rows) == (expected, "\t", 1)
    assert info.warnings == []


def test_mac_roman_is_detected_and_said() -> None:
    info = inspect_bytes(
        "name,notes\rCrème brûlée,à la carte\rGâteau,très bien\r".encode("mac_roman")
    )
    assert info.encoding == "mac_roman"
    assert info.warnings == ["Read as Mac Roman: the file is not UTF-8."]


def test_an_ascii_file_with_one_latin1_line_is_windows_1252() -> None:
    """Nothing in it is UTF-8 beyond ASCII, so Windows-1252 reads every line right."""
    info = inspect_bytes(b"name\nA\nB\n" + "Crème\n".encode("latin-1"))
    assert info.encoding == "cp1252"


def test_header_with_an_unclosed_quote_is_rejected() -> None:
    message = rejected(b'name,"notes\nA,x\nB,y\n')
    assert message.startswith('The header row has a quote (") that is not closed')


def test_header_that_is_not_text_in_the_encoding_is_rejected() -> None:
    # A valid UTF-8 body decides UTF-8; the header's Latin-1 byte then is not text.
    data = "name,caf\xe9\n".encode("latin-1") + "Café,x\n".encode() * 20
    assert rejected(data).startswith("The header row is not valid UTF-8 text.")


def test_first_line_longer_than_the_sample_is_rejected() -> None:
    message = rejected(b"name," + b"x" * intake.SAMPLE_SIZE + b"\nA,1\n")
    assert message.startswith("The first row is longer than 64 KB")


def test_nul_in_a_utf16_header_is_rejected() -> None:
    message = rejected("name,no\x00tes\nA,x\n".encode("utf-16"))
    assert "header row contains binary data" in message


def test_a_thousand_unknown_columns_make_a_short_warning() -> None:
    header = ",".join(["name"] + [f"extra column number {index}" for index in range(1000)])
    info = inspect_bytes(header.encode() + b"\n")
    (warning,) = info.warnings
    assert warning.startswith("Ignored unknown columns: “extra column number 0”, ")
    assert warning.endswith(" and 990 more.")
    assert len(warning) < 500


def test_many_names_in_a_header_without_name_make_a_short_message() -> None:
    message = rejected(",".join(f"column {index}" for index in range(5000)).encode() + b"\n")
    assert message.endswith("column 9 and 4990 more.")


@pytest.mark.parametrize("encoding", ["mac_roman", "cp1252"])
def test_a_lone_symbol_letter_decides_between_mac_roman_and_windows_1252(encoding: str) -> None:
    """Found by the fuzz harness: the sample's "Ø 40 mm" in Mac Roman was read as Windows-1252
    ("¯ 40 mm"), as no accented letter sits inside a word to tell them apart."""
    data = 'name,notes\nHinge v1,"PETG, 0.15 mm; Ø 40 mm insert"\n'.encode(encoding)
    assert inspect_bytes(data).encoding == encoding


def test_a_few_lines_that_are_not_utf8_are_counted_in_the_warning() -> None:
    data = b"name\n" + "Café\n".encode() * 40 + "Crème\nNoël\n".encode("cp1252")
    info = inspect_bytes(data)
    assert info.encoding == "utf-8"
    assert info.warnings == [
        "2 lines of the file are not valid UTF-8; their rows are listed as errors."
    ]
