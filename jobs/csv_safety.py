"""CSV that no spreadsheet reads as a formula (CSV injection), for every CSV the app writes.

A spreadsheet runs a cell that starts with = + - @ (or a tab or carriage return before one) as
a formula. Which text becomes a cell depends on the separator the spreadsheet picks (comma,
semicolon, tab or pipe) and on whether it honours quotes, so every field is quoted and a `'`
goes before a dangerous character wherever a cell could start: at the start of a value and
right after any separator or line break inside it (quotes in between count for nothing).
Spreadsheets show the `'` as nothing (it marks text), and the CSV import drops one leading `'`
before these characters.
"""

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any

# A spreadsheet runs a cell that starts with one of these characters as a formula.
FORMULA_STARTS = "=+-@\t\r"
# Where a cell could start inside a value (also behind quotes, which a reader may drop),
# followed by a character that starts a formula.
CELL_START_BEFORE_FORMULA = re.compile(
    r'(^|[,;\t|\r\n])("*)(?=[' + "".join(map(re.escape, FORMULA_STARTS)) + "])"
)


def formula_safe(value: Any) -> str:
    """`value` as text, with a `'` before each formula character that could start a cell."""
    if value is None:
        return ""
    return CELL_START_BEFORE_FORMULA.sub(r"\1\2'", str(value))


class _Echo:
    """A write-only file object for csv.writer: hands each line back to the caller."""

    def write(self, line: str) -> str:
        return line


def formula_safe_csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Each row as one CSV line, every field quoted and formula-safe; ready to stream."""
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    for row in rows:
        yield writer.writerow([formula_safe(value) for value in row])
