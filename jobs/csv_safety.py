"""CSV that no spreadsheet reads as a formula (CSV injection), for every CSV the app writes.

A spreadsheet runs a cell that starts with = + - @ (or a tab or carriage return before one) as
a formula. Which text becomes a cell depends on the separator the spreadsheet picks (comma,
semicolon, tab or pipe) and on whether it honours quotes, so every field is quoted and a `'`
goes before a dangerous character wherever a cell could start: at the start of a value and
right after any separator or line break inside it (quotes in between count for nothing).
Spreadsheets show the `'` as nothing (it marks text). `formula_unsafe` undoes exactly that
(the CSV import uses it), so an exported value re-imports unchanged: a value that already
has apostrophes there gets one more, and the import takes one away.
"""

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any

# A spreadsheet runs a cell that starts with one of these characters as a formula.
FORMULA_STARTS = "=+-@\t\r"
_FORMULA_CLASS = "[" + "".join(map(re.escape, FORMULA_STARTS)) + "]"
# Where a cell could start inside a value (also behind quotes, which a reader may drop),
# followed by apostrophes, if any, and a character that starts a formula.
CELL_START_BEFORE_FORMULA = re.compile(r'(^|[,;\t|\r\n])("*)' + f"(?='*{_FORMULA_CLASS})")
# The same place with the apostrophe formula_safe put there.
GUARDED_CELL_START = re.compile(r'(^|[,;\t|\r\n])("*)' + f"'(?='*{_FORMULA_CLASS})")


def formula_safe(value: Any) -> str:
    """`value` as text, with a `'` before each formula character that could start a cell."""
    if value is None:
        return ""
    return CELL_START_BEFORE_FORMULA.sub(r"\1\2'", str(value))


def formula_unsafe(text: str) -> str:
    """The value `formula_safe` was given: one `'` fewer wherever it added one."""
    return GUARDED_CELL_START.sub(r"\1\2", text) if "'" in text else text


class _Echo:
    """A write-only file object for csv.writer: hands each line back to the caller."""

    def write(self, line: str) -> str:
        return line


def formula_safe_csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Each row as one CSV line, every field quoted and formula-safe; ready to stream."""
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    for row in rows:
        yield writer.writerow([formula_safe(value) for value in row])
