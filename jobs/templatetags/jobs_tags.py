from typing import Any

from django import template

register = template.Library()


@register.filter
def change_value(value: Any) -> str:
    """One side of a JobEvent diff as people read it: 0 stays 0, blanks are a dash."""
    if value is None or value == "":
        return "—"
    if value is True or value is False:
        return "yes" if value else "no"
    return str(value)
