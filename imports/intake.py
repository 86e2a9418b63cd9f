"""Checks of an uploaded CSV file before any ImportJob exists, and its creation.

The rules are docs/csv-import.md, "Encodings and delimiters" and "Limits". The file is
streamed in chunks: one pass computes the SHA-256, decides the encoding from every line, and
counts lines for the row estimate; the header and delimiter come from the start.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import logging
import os
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from typing import IO, Any

import charset_normalizer
from charset_normalizer.md import mess_ratio
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from imports.models import ImportEvent, ImportJob, ImportStatus, OnError, OnExisting
from jobs.models import EDITABLE_FIELDS
from jobs.validation import safe_upload_name

logger = logging.getLogger("imports")

CHUNK_SIZE = 1024 * 1024
SAMPLE_SIZE = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
COLUMNS = (*EDITABLE_FIELDS, "reference")
ALIASES = {"job_name": "name", "printer_name": "printer"}
# Leading bytes of common non-CSV uploads: zip (xlsx, ods), old Excel, PDF, gzip, PNG.
BINARY_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF", b"\x1f\x8b", b"\x89PNG")
# The line endings the csv module reads (newline=""): LF, CRLF, and a lone CR (classic Mac).
LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Decoding error handler of the upload checks and the reader (registered at the end of this
# module): bytes that are not text become lone surrogates, which UNDECODABLE finds.
MARK_UNDECODABLE = "jobsite-mark-undecodable"
UNDECODABLE = re.compile("[\udc00-\udcff]")
# A file is UTF-8 when at most 1 in UTF8_SHARE of its non-ASCII lines is not (see
# _choose_encoding), and not UTF-8 when at most 1 in UTF8_SHARE of them is.
UTF8_SHARE = 10
WESTERN_ENCODINGS = ("cp1252", "mac_roman")
ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "utf-32": "UTF-32",
    "utf-32-le": "UTF-32",
    "utf-32-be": "UTF-32",
    "cp1252": "Windows-1252",
    "mac-roman": "Mac Roman",
    "latin-1": "Latin-1",
    "iso8859-1": "Latin-1",
}


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
    encoding = _bom_encoding(head) or _zero_byte_encoding(head)
    if encoding is None and _looks_binary(head):
        raise UploadRejected(
            "This is not a CSV text file: it contains binary data (NUL bytes). "
            "Save it as CSV and upload again."
        )
    scan = _scan(file, encoding or "utf-8", max_bytes)
    warnings: list[str] = []
    if encoding is None:
        encoding, warnings = _choose_encoding(scan)
    text_head = scan.text_head if encoding == scan.encoding else _decode_head(head, encoding)
    header_line = _header_line(text_head.removeprefix("\ufeff"), encoding)
    delimiter = sniff_delimiter(header_line)
    header_cells = parse_header_line(header_line, delimiter)
    header = map_header(header_cells)
    if header.unknown:
        warnings.append(unknown_columns_warning(header.unknown))
    records = scan.line_breaks + (0 if scan.ends_with_newline else 1) - 1
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


def encoding_label(encoding: str) -> str:
    """How an encoding is named to people: "Windows-1252", "UTF-16", "Mac Roman"."""
    name = codecs.lookup(encoding).name
    if name in ENCODING_LABELS:
        return ENCODING_LABELS[name]
    if re.fullmatch(r"cp125\d", name):
        return f"Windows-{name[2:]}"
    return name.upper()


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


def _rewind(file: Any) -> None:
    if hasattr(file, "seek"):
        file.seek(0)


def _read(file: Any, size: int) -> bytes:
    data = file.read(size)
    return data.encode() if isinstance(data, str) else data


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    # The UTF-32 marks first: the little-endian one begins with the UTF-16 one.
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _zero_byte_encoding(head: bytes) -> str | None:
    """UTF-16 or UTF-32 without a byte order mark, told by where its zero bytes are.

    The header is mostly ASCII, so in UTF-16 little-endian every second byte is zero (the odd
    ones), in big-endian the even ones; in UTF-32 three of every four.
    """
    size = min(len(head), 4096)
    sample = head[: size - size % 4]
    if len(sample) < 4:
        return None
    quarter = len(sample) // 4
    mostly = [sample[position::4].count(0) >= quarter * 0.6 for position in range(4)]
    rarely = [sample[position::4].count(0) <= quarter * 0.05 for position in range(4)]
    patterns = {
        "utf-16-le": (rarely[0], mostly[1], rarely[2], mostly[3]),
        "utf-16-be": (mostly[0], rarely[1], mostly[2], rarely[3]),
        "utf-32-le": (rarely[0], mostly[1], mostly[2], mostly[3]),
        "utf-32-be": (mostly[0], mostly[1], mostly[2], rarely[3]),
    }
    for encoding, pattern in patterns.items():
        if all(pattern):
            return encoding
    return None


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
    line_breaks: int = 0
    ends_with_newline: bool = False
    undecodable_lines: int = 0  # lines with bytes that are not text in the encoding
    first_undecodable: list[int] = field(default_factory=list)  # their line numbers (a few)
    non_ascii_lines: int = 0  # lines with non-ASCII text that decodes
    sample: bytearray = field(default_factory=bytearray)  # raw bytes of undecodable lines


class _LineCounter:
    """Follows decoded text chunk by chunk and sorts its lines (CR, LF or CRLF endings)."""

    def __init__(self, scan: _Scan, keep_sample: bool):
        self.scan = scan
        self.keep_sample = keep_sample
        self.line = 1
        self.undecodable = False
        self.non_ascii = False
        self.pending_cr = ""

    def feed(self, text: str, final: bool = False) -> None:
        text = self.pending_cr + text
        self.pending_cr = ""
        if text.endswith("\r") and not final:  # its LF may start the next chunk
            text, self.pending_cr = text[:-1], "\r"
        if not text:
            return
        scan = self.scan
        scan.ends_with_newline = text[-1] in "\r\n"
        if text.isascii():
            breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
            if breaks:
                self._end_line()
                self.line += breaks - 1
                scan.line_breaks += breaks - 1
            return
        # Sorted with list operations rather than a loop: a file has millions of lines.
        parts = _split_lines(text)
        plain = list(map(str.isascii, parts))
        if _has_marks(text):
            bad = [
                not ascii and bool(UNDECODABLE.search(part))
                for part, ascii in zip(parts, plain, strict=True)
            ]
        else:
            bad = [False] * len(parts)
        # The first part continues the current line; the last may go on in the next chunk.
        self._note(parts[0], plain[0], bad[0])
        if len(parts) == 1:
            return
        self._end_line()
        middle = len(parts) - 2
        bad_lines = bad[1:-1].count(True)
        scan.undecodable_lines += bad_lines
        scan.non_ascii_lines += plain[1:-1].count(False) - bad_lines
        index = 0
        while bad_lines and (len(scan.first_undecodable) < 3 or self._wants_sample()):
            try:
                index = bad.index(True, index + 1, len(parts) - 1)
            except ValueError:
                break
            if len(scan.first_undecodable) < 3:
                scan.first_undecodable.append(self.line + index - 1)
            self._sample(parts[index])
        self.line += middle
        scan.line_breaks += middle
        self._note(parts[-1], plain[-1], bad[-1])

    def _note(self, part: str, plain: bool, bad: bool) -> None:
        if bad:
            self.undecodable = True
            self._sample(part)
        elif not plain:
            self.non_ascii = True

    def _wants_sample(self) -> bool:
        return self.keep_sample and len(self.scan.sample) < SAMPLE_SIZE

    def _sample(self, part: str) -> None:
        if self._wants_sample():
            self.scan.sample += part.encode("utf-8", "surrogateescape") + b"\n"

    def _end_line(self) -> None:
        scan = self.scan
        scan.line_breaks += 1
        if self.undecodable:
            scan.undecodable_lines += 1
            if len(scan.first_undecodable) < 3:
                scan.first_undecodable.append(self.line)
        elif self.non_ascii:
            scan.non_ascii_lines += 1
        self.line += 1
        self.undecodable = self.non_ascii = False

    def close(self) -> None:
        self.feed("", final=True)
        if self.undecodable or self.non_ascii:  # the last line, without a line break
            self._end_line()
            self.scan.line_breaks -= 1


def _split_lines(text: str) -> list[str]:
    """The text cut at its line breaks (LF, CRLF, CR), as LINE_BREAK.split but faster."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _has_marks(text: str) -> bool:
    """Whether the text holds marks of undecodable bytes (lone surrogates; decoded text never
    does), as UNDECODABLE.search but faster."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _scan(file: Any, encoding: str, max_bytes: int) -> _Scan:
    """One streaming pass: hash, size, decoded start, line count, and the lines that do not
    decode in `encoding` (kept as marks, see UNDECODABLE). Raises UploadRejected when the file
    is over the size limit."""
    _rewind(file)
    scan = _Scan(encoding=encoding)
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)(errors=undecodable_errors(encoding))
    counter = _LineCounter(scan, keep_sample=encoding == "utf-8")
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


def _choose_encoding(scan: _Scan) -> tuple[str, list[str]]:
    """UTF-8 unless the file as a whole is not (docs/csv-import.md, "Encodings and delimiters").

    Only lines with non-ASCII text tell encodings apart. When at most one in ten of them is
    not valid UTF-8, the file is UTF-8 and those rows become parse errors. When at most one in
    ten is valid UTF-8 (8-bit text forms a valid UTF-8 sequence now and then by chance), the
    file is 8-bit text in another encoding. Anything in between is a mixture no single
    encoding reads right, and is refused.
    """
    bad, good = scan.undecodable_lines, scan.non_ascii_lines
    if bad == 0:
        return "utf-8", []
    lines = "line" if bad == 1 else "lines"
    if bad * UTF8_SHARE <= bad + good:
        if bad == 1:
            return "utf-8", [
                "1 line of the file is not valid UTF-8; its row is listed as an error."
            ]
        return "utf-8", [
            f"{bad} lines of the file are not valid UTF-8; their rows are listed as errors."
        ]
    if good * UTF8_SHARE <= bad + good:
        encoding = _guess_8bit_encoding(bytes(scan.sample))
        return encoding, [f"Read as {encoding_label(encoding)}: the file is not UTF-8."]
    first = ", ".join(str(line) for line in scan.first_undecodable)
    raise UploadRejected(
        f"The file mixes UTF-8 with another encoding: {bad} {lines} (the first at line {first}) "
        f"{'is' if bad == 1 else 'are'} not valid UTF-8, {good} other lines with accents or "
        "symbols are. Save the file again as CSV UTF-8 and upload it."
    )


def _guess_8bit_encoding(sample: bytes) -> str:
    """Windows-1252 or Mac Roman, whichever reads the sample's words better (Windows-1252 on a
    tie); the detector's guess instead when the text is of another script it reads far better.
    """
    western = max(WESTERN_ENCODINGS, key=lambda encoding: _word_fit(sample, encoding))
    if _word_fit(sample, western) > 0:
        return western
    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        return western
    try:
        guess = codecs.lookup(best.encoding).name
        as_western = sample.decode(western, MARK_UNDECODABLE)
    except LookupError:
        return western
    # UTF-16 and UTF-32 were ruled out by their zero bytes; a guess of them here is wrong.
    if not guess.startswith("utf") and mess_ratio(str(best)) + 0.2 < mess_ratio(as_western):
        return guess
    return western


def _word_fit(sample: bytes, encoding: str) -> int:
    """How well the non-ASCII characters of the decoded sample sit inside words.

    +1 for a letter between two ASCII letters; -1 for an upper-case letter right after a
    lower-case one, a symbol (not punctuation) between two letters, a character text hardly
    ever holds, or an undecodable byte.
    A wrong Western code page turns accented letters into symbols and capitals.
    """
    text = sample.decode(encoding, MARK_UNDECODABLE)
    score = 0
    for index, char in enumerate(text):
        if char.isascii():
            continue
        if UNDECODABLE.match(char) or _unlikely_in_text(char):
            score -= 1
            continue
        before = text[index - 1] if index else " "
        after = text[index + 1] if index + 1 < len(text) else " "
        letter_before = before.isascii() and before.isalpha()
        letter_after = after.isascii() and after.isalpha()
        if char.isalpha():
            if char.isupper() and before.isascii() and before.islower():
                score -= 1
            elif letter_before and letter_after:
                score += 1
        elif letter_before and letter_after and not unicodedata.category(char).startswith("P"):
            score -= 1
    return score


def _unlikely_in_text(char: str) -> bool:
    """Characters text hardly ever holds but a wrong code page often makes: spacing accents
    (¯ ¸ ˆ ˜), math symbols, private use (Apple's logo), ligatures, the dotless i."""
    category = unicodedata.category(char)
    if category == "Sm":
        return char not in "±×÷"
    return category in ("Sk", "Co", "Cc") or char in "ﬁﬂı◊"


def _decode_head(head: bytes, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors=MARK_UNDECODABLE)
    return decoder.decode(head)


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


def undecodable_errors(encoding: str) -> str:
    """The decoding error handler for `encoding` that marks bytes that are not text.

    Python's own surrogateescape marks them as MARK_UNDECODABLE does and, written in C, keeps
    a file with a million bad bytes fast; it can mark bytes from 0x80 up only, which are all
    the bytes UTF-8 and single-byte code pages cannot decode. Other encodings get the mark.
    """
    info = codecs.lookup(encoding)
    module = sys.modules.get(info.incrementaldecoder.__module__ or "")
    if info.name in ("utf-8", "utf-8-sig") or hasattr(module, "decoding_table"):
        return "surrogateescape"
    return MARK_UNDECODABLE


def _mark_undecodable(error: UnicodeError) -> tuple[str, int]:
    """Decoding error handler: each byte that is not text becomes a lone surrogate (U+DC00 plus
    the byte), which no valid text contains, so the reader can tell which rows to refuse."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    marks = "".join(chr(0xDC00 + byte) for byte in error.object[error.start : error.end])
    return marks, error.end


codecs.register_error(MARK_UNDECODABLE, _mark_undecodable)
