"""Reading an import's stored file into records, each with the raw lines it came from.

The file is streamed through the csv module, never read whole. A record that cannot be
parsed still comes out (with its error) so the run can report it as a row error; a file
that cannot be read on raises UnreadableFile, whose message is the import's failure. The
rules are docs/csv-import.md, "Columns", "Encodings and delimiters", "Error types" and
"Limits".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings

from imports.encodings import UNDECODABLE, encoding_label, undecodable_errors
from imports.intake import Header, UploadRejected, map_header
from imports.models import ImportErrorRecord, ImportJob
from jobs.csv_safety import formula_unsafe

# An error record quotes at most this much of the raw line(s).
RAW_DATA_MAX = ImportErrorRecord._meta.get_field("raw_data").max_length
# No valid row comes near this many characters on one line; a longer line is a parse error,
# and is skipped without being held in memory whole.
MAX_LINE_CHARS = 1024 * 1024


class UnreadableFile(Exception):
    """The stored file cannot be read (any further); str(exc) is the message users see."""


class LineTooLong(Exception):
    """A physical line of more than MAX_LINE_CHARS characters (already skipped)."""


@dataclass(slots=True)
class Record:
    row: int  # spreadsheet row number: the header is row 1
    cells: list[str] | None  # None for a record that could not be parsed
    lines: list[str]
    parse_error: str = ""

    @property
    def raw(self) -> str:
        # PostgreSQL text cannot hold NUL; show it as the visible symbol for NUL instead, and
        # bytes that are not text as the replacement character.
        text = "".join(self.lines).rstrip("\r\n")[:RAW_DATA_MAX]
        return UNDECODABLE.sub("\ufffd", text.replace("\x00", "\u2400"))


class LineTap:
    """Hands lines to csv.reader and remembers them, so an error can quote the raw record.

    It also notes what the csv module cannot: NUL characters and undecodable bytes in the
    record's lines, and lines too long to be a row (raising LineTooLong in the reader).
    """

    def __init__(self, stream: io.TextIOBase):
        self.stream = stream
        self.lines: list[str] = []
        self.has_nul = False
        self.undecodable = ""
        self.first = True

    def __iter__(self) -> LineTap:
        return self

    def __next__(self) -> str:
        line = self.stream.readline(MAX_LINE_CHARS)
        if not line:
            raise StopIteration
        if self.first:
            # A byte order mark the codec left (a second one) is not part of the first name.
            line, self.first = line.removeprefix("\ufeff"), False
        self.lines.append(line)
        if len(line) == MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            while (rest := self.stream.readline(MAX_LINE_CHARS)) and not rest.endswith(
                ("\n", "\r")
            ):
                pass
            raise LineTooLong
        if "\x00" in line:
            self.has_nul = True
        if not line.isascii() and not self.undecodable and (mark := UNDECODABLE.search(line)):
            self.undecodable = mark.group()
        return line

    def take(self) -> tuple[list[str], str]:
        """The lines of the record just read and the record's parse error ("" if none)."""
        lines, has_nul, undecodable = self.lines, self.has_nul, self.undecodable
        self.lines, self.has_nul, self.undecodable = [], False, ""
        encoding = getattr(self.stream, "encoding", "") or "utf-8"
        if undecodable:
            byte = ord(undecodable) - 0xDC00
            return lines, (
                f"The row is not valid {encoding_label(encoding)} text "
                f"(it has the byte 0x{byte:02X}, which is not a character in that encoding)."
            )
        if has_nul:
            return lines, "The row contains a NUL byte (binary data)."
        return lines, ""


def open_records(import_job: ImportJob) -> tuple[Header, Iterator[Record], IO[str]]:
    """The header, an iterator over the stored file's records, and the open stream to close."""
    try:
        binary = import_job.file.open("rb")
    except (OSError, ValueError):
        raise UnreadableFile(
            "The uploaded file is no longer available, so the import cannot run. Upload it again."
        ) from None
    return read_records(binary, import_job.encoding or "utf-8", import_job.delimiter or ",")


def read_records(
    binary: IO[bytes], encoding: str, delimiter: str
) -> tuple[Header, Iterator[Record], IO[str]]:
    """The header and records of a CSV byte stream, as the upload checks found it encoded."""
    errors = undecodable_errors(encoding)
    text = io.TextIOWrapper(binary, encoding=encoding, errors=errors, newline="")
    tap = LineTap(text)
    reader = csv.reader(tap, delimiter=delimiter)
    try:
        header = _read_header(reader, tap)
    except UnreadableFile:
        text.close()
        raise
    return header, _records(reader, tap, header.width), text


def _read_header(reader: Any, tap: LineTap) -> Header:
    try:
        header_cells = next(reader)
    except StopIteration:
        raise UnreadableFile("The file is empty.") from None
    except (csv.Error, LineTooLong):
        raise UnreadableFile("The header row of the file cannot be read.") from None
    _, error = tap.take()
    if error:
        raise UnreadableFile(f"The header row of the file cannot be read: {error}")
    try:
        return map_header(header_cells)
    except UploadRejected as exc:
        raise UnreadableFile(str(exc)) from None


def _records(reader: Any, tap: LineTap, width: int) -> Iterator[Record]:
    """The records after the header; past IMPORT_MAX_PARSE_ERRORS unparseable ones, raises
    UnreadableFile (the file is evidently not CSV of the header's shape)."""
    row = 1
    parse_errors = 0
    while True:
        row += 1
        record = _next_record(reader, tap, row, width)
        if record is None:
            return
        if record.cells is None and record.parse_error:
            parse_errors += 1
            if parse_errors > settings.IMPORT_MAX_PARSE_ERRORS:
                raise UnreadableFile(
                    f"The import stopped at row {row}: more than "
                    f"{settings.IMPORT_MAX_PARSE_ERRORS} rows could not be read as rows of the "
                    "header's columns, so this does not look like a CSV file of the expected "
                    "shape. Check its delimiter, quotes and encoding."
                )
        if record.cells is not None or record.parse_error:
            yield record


def _next_record(reader: Any, tap: LineTap, row: int, width: int) -> Record | None:
    """The record of `row`, one without cells or error for a blank row, None at the end."""
    try:
        cells = next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        lines, _ = tap.take()
        return Record(row, None, lines, f"The row cannot be read as CSV ({exc}).")
    except LineTooLong:
        lines, _ = tap.take()
        return Record(
            row, None, lines, f"The row has a line longer than {MAX_LINE_CHARS:,} characters."
        )
    lines, error = tap.take()
    if not any(cell.strip() for cell in cells):
        return Record(row, None, lines, error)  # a blank row is not a record, unless broken
    if error:
        return Record(row, None, lines, error)
    if len(cells) != width:
        return Record(
            row, None, lines, f"The row has {len(cells)} cells but the header has {width} columns."
        )
    return Record(row, [_clean_cell(cell) for cell in cells], lines)


def _clean_cell(cell: str) -> str:
    # Without the apostrophes a formula-safe export put before `=1+1` and the like, so an
    # exported file imports with the values it was exported from.
    cell = formula_unsafe(cell)
    # A line break inside a quoted cell is stored as LF, whichever the file used (a classic
    # Mac file uses CR).
    return cell.replace("\r\n", "\n").replace("\r", "\n") if "\r" in cell else cell
