"""Writes the two sample CSV files next to this script; run it again after changing it.

    .venv/bin/python docs/samples/make_samples.py

The output is the same on every run (no randomness), so the files only change when this
script does. The tests count on their shape: 200 valid rows whose printers are the four
below (`seed_demo` creates them, and so does the tests' `sample_printers` fixture), and
8 rows of which rows 3-8 each break exactly one rule.
"""

import csv
from pathlib import Path

HERE = Path(__file__).resolve().parent
VALID_ROWS = 200
STATUSES = ("pending", "scheduled", "running", "completed", "failed", "cancelled")
PARTS = ("Bracket", "Gear", "Hinge", "Knob", "Housing", "Clip", "Spacer", "Mount", "Lid", "Badge")
CUSTOMERS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries")
NOTES = ("PLA, 0.2 mm", "", "PETG, 0.15 mm; Ø 40 mm insert", "")
PRINTERS = ("Prusa MK4 #1", "Prusa MK4 #2", "Bambu X1C", "Form 3")
VALID_HEADER = (
    "name",
    "status",
    "priority",
    "is_business",
    "customer_name",
    "notes",
    "file_name",
    "printer",
    "reference",
)


def valid_row(number: int) -> tuple[str, ...]:
    """Row `number` (1-based) of the valid sample: every status, priority, note and printer
    recurs, a third of the jobs are business jobs, every tenth has no printer."""
    part = PARTS[(number - 1) % len(PARTS)]
    is_business = number % 3 == 1
    customer = f"{CUSTOMERS[(number // 3) % len(CUSTOMERS)]} {number * 3 % 40 + 1}"
    return (
        f"{part} v{(number - 1) // len(PARTS) + 1}",
        STATUSES[number % len(STATUSES)],
        str(number * 6 % 11),
        "yes" if is_business else "no",
        customer if is_business else "",
        NOTES[(number - 1) % len(NOTES)],
        f"{part.lower()}_{number}.3mf",
        "" if number % 10 == 0 else PRINTERS[(number - 1) // 5 % len(PRINTERS)],
        f"ORD-{10000 + number}",
    )


# Row 2 and row 9 are valid; each row in between breaks the one rule its name says.
WITH_ERRORS = (
    ("name", "status", "priority", "is_business", "customer_name", "printer", "reference"),
    ("Good row", "pending", "3", "no", "", "Bambu X1C", "ERR-1"),
    ("", "pending", "3", "no", "", "", "ERR-2"),
    ("Unknown status", "finished", "3", "no", "", "", "ERR-3"),
    ("Business without customer", "pending", "3", "yes", "", "", "ERR-4"),
    ("Unknown printer", "pending", "3", "no", "", "Ender 3", "ERR-5"),
    ("Priority out of range", "pending", "12", "no", "", "", "ERR-6"),
    ("Repeated reference", "pending", "1", "no", "", "", "ERR-1"),
    ("Another good row", "scheduled", "0", "yes", "Globex", "Form 3", "ERR-8"),
)


def write(name: str, rows: list[tuple[str, ...]]) -> None:
    with (HERE / name).open("w", encoding="utf-8", newline="") as file:
        csv.writer(file, lineterminator="\n").writerows(rows)


def main() -> None:
    write("jobs-valid.csv", [VALID_HEADER, *(valid_row(n) for n in range(1, VALID_ROWS + 1))])
    write("jobs-with-errors.csv", list(WITH_ERRORS))


if __name__ == "__main__":
    main()
