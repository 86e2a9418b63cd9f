from datetime import datetime, timedelta
from typing import Any

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs.status import JobStatus, can_transition

register = template.Library()

# The statuses the job page's Reopen takes back to pending (docs/jobs.md, "Status rules").
REOPENABLE = (JobStatus.CANCELLED, JobStatus.FAILED)

# A key no job has, reversed in its place and then replaced by the job's (see `job_url`).
STAND_IN_KEY = 2**62


@register.filter
def change_value(value: Any) -> str:
    """One side of a JobEvent diff as people read it: 0 stays 0, blanks are a dash."""
    if value is None or value == "":
        return "—"
    if value is True or value is False:
        return "yes" if value else "no"
    return str(value)


@register.simple_tag(takes_context=True)
def job_url(context: template.Context, name: str, job: Any) -> str:
    """The URL `jobs:<name>` of `job` (a page of one job: detail, edit, cancel).

    The jobs list renders three for each of its rows; reverse() parses the URL patterns each
    time. Within one render, each name is reversed once, for a stand-in key, and each job's
    key is put in its place.
    """
    patterns = context.render_context.setdefault("job_url_patterns", {})
    if name not in patterns:
        patterns[name] = reverse(f"jobs:{name}", args=[STAND_IN_KEY])
    return patterns[name].replace(str(STAND_IN_KEY), str(job.pk), 1)


# Within this age a moment reads as an age ("3 days ago"); older ones as their local date.
AGE_SHOWN_WITHIN = timedelta(days=7)


@register.filter
def when(moment: datetime | None) -> SafeString | str:
    """`<time>` of a moment, read as "3 hours ago" within a week and as its local date
    before that, with the local date and time as its title; one filter for what a list
    shows in every row. (An age of months, "10 months, 2 weeks ago", says less than the
    date and is also the slowest to word: 2 ms of the list page's time for 50 such rows.)"""
    if moment is None:
        return "—"
    local = timezone.localtime(moment)
    shown = (
        naturaltime(moment)
        if abs(timezone.now() - moment) < AGE_SHOWN_WITHIN
        else local.strftime("%Y-%m-%d")
    )
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.isoformat(),
        local.strftime("%Y-%m-%d %H:%M %Z"),
        shown,
    )


@register.filter
def can_reopen(job: Any) -> bool:
    """Whether the job page offers Reopen: a cancelled or failed job the status rules let
    go back to pending."""
    return job.status in REOPENABLE and can_transition(job.status, JobStatus.PENDING)
