"""Reading an import's stored file into records, each with the raw lines it came from.

The file is streamed through the csv module, never read whole. A record that cannot be
parsed still comes out (with its error) so the run can report it as a row error; a file
that cannot be read on raises UnreadableFile, whose message is the import's failure.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from imports.intake import Header, UploadRejected, map_header
from imports.models import ImportErrorRecord, ImportJob

# An error record quotes at most this much of the raw line(s).
RAW_DATA_MAX = ImportErrorRecord._meta.get_field("raw_data").max_length


class UnreadableFile(Exception):
    """The stored file cannot be read (any further); str(exc) is the message users see."""


@dataclass(slots=True)
class Record:
    row: int  # spreadsheet row number: the header is row 1
    cells: list[str] | None  # None for a record that could not be parsed
    lines: list[str]
    parse_error: str = ""

    @property
    def raw(self) -> str:
        # PostgreSQL text cannot hold NUL; show it as the visible symbol for NUL instead.
        return "".join(self.lines).rstrip("\r\n").replace("\x00", "\u2400")[:RAW_DATA_MAX]


class LineTap:
    """Hands lines to csv.reader and remembers them, so an error can quote the raw record."""

    def __init__(self, stream: io.TextIOBase):
        self.stream = stream
        self.lines: list[str] = []
        self.has_nul = False

    def __iter__(self) -> LineTap:
        return self

    def __next__(self) -> str:
        line = next(self.stream)
        if "\x00" in line:
            self.has_nul = True
        self.lines.append(line)
        return line

    def take(self) -> tuple[list[str], bool]:
        lines, has_nul = self.lines, self.has_nul
        self.lines, self.has_nul = [], False
        return lines, has_nul


def open_records(import_job: ImportJob) -> tuple[Header, Iterator[Record], Any]:
    """The header, an iterator over the stored file's records, and the open stream to close."""
    try:
        binary = import_job.file.open("rb")
    except (OSError, ValueError):
        raise UnreadableFile(
            "The uploaded file is no longer available, so the import cannot run. Upload it again."
        ) from None
    text = io.TextIOWrapper(binary, encoding=import_job.encoding or "utf-8", newline="")
    tap = LineTap(text)
    reader = csv.reader(tap, delimiter=import_job.delimiter or ",")
    try:
        header_cells = next(reader)
    except StopIteration:
        raise UnreadableFile("The file is empty.") from None
    except (csv.Error, UnicodeDecodeError):
        raise UnreadableFile("The header row of the file cannot be read.") from None
    tap.take()
    if header_cells and header_cells[0].startswith("\ufeff"):
        header_cells[0] = header_cells[0][1:]
    try:
        header = map_header(header_cells)
    except UploadRejected as exc:
        raise UnreadableFile(str(exc)) from None
    return header, _records(reader, tap, header.width), text


def _records(reader: Any, tap: LineTap, width: int) -> Iterator[Record]:
    row = 1
    while True:
        row += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            lines, _ = tap.take()
            yield Record(row, None, lines, f"The row cannot be read as CSV ({exc}).")
            continue
        except UnicodeDecodeError:
            raise UnreadableFile(
                f"The file stops being valid {reader_encoding(tap)} text near row {row}."
            ) from None
        lines, has_nul = tap.take()
        if has_nul:
            yield Record(row, None, lines, "The row contains a NUL byte (binary data).")
        elif len(cells) != width:
            if not any(cell.strip() for cell in cells):
                continue  # a blank line is not a record
            yield Record(
                row,
                None,
                lines,
                f"The row has {len(cells)} cells but the header has {width} columns.",
            )
        elif not any(cell.strip() for cell in cells):
            continue  # a row of empty cells, as spreadsheets export
        else:
            yield Record(row, cells, lines)


def reader_encoding(tap: LineTap) -> str:
    return getattr(tap.stream, "encoding", "") or "text"
