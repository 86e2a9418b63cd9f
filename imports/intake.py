"""Checks of an uploaded CSV file before any ImportJob exists, and its creation.

The rules are docs/csv-import.md, "Columns", "Encodings and delimiters" and "Limits". The
file is streamed in chunks: one pass computes the SHA-256 and counts lines for the row
estimate and for deciding the encoding (imports/encodings.py); the header and delimiter come
from the start.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import logging
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import Storage
from django.db import transaction
from django.utils import timezone

from imports.encodings import (
    UNDECODABLE,
    LineCounter,
    LineCounts,
    MixedEncodings,
    bom_encoding,
    choose_encoding,
    decode_head,
    encoding_label,
    undecodable_errors,
    zero_byte_encoding,
)
from imports.models import ImportEvent, ImportJob, ImportStatus, OnError, OnExisting
from jobs.models import EDITABLE_FIELDS
from jobs.validation import safe_upload_name

logger = logging.getLogger("imports")

CHUNK_SIZE = 1024 * 1024
# The start of the file, which must hold the whole header line.
SAMPLE_SIZE = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
COLUMNS = (*EDITABLE_FIELDS, "reference")
ALIASES = {"job_name": "name", "printer_name": "printer"}
# Leading bytes of common non-CSV uploads: zip (xlsx, ods), old Excel, PDF, gzip, PNG.
BINARY_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF", b"\x1f\x8b", b"\x89PNG")
# The line endings the csv module reads (newline=""): LF, CRLF, and a lone CR (classic Mac).
LINE_BREAK = re.compile(r"\r\n|\r|\n")


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
        found = _some_names([cell.strip() for cell in cells if cell.strip()]) or "nothing"
        raise UploadRejected(
            f"The first row must be a header with a “name” (or “job_name”) column; it has {found}."
        )
    return Header(positions=positions, unknown=unknown, width=len(cells))


def unknown_columns_warning(unknown: list[str]) -> str:
    names = _some_names([f"“{name}”" for name in unknown])
    return f"Ignored unknown column{'s' if len(unknown) > 1 else ''}: {names}."


def _some_names(names: list[str], shown: int = 10, length: int = 40) -> str:
    """A list of names short enough for a message, however wide or odd the header is."""
    text = ", ".join(
        name if len(name) <= length else name[: length - 1] + "…" for name in names[:shown]
    )
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def inspect_upload(file: IO[bytes] | File) -> UploadInfo:
    """Check an upload as docs/csv-import.md describes; raise UploadRejected with the reason."""
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
    encoding = bom_encoding(head) or zero_byte_encoding(head)
    if encoding is None and _looks_binary(head):
        raise UploadRejected(
            "This is not a CSV text file: it contains binary data (NUL bytes). "
            "Save it as CSV and upload again."
        )
    scan = _scan(file, encoding or "utf-8", max_bytes)
    warnings: list[str] = []
    if encoding is None:
        try:
            encoding, warnings = choose_encoding(scan.lines)
        except MixedEncodings as mixed:
            raise UploadRejected(str(mixed)) from None
    text_head = scan.text_head if encoding == scan.encoding else decode_head(head, encoding)
    header_line = _header_line(text_head.removeprefix("\ufeff"), encoding)
    delimiter = sniff_delimiter(header_line)
    header_cells = parse_header_line(header_line, delimiter)
    header = map_header(header_cells)
    if header.unknown:
        warnings.append(unknown_columns_warning(header.unknown))
    records = scan.lines.line_breaks + (0 if scan.lines.ends_with_newline else 1) - 1
    return UploadInfo(
        file_hash=scan.file_hash,
        file_size=scan.file_size,
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


def parse_header_line(header_line: str, delimiter: str) -> list[str]:
    """The cells of the header, which must be one complete CSV record on the first line."""
    try:
        cells = next(csv.reader([header_line + "\n"], delimiter=delimiter))
    except csv.Error as exc:
        raise UploadRejected(f"The header row cannot be read as CSV ({exc}).") from None
    # A line break can only be inside a cell when a quote opened on the line is never closed.
    if any("\n" in cell for cell in cells):
        raise UploadRejected(
            'The header row has a quote (") that is not closed on the same line; the header '
            "must be one line naming the columns."
        )
    return cells


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
    original = safe_upload_name(os.path.basename(file.name or ""))
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


# "Import anyway" (docs/csv-import.md, "Duplicate files"): an upload found to be a duplicate
# is kept here, named by a signed token in the form, so the user need not choose it again.
# Unused ones are removed after HELD_UPLOAD_MAX_AGE (imports/retention.py, and whenever
# another upload is held).
HELD_UPLOADS_FOLDER = "held-uploads"
HELD_UPLOAD_MAX_AGE = timedelta(hours=1)
HELD_UPLOAD_SALT = "imports.held-upload"


def upload_storage() -> Storage:
    return ImportJob._meta.get_field("file").storage


def hold_upload(file: IO[bytes] | File, *, user: Any) -> str:
    """Keep a checked upload for an hour; the token names it, for this user only."""
    storage = upload_storage()
    remove_expired_held_uploads(storage, timezone.now())
    original = safe_upload_name(os.path.basename(getattr(file, "name", "") or "")) or "upload.csv"
    _rewind(file)
    name = storage.save(f"{HELD_UPLOADS_FOLDER}/{uuid.uuid4().hex}.csv", File(file))
    return signing.dumps(
        {"name": name, "original": original, "user": user.pk}, salt=HELD_UPLOAD_SALT
    )


def held_upload(token: str, *, user: Any) -> File | None:
    """The upload `token` names, open, under its original name; None when the token is not
    this user's, was tampered with, or the file is older than an hour or gone."""
    try:
        held = signing.loads(
            token, salt=HELD_UPLOAD_SALT, max_age=HELD_UPLOAD_MAX_AGE.total_seconds()
        )
    except signing.BadSignature:  # SignatureExpired included
        return None
    name = held.get("name", "")
    if held.get("user") != user.pk or not name.startswith(f"{HELD_UPLOADS_FOLDER}/"):
        return None
    storage = upload_storage()
    try:
        return File(storage.open(name, "rb"), name=held.get("original") or "upload.csv")
    except FileNotFoundError:
        return None


def release_held_upload(token: str) -> None:
    """Remove a held upload once imported (the token was checked by held_upload)."""
    name = signing.loads(token, salt=HELD_UPLOAD_SALT)["name"]
    upload_storage().delete(name)


def expired_held_uploads(storage: Storage, now: datetime) -> Iterator[str]:
    try:
        _, names = storage.listdir(HELD_UPLOADS_FOLDER)
    except FileNotFoundError:
        return
    for name in names:
        path = f"{HELD_UPLOADS_FOLDER}/{name}"
        try:
            modified = storage.get_modified_time(path)
        except FileNotFoundError:  # removed meanwhile
            continue
        if modified < now - HELD_UPLOAD_MAX_AGE:
            yield path


def remove_expired_held_uploads(storage: Storage, now: datetime) -> int:
    removed = 0
    for path in expired_held_uploads(storage, now):
        storage.delete(path)
        removed += 1
    return removed


def _rewind(file: Any) -> None:
    if hasattr(file, "seek"):
        file.seek(0)


def _read(file: Any, size: int) -> bytes:
    data = file.read(size)
    return data.encode() if isinstance(data, str) else data


def _looks_binary(head: bytes) -> bool:
    """NUL bytes in the header line or throughout: binary. A stray NUL in a data row is a
    parse error of that row instead (docs/csv-import.md, "Error types")."""
    first_line = re.split(rb"[\r\n]", head, maxsplit=1)[0]
    return b"\x00" in first_line or head.count(b"\x00") * 10 > len(head)


@dataclass
class _Scan:
    """What one streaming pass over the file found (see _scan)."""

    encoding: str
    file_hash: str = ""
    file_size: int = 0
    text_head: str = ""
    lines: LineCounts = field(default_factory=LineCounts)


def _scan(file: Any, encoding: str, max_bytes: int) -> _Scan:
    """One streaming pass: hash, size, decoded start, line count, and the lines that do not
    decode in `encoding` (kept as marks, see UNDECODABLE). Raises UploadRejected when the file
    is over the size limit."""
    _rewind(file)
    scan = _Scan(encoding=encoding)
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)(errors=undecodable_errors(encoding))
    counter = LineCounter(scan.lines, keep_sample=encoding == "utf-8")
    while chunk := _read(file, CHUNK_SIZE):
        scan.file_size += len(chunk)
        if scan.file_size > max_bytes:
            raise UploadRejected(
                f"The file is larger than the {settings.IMPORT_MAX_UPLOAD_MB} MB upload limit."
            )
        digest.update(chunk)
        text = decoder.decode(chunk)
        if len(scan.text_head) < SAMPLE_SIZE:
            scan.text_head += text[: SAMPLE_SIZE - len(scan.text_head)]
        counter.feed(text)
    text = decoder.decode(b"", final=True)
    scan.text_head = (scan.text_head + text)[:SAMPLE_SIZE]
    counter.feed(text)
    counter.close()
    if scan.file_size == 0:
        raise UploadRejected("The file is empty.")
    scan.file_hash = digest.hexdigest()
    return scan


def _header_line(text_head: str, encoding: str) -> str:
    parts = LINE_BREAK.split(text_head, maxsplit=1)
    header_line = parts[0]
    if len(parts) == 1 and len(text_head) >= SAMPLE_SIZE:
        raise UploadRejected(
            f"The first row is longer than {SAMPLE_SIZE // 1024} KB, so it cannot be the header "
            "naming the columns. Check that the file is a CSV file."
        )
    if not header_line.strip():
        raise UploadRejected("The first row is empty; it must be the header naming the columns.")
    if "\x00" in header_line:
        raise UploadRejected(
            "This is not a CSV text file: its header row contains binary data (NUL). "
            "Save it as CSV and upload again."
        )
    if UNDECODABLE.search(header_line):
        raise UploadRejected(
            f"The header row is not valid {encoding_label(encoding)} text. "
            "Save the file again as CSV UTF-8 and upload it."
        )
    return header_line
