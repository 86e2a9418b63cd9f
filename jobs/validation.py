"""Field rules for a job (SPEC sections 1 and 3), shared by the edit form, admin and CSV import.

Each function takes raw-ish values and returns the clean value or raises ValidationError with
the message users see, so every surface words a rule the same way.
"""

from django.core.exceptions import ValidationError

from jobs.models import Printer
from jobs.status import InvalidTransition, can_transition

NAME_MAX = 200
CUSTOMER_MAX = 200
NOTES_MAX = 1000
FILE_NAME_MAX = 255
PRIORITY_MIN, PRIORITY_MAX = 0, 10


def clean_text(value: str | None, *, label: str, max_length: int, required: bool = False) -> str:
    text = (value or "").strip()
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
