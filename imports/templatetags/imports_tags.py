"""Display helpers for import pages: durations and delimiter names."""

from django import template

register = template.Library()

DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


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
