"""Field rules for a job (docs/jobs.md, "Fields"), shared by the edit form, admin and CSV import.

Each function takes raw-ish values and returns the clean value or raises ValidationError with
the message users see, so every surface words a rule the same way.
"""

import re

from django.core.exceptions import ValidationError

from jobs.models import Printer
from jobs.status import InvalidTransition, JobStatus, can_transition

NAME_MAX = 200
CUSTOMER_MAX = 200
NOTES_MAX = 1000
FILE_NAME_MAX = 255
REFERENCE_MAX = 100
YES_NO = {"true": True, "yes": True, "y": True, "1": True}
YES_NO |= {"false": False, "no": False, "n": False, "0": False}
PRIORITY_MIN, PRIORITY_MAX = 0, 10
# JobStatus.values builds a new list at every use; an import checks a status per row.
STATUS_VALUES = frozenset(JobStatus.values)

# Refused in job text (docs/jobs.md, "Fields"): C0 controls (multi-line text keeps its line
# breaks), DEL, C1 controls, and the bidirectional overrides and isolates, which show text in
# another order than it is stored in ("report\u202efdp.exe" shows as "reportexe.pdf").
BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
UNSAFE_IN_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
UNSAFE_IN_TEXT = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}]")


def check_characters(text: str, *, label: str, multiline: bool = False) -> None:
    """Refuse control characters and bidirectional controls, naming the first one found."""
    found = (UNSAFE_IN_TEXT if multiline else UNSAFE_IN_LINE).search(text)
    if found is None:
        return
    char = found.group()
    if char == "\n":
        kind = "a line break"
    elif char == "\r":
        kind = "a carriage return"
    elif "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
        kind = "a bidirectional text control"
    else:
        kind = "a control character"
    raise ValidationError(
        f"{label} contains {kind} (U+{ord(char):04X}); remove it.", code="control_character"
    )


def clean_text(
    value: str | None,
    *,
    label: str,
    max_length: int,
    required: bool = False,
    multiline: bool = False,
) -> str:
    """Trimmed text without control characters; multi-line text keeps its line breaks, each
    as a single newline (a browser sends CR LF)."""
    text = (value or "").strip()
    if multiline:
        text = text.replace("\r\n", "\n")
    check_characters(text, label=label, multiline=multiline)
    if required and not text:
        raise ValidationError(f"{label} is required.", code="required")
    if len(text) > max_length:
        raise ValidationError(
            f"{label} must be at most {max_length} characters (it has {len(text)}).",
            code="max_length",
        )
    return text


def clean_name(value: str | None) -> str:
    return clean_text(value, label="Name", max_length=NAME_MAX, required=True)


def clean_reference(value: str | None) -> str:
    return clean_text(value, label="Reference", max_length=REFERENCE_MAX)


def clean_notes(value: str | None) -> str:
    return clean_text(value, label="Notes", max_length=NOTES_MAX, multiline=True)


def clean_file_name(value: str | None) -> str:
    return clean_text(value, label="File name", max_length=FILE_NAME_MAX)


def safe_upload_name(name: str | None, *, max_length: int = FILE_NAME_MAX) -> str:
    """The name an uploaded file is kept under, without control characters or bidirectional
    controls (removed, not refused: the file itself is what was asked for)."""
    return UNSAFE_IN_LINE.sub("", name or "").strip()[:max_length] or "upload.csv"


def clean_priority(value: int | str | None) -> int:
    if value is None or value == "":
        return 0
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(
            f"Priority must be a whole number from {PRIORITY_MIN} to {PRIORITY_MAX}.",
            code="invalid",
        ) from None
    if not PRIORITY_MIN <= number <= PRIORITY_MAX:
        raise ValidationError(
            f"Priority must be from {PRIORITY_MIN} to {PRIORITY_MAX} (got {number}).",
            code="range",
        )
    return number


def clean_customer(is_business: bool, customer_name: str | None) -> str:
    customer = clean_text(customer_name, label="Customer name", max_length=CUSTOMER_MAX)
    if is_business and not customer:
        raise ValidationError("A business job needs a customer name.", code="required")
    return customer


def check_printer_assignable(printer: Printer | None, current_printer_id: int | None) -> None:
    """An inactive printer may stay on a job that has it, but cannot be newly assigned."""
    if printer is not None and not printer.is_active and printer.pk != current_printer_id:
        raise ValidationError(
            f"Printer “{printer.name}” is inactive and cannot be assigned.", code="inactive"
        )


def check_status(current: str | None, new: str) -> None:
    if current is not None and not can_transition(current, new):
        raise ValidationError(str(InvalidTransition(current, new)), code="transition")


def clean_status_name(value: str) -> str:
    """A status written in any letter case (as CSV files may), as its stored value."""
    status = value.strip().lower()
    if status not in STATUS_VALUES:
        choices = ", ".join(JobStatus.values)
        raise ValidationError(f"Unknown status “{value}”; use one of {choices}.", code="invalid")
    return status


def clean_yes_no(value: str | None) -> bool:
    """true/false, yes/no, y/n or 1/0 in any letter case; empty means false."""
    if value is None or not value.strip():
        return False
    try:
        return YES_NO[value.strip().lower()]
    except KeyError:
        raise ValidationError(
            f"“{value}” is not a yes/no value; use true/false, yes/no, y/n or 1/0.", code="invalid"
        ) from None


def check_printer_found(printer: Printer | None, name: str) -> Printer:
    if printer is None:
        raise ValidationError(f"There is no printer named “{name}”.", code="missing")
    return printer
