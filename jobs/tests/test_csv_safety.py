"""The formula-safe CSV writer: however a spreadsheet splits a line, no cell starts a formula."""

import csv
import io
import re

from hypothesis import given
from hypothesis import strategies as st

from jobs.csv_safety import formula_safe, formula_safe_csv_lines, formula_unsafe

SEPARATORS = [",", ";", "\t", "|"]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
NASTY = [
    "ok2;pending;1;x;=1+1",
    '=HYPERLINK("http://x")',
    "a,+1,b",
    "a|@SUM(A1)",
    "a\t-1",
    "a;\t=1",
    "\t\t=1",
    "line one\n=2+2",
    "line one\r\n@x",
    '"=1+1"',
    "a;;=1",
    "-",
    "",
    None,
    -5,
    42,
]


def cells_of(text: str) -> list[str]:
    """Every cell of every line, split naively and as quote-aware readers split them."""
    cells = []
    for line in re.split(r"\r\n|\n|\r", text):
        for separator in SEPARATORS:
            for cell in line.split(separator):
                cells.append(cell)
                if cell.startswith('"'):
                    cells.append(cell[1:])  # what a reader that drops the opening quote sees
    for separator in SEPARATORS:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=separator):
            # Reading with the wrong separator misaligns quotes, and a field can swallow the
            # line end that follows it: that break is not the start of the cell's text.
            cells.extend(cell.rstrip("\r\n") for cell in row)
    return cells


def assert_no_formula_cell(text: str) -> None:
    dangerous = [cell for cell in cells_of(text) if cell.startswith(DANGEROUS)]
    assert not dangerous, (text, dangerous)


def test_every_nasty_value_is_safe_on_every_separator() -> None:
    text = "".join(formula_safe_csv_lines([NASTY, list(reversed(NASTY))]))
    assert_no_formula_cell(text)


def test_every_field_is_quoted_and_reads_back() -> None:
    lines = list(formula_safe_csv_lines([["=1", "plain", 3, None]]))
    assert lines == ['"\'=1","plain","3",""\r\n']


def test_the_red_team_row_gets_a_quote_before_the_formula() -> None:
    assert formula_safe("ok2;pending;1;x;=1+1") == "ok2;pending;1;x;'=1+1"


def test_values_without_a_formula_start_are_unchanged() -> None:
    for value in ["plain", "a=b", "a, b", "1-2", "x@example.com", "a; -1"]:
        assert formula_safe(value) == value


@given(st.lists(st.text(alphabet=st.sampled_from("=+-@\t\r\n,;|\"'ab 1"), max_size=12), max_size=5))
def test_any_row_is_safe(row: list[str]) -> None:
    assert_no_formula_cell("".join(formula_safe_csv_lines([row])))


def test_an_apostrophe_already_before_a_formula_is_doubled() -> None:
    assert formula_safe("'=1") == "''=1"
    assert formula_safe("a,'-b") == "a,''-b"
    assert formula_unsafe("''=1") == "'=1"


@given(st.text(alphabet=st.sampled_from("=+-@\t\r\n,;|\"'ab 1"), max_size=20))
def test_the_import_reads_back_exactly_what_was_exported(value: str) -> None:
    assert formula_unsafe(formula_safe(value)) == value
