"""Tags of base.html for live pages: the change token a page polls with, and the toasts of
the user's runs that finished while they were elsewhere (jobs/live.py)."""

from django import template
from django.http import HttpRequest

from jobs.live import change_token
from jobs.toasts import announcements

register = template.Library()

# The pages whose parts live.js keeps up to date from the change token.
LIVE_VIEWS = frozenset({"jobs:list", "jobs:detail", "jobs:edit"})


@register.simple_tag(takes_context=True)
def live_token(context: template.Context) -> str:
    """The change token on a live page for a logged-in user, "" anywhere else (no query)."""
    request: HttpRequest | None = context.get("request")
    match = request.resolver_match if request is not None else None
    if match is None or match.view_name not in LIVE_VIEWS or not request.user.is_authenticated:
        return ""
    return change_token()


@register.inclusion_tag("jobs/_live_toasts.html", takes_context=True)
def run_toasts(context: template.Context) -> dict[str, list[dict[str, str]]]:
    """The user's runs finished since the last announcement, each once (not on its own page)."""
    request: HttpRequest | None = context.get("request")
    return {"toasts": announcements(request) if request is not None else []}
