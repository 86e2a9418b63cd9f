"""Display helpers for import pages: durations and delimiter names."""

from typing import Any

from django import template

from imports.intake import DELIMITER_NAMES
from imports.models import ImportJob
from imports.views import may_cancel as may_cancel_import

register = template.Library()


@register.filter
def duration(seconds: float | int | None) -> str:
    """42 s, 3 min 05 s, 1 h 02 min; an em dash when unknown."""
    if seconds is None:
        return "—"
    total = max(int(round(seconds)), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


@register.filter
def delimiter_name(delimiter: str) -> str:
    if not delimiter:
        return "—"
    return DELIMITER_NAMES.get(delimiter, repr(delimiter))


@register.filter
def may_cancel(user: Any, import_job: ImportJob) -> bool:
    """Whether `user` holds the right to cancel `import_job` (its state aside)."""
    return may_cancel_import(user, import_job)
