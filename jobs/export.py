"""Exports of a job list: CSV in the CSV import's columns, so that an export imports back to
the same jobs, and JSON lines; both streamed in constant memory.

    write_csv(queryset, file) -> rows written        # `file`: any text file object
    write_jsonl(queryset, file) -> rows written
    csv_chunks(queryset, bom=False), jsonl_chunks(queryset)   # text for a streamed response

The queryset says which jobs and in which order (filter and sort it first, e.g. with
`jobs.paging.sorted_by`). It is read in one query of plain value tuples, fetched a chunk at a
time, never as model instances. `job_record(job)` is the JSON record of one loaded job, and
`csv_lines(jobs)` the CSV of a few loaded jobs (a page), for the commands.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from itertools import islice
from typing import IO, Any

from django.db import connections, transaction
from django.db.models import QuerySet

from jobs.csv_safety import FORMULA_STARTS, formula_safe
from jobs.models import EDITABLE_FIELDS, Job

# The CSV import's columns (docs/csv-import.md, "Columns"), the editable fields and the
# reference: (header, field path). A printer goes by its name.
CSV_COLUMNS = [
    (name, "printer__name" if name == "printer" else name)
    for name in (*EDITABLE_FIELDS, "reference")
]
# A JSON record: the job's id and version, the CSV's columns, and its times.
JSON_FIELDS = [
    ("id", "id"),
    ("version", "version"),
    *CSV_COLUMNS,
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
    ("started_at", "started_at"),
    ("completed_at", "completed_at"),
    ("cancelled_at", "cancelled_at"),
]
CSV_HEADER = [name for name, _ in CSV_COLUMNS]
IS_BUSINESS = CSV_HEADER.index("is_business")
# The columns of free text; the others hold a status, a number or yes/no.
TEXT_COLUMNS = [
    index
    for index, name in enumerate(CSV_HEADER)
    if name not in ("status", "priority", "is_business")
]
# A value without any of the characters formula_safe guards leaves it as it came, so only
# the rest go through its regular expression (a few in a hundred).
FORMULA_CHARACTERS = re.compile("[" + "".join(map(re.escape, FORMULA_STARTS)) + "]")
JSON_NAMES = [name for name, _ in JSON_FIELDS]
TIME_FIELDS = [name for name, path in JSON_FIELDS if path.endswith("_at")]
JSON_ENCODER = json.JSONEncoder(ensure_ascii=False)
# Rows fetched from the database at a time, and rows per piece of text handed out.
FETCH_ROWS = 2000
ROWS_PER_CHUNK = 500


def csv_chunks(queryset: QuerySet[Job], *, bom: bool = False) -> Iterator[str]:
    """The header and a line per job, formula-safe and fully quoted, a few hundred lines per
    piece. `bom` starts it with a byte order mark (for spreadsheets)."""
    lines = _csv_lines(_values(queryset, CSV_COLUMNS))
    first = True
    for batch in _batched(lines, ROWS_PER_CHUNK):
        text = "".join(batch)
        yield ("\ufeff" + text) if bom and first else text
        first = False


def jsonl_chunks(queryset: QuerySet[Job]) -> Iterator[str]:
    """One JSON object per job and line (JSON_FIELDS), a few hundred lines per piece."""
    for batch in _batched(_jsonl_lines(_values(queryset, JSON_FIELDS)), ROWS_PER_CHUNK):
        yield "".join(batch)


def write_csv(queryset: QuerySet[Job], file: IO[str]) -> int:
    """Write csv_chunks(queryset) to `file`; returns the number of jobs written."""
    return _write(_csv_lines(_values(queryset, CSV_COLUMNS)), file) - 1


def write_jsonl(queryset: QuerySet[Job], file: IO[str]) -> int:
    """Write jsonl_chunks(queryset) to `file`; returns the number of jobs written."""
    return _write(_jsonl_lines(_values(queryset, JSON_FIELDS)), file)


def job_record(job: Job) -> dict[str, Any]:
    """The JSON record of one job (JSON_FIELDS), as an export's line holds it."""
    return _record(tuple(_attribute(job, path) for _, path in JSON_FIELDS))


def csv_lines(jobs: Iterable[Job]) -> Iterator[str]:
    """The header and a line per job of loaded jobs, as csv_chunks writes them."""
    return _csv_lines(tuple(_attribute(job, path) for _, path in CSV_COLUMNS) for job in jobs)


def _values(queryset: QuerySet[Job], columns: list[tuple[str, str]]) -> Iterator[tuple]:
    """The queryset's rows as value tuples, streamed: on SQLite a read statement streams by
    itself (and a transaction would be IMMEDIATE, taking the write lock); PostgreSQL streams a
    server-side cursor only inside a transaction, and outside one first copies the whole
    result aside (a WITH HOLD cursor)."""
    rows = queryset.values_list(*(path for _, path in columns))
    streaming = transaction.atomic(using=rows.db) if _is_postgresql(rows) else nullcontext()
    with streaming:
        yield from rows.iterator(chunk_size=FETCH_ROWS)


def _is_postgresql(queryset: QuerySet) -> bool:
    return connections[queryset.db].vendor == "postgresql"


class _Echo:
    """A write-only file for csv.writer: hands each line back."""

    def write(self, line: str) -> str:
        return line


def _csv_lines(rows: Iterable[tuple]) -> Iterator[str]:
    """The header and a line per row of CSV_COLUMNS values: what
    csv_safety.formula_safe_csv_lines writes (every field quoted, formula-safe), with
    formula_safe run only on text that holds a character it guards."""
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    yield writer.writerow(CSV_HEADER)
    for row in rows:
        values = list(row)
        values[IS_BUSINESS] = "yes" if values[IS_BUSINESS] else "no"
        for index in TEXT_COLUMNS:
            value = values[index]
            if value and FORMULA_CHARACTERS.search(value):
                values[index] = formula_safe(value)
        yield writer.writerow(values)


def _jsonl_lines(rows: Iterable[tuple]) -> Iterator[str]:
    encode = JSON_ENCODER.encode
    for row in rows:
        yield encode(_record(row)) + "\n"


def _record(row: tuple) -> dict[str, Any]:
    record = dict(zip(JSON_NAMES, row, strict=True))
    for name in TIME_FIELDS:
        if record[name] is not None:
            record[name] = record[name].isoformat()
    return record


def _attribute(job: Job, path: str) -> Any:
    """The value at a field path (`printer__name`) of a loaded job; None past a missing link."""
    value: Any = job
    for name in path.split("__"):
        value = getattr(value, name)
        if value is None:
            return None
    return value


def _batched(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    lines = iter(lines)
    while batch := list(islice(lines, size)):
        yield batch


def _write(lines: Iterable[str], file: IO[str]) -> int:
    written = 0
    for batch in _batched(lines, ROWS_PER_CHUNK):
        file.write("".join(batch))
        written += len(batch)
    return written
