"""Checks of an uploaded CSV file before any ImportJob exists (SPEC section 5), and its creation.

The file is streamed in chunks: one pass computes the SHA-256, checks that the whole file
decodes, and counts lines for the row estimate; the header and delimiter come from the start.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
import os
from dataclasses import dataclass
from typing import IO, Any

import charset_normalizer
from charset_normalizer.md import mess_ratio
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from imports.models import ImportEvent, ImportJob, ImportStatus, OnError, OnExisting
from jobs.models import EDITABLE_FIELDS

logger = logging.getLogger("imports")

CHUNK_SIZE = 1024 * 1024
SAMPLE_SIZE = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
COLUMNS = (*EDITABLE_FIELDS, "reference")
ALIASES = {"job_name": "name", "printer_name": "printer"}
# Leading bytes of common non-CSV uploads: zip (xlsx, ods), old Excel, PDF, gzip, PNG.
BINARY_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF", b"\x1f\x8b", b"\x89PNG")


class UploadRejected(Exception):
    """The file cannot be imported; str(exc) is the message for the user."""


@dataclass(frozen=True)
class UploadInfo:
    file_hash: str
    file_size: int
    encoding: str
    delimiter: str
    estimated_rows: int
    columns: list[str]
    warnings: list[str]


@dataclass(frozen=True)
class Header:
    """Where each known column is in a record, and the header cells that were not understood."""

    positions: dict[str, int]
    unknown: list[str]
    width: int


def normalise_column(name: str) -> str:
    key = name.strip().lower()
    return ALIASES.get(key, key)


def map_header(cells: list[str]) -> Header:
    """Map header cells (case-insensitive, trimmed, aliases) to column positions.

    Raises UploadRejected when there is no name column or a column appears twice.
    """
    positions: dict[str, int] = {}
    unknown: list[str] = []
    for index, cell in enumerate(cells):
        column = normalise_column(cell)
        if column not in COLUMNS:
            unknown.append(cell.strip() or f"(blank column {index + 1})")
            continue
        if column in positions:
            raise UploadRejected(
                f"The header names the column “{column}” twice; keep one and upload again."
            )
        positions[column] = index
    if "name" not in positions:
        found = ", ".join(cell.strip() for cell in cells if cell.strip()) or "nothing"
        raise UploadRejected(
            f"The first row must be a header with a “name” (or “job_name”) column; it has {found}."
        )
    return Header(positions=positions, unknown=unknown, width=len(cells))


def unknown_columns_warning(unknown: list[str]) -> str:
    names = ", ".join(f"“{name}”" for name in unknown)
    return f"Ignored unknown column{'s' if len(unknown) > 1 else ''}: {names}."


def inspect_upload(file: IO[bytes] | File) -> UploadInfo:
    """Check an upload as SPEC section 5 requires; raise UploadRejected with the reason."""
    max_bytes = settings.IMPORT_MAX_UPLOAD_MB * 1024 * 1024
    _rewind(file)
    head = _read(file, SAMPLE_SIZE)
    if not head:
        raise UploadRejected("The file is empty.")
    if head.startswith(BINARY_SIGNATURES):
        raise UploadRejected(
            "This is not a CSV text file (it looks like a spreadsheet, archive, PDF or image). "
            "Save it as CSV and upload again."
        )
    encoding = _bom_encoding(head)
    if encoding is None and _looks_binary(head):
        raise UploadRejected(
            "This is not a CSV text file: it contains binary data. Save it as CSV and upload again."
        )
    candidates = [encoding] if encoding else ["utf-8", _detect(head), "cp1252", "latin-1"]
    for candidate in dict.fromkeys(c for c in candidates if c):
        scan = _scan(file, head, candidate, max_bytes)
        if scan is not None:
            break
    else:
        raise UploadRejected(
            "The file could not be read as text in any supported encoding "
            "(UTF-8, UTF-16 with a byte order mark, Windows-1252, Latin-1)."
        )
    file_hash, file_size, text_head, line_count, ends_with_newline = scan
    encoding = candidate
    header_line = text_head.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    if not header_line.strip():
        raise UploadRejected("The first row is empty; it must be the header naming the columns.")
    delimiter = sniff_delimiter(header_line)
    header_cells = next(csv.reader(io.StringIO(text_head.lstrip("\ufeff")), delimiter=delimiter))
    header = map_header(header_cells)
    warnings = [unknown_columns_warning(header.unknown)] if header.unknown else []
    records = line_count + (0 if ends_with_newline else 1) - 1
    return UploadInfo(
        file_hash=file_hash,
        file_size=file_size,
        encoding=encoding,
        delimiter=delimiter,
        estimated_rows=max(records, 0),
        columns=[normalise_column(cell) for cell in header_cells],
        warnings=warnings,
    )


def sniff_delimiter(header_line: str) -> str:
    """The delimiter used most in the header line, among , ; TAB |; a comma when none is."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def find_duplicate(file_hash: str) -> ImportJob | None:
    """The newest earlier import of the same file that did not fail."""
    return (
        ImportJob.objects.filter(file_hash=file_hash)
        .exclude(status=ImportStatus.FAILED)
        .select_related("created_by")
        .order_by("-created_at")
        .first()
    )


def create_import(
    file: IO[bytes] | File,
    info: UploadInfo,
    *,
    user: Any,
    on_error: str = OnError.SKIP,
    on_existing: str = OnExisting.UPDATE,
    enqueue: bool = True,
) -> ImportJob:
    """Store the file, create the pending ImportJob with its first event, and (by default)
    enqueue it on the cluster once the transaction commits. `enqueue=False` is for running
    it in-process (`import_jobs --sync`)."""
    if on_error not in OnError.values:
        raise ValueError(f"on_error must be one of {OnError.values}")
    if on_existing not in OnExisting.values:
        raise ValueError(f"on_existing must be one of {OnExisting.values}")
    if not isinstance(file, File):
        file = File(file, name=getattr(file, "name", None) or "upload.csv")
    original = os.path.basename(file.name or "upload.csv")[:255]
    import_job = ImportJob(
        created_at=timezone.now(),
        original_filename=original,
        file_size=info.file_size,
        file_hash=info.file_hash,
        encoding=info.encoding,
        delimiter=info.delimiter,
        estimated_rows=info.estimated_rows,
        warnings=list(info.warnings),
        on_error=on_error,
        on_existing=on_existing,
        created_by=user,
    )
    _rewind(file)
    with transaction.atomic():
        import_job.file.save(original, file, save=False)
        import_job.save(force_insert=True)
        ImportEvent.objects.create(
            import_job=import_job,
            old_status="",
            new_status=ImportStatus.PENDING,
            actor=user,
            message=f"Uploaded {original} ({info.file_size} bytes, {info.encoding}, "
            f"{DELIMITER_NAMES[info.delimiter]}-separated, about {info.estimated_rows} rows).",
            created_at=import_job.created_at,
        )
        if enqueue:
            transaction.on_commit(lambda: enqueue_or_log(import_job))
    return import_job


def enqueue_import(import_job: ImportJob) -> str:
    """Put the import's task on the cluster queue and remember its task id."""
    from django_q.tasks import async_task

    task_id = async_task(
        "imports.tasks.run_import_task",
        str(import_job.pk),
        task_name=f"import-{import_job.pk}-{timezone.now():%H%M%S%f}",
        group="imports",
    )
    ImportJob.objects.filter(pk=import_job.pk).update(task_id=task_id or "")
    import_job.task_id = task_id or ""
    return import_job.task_id


def enqueue_or_log(import_job: ImportJob) -> None:
    """Enqueue after the upload committed; if the broker is down, the upload still stands
    (pending, no task id) and the stalled-import sweep enqueues it later."""
    try:
        enqueue_import(import_job)
    except Exception:
        logger.exception(
            "could not enqueue import %s; the sweep will retry",
            import_job.pk,
            extra={"import_id": str(import_job.pk)},
        )


def _rewind(file: Any) -> None:
    if hasattr(file, "seek"):
        file.seek(0)


def _read(file: Any, size: int) -> bytes:
    data = file.read(size)
    return data.encode() if isinstance(data, str) else data


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _looks_binary(head: bytes) -> bool:
    """NUL bytes in the header line or throughout: binary. A stray NUL in a data row is a
    parse error of that row instead (SPEC section 5)."""
    first_line = head.split(b"\n", 1)[0]
    return b"\x00" in first_line or head.count(b"\x00") * 10 > len(head)


def _detect(head: bytes) -> str | None:
    """The likely 8-bit encoding of a non-UTF-8 sample; Windows-1252 when it reads as well.

    charset-normalizer guesses poorly between the Latin code pages on short samples (it
    picks cp1250 for French text), so cp1252 wins whenever it is no messier than the guess.
    """
    best = charset_normalizer.from_bytes(head).best()
    if best is None:
        return None
    try:
        guess = codecs.lookup(best.encoding).name
        if guess == "cp1252" or "cp1252" in best.could_be_from_charset:
            return "cp1252"
        as_cp1252 = head.decode("cp1252")
    except (LookupError, UnicodeDecodeError):
        return best.encoding
    return "cp1252" if mess_ratio(as_cp1252) <= mess_ratio(str(best)) else guess


def _scan(
    file: Any, head: bytes, encoding: str, max_bytes: int
) -> tuple[str, int, str, int, bool] | None:
    """One streaming pass: hash, size, decoded start, newline count, trailing newline.

    Returns None when the file does not decode in `encoding`; raises UploadRejected when it
    is over the size limit.
    """
    _rewind(file)
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    size = 0
    lines = 0
    text_head = ""
    last_char = ""
    while chunk := _read(file, CHUNK_SIZE):
        size += len(chunk)
        if size > max_bytes:
            raise UploadRejected(
                f"The file is larger than the {settings.IMPORT_MAX_UPLOAD_MB} MB upload limit."
            )
        digest.update(chunk)
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError:
            return None
        if len(text_head) < SAMPLE_SIZE:
            text_head += text[: SAMPLE_SIZE - len(text_head)]
        lines += text.count("\n")
        if text:
            last_char = text[-1]
    try:
        text = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    lines += text.count("\n")
    last_char = text[-1] if text else last_char
    if size == 0:
        raise UploadRejected("The file is empty.")
    return digest.hexdigest(), size, text_head, lines, last_char == "\n"
