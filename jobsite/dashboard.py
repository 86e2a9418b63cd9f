"""The dashboard at `/` (docs/dashboard.md): jobs by status, throughput charts, recent
imports and bulk runs, the cluster's health and the latest job history.

Each part shows what its own page would show this user: the job figures, bulk runs and
history need `jobs.view_job`; imports are those the imports list shows them; the cluster is
for staff, as on the Cluster page. The figures come from `jobsite.stats` (a snapshot at most
`stats.MAX_AGE` old); the charts are SVG drawn here, each with a table of the same numbers.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_safe

from imports.models import ImportJob
from jobs.models import BulkRun, JobEvent
from jobs.status import JobStatus
from jobsite import stats
from jobsite.views import cluster_health

logger = logging.getLogger(__name__)

RECENT_RUNS = 5
RECENT_EVENTS = 10
CHANGES_SHOWN = 3  # fields of an event's diff shown; a creation's diff is not shown
SERIES = (("created", "Created"), ("completed", "Completed"), ("failed", "Failed"))

# The charts' drawing, in SVG user units (the picture scales to the page's width).
CHART_WIDTH = 720
CHART_HEIGHT = 220
PLOT_LEFT = 56  # room for the y-axis labels
PLOT_TOP = 10
PLOT_BOTTOM = 24  # room for the x-axis labels
BAR_SHARE = 0.8  # of a bucket's width; the rest is the gap to the next bucket
HOURS_TITLE = "Jobs created, completed and failed per hour, last 24 hours"
DAYS_TITLE = "Jobs created, completed and failed per day, last 30 days"


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def compact(value: int) -> str:
    """An axis label: 950, 2.5k, 1M."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return str(value)


def bar_chart(
    chart_id: str, title: str, buckets: list[stats.Bucket], *, label_format: str, label_every: int
) -> SafeString:
    """An SVG bar chart: a group of bars per bucket (one per series, each with its value in
    `data-value`), lines at 0, half and the top (labelled but for 0), and every
    `label_every`th bucket's label. Built here rather than in a template, which spends tens
    of milliseconds on its 300 elements. Colours and fonts are the stylesheet's."""
    plot_width = CHART_WIDTH - PLOT_LEFT
    plot_height = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    base = PLOT_TOP + plot_height
    top = nice_ceiling(max((getattr(b, name) for b in buckets for name, _ in SERIES), default=0))
    slot = plot_width / len(buckets)
    bar_width = slot * BAR_SHARE / len(SERIES)
    bars = []
    for index, bucket in enumerate(buckets):
        left = PLOT_LEFT + index * slot + slot * (1 - BAR_SHARE) / 2
        for position, (name, _) in enumerate(SERIES):
            value = getattr(bucket, name)
            height = plot_height * value / top
            bars.append(
                f'<rect class="bar bar-{name}" x="{left + position * bar_width:.2f}"'
                f' y="{base - height:.2f}" width="{bar_width:.2f}" height="{height:.2f}"'
                f' data-value="{value}"></rect>'
            )
    grid = [
        f'<line class="chart-grid" x1="{PLOT_LEFT}" x2="{CHART_WIDTH}" y1="{y:.2f}" y2="{y:.2f}">'
        f"</line>"
        for value in (0, top / 2, top)
        for y in [base - plot_height * value / top]
    ]
    # The half and the top are labelled; the base line is zero (its label would meet the
    # first bucket's).
    grid += [
        f'<text class="chart-label" x="{PLOT_LEFT - 6}" y="{base - plot_height * value / top:.2f}"'
        f' text-anchor="end" dominant-baseline="middle">{compact(value)}</text>'
        for value in sorted({top // 2, top} - {0})
    ]
    labels = [
        f'<text class="chart-label" x="{PLOT_LEFT + (index + 0.5) * slot:.2f}"'
        f' y="{CHART_HEIGHT - 6}" text-anchor="middle">'
        f"{escape(timezone.localtime(bucket.start).strftime(label_format))}</text>"
        for index, bucket in enumerate(buckets)
        if index % label_every == 0
    ]
    # The markup is numbers, SERIES' names and escaped labels: safe as it is.
    return format_html(
        '<svg id="{id}" class="bar-chart" viewBox="0 0 {width} {height}" role="img"'
        ' aria-labelledby="{id}-title"><title id="{id}-title">{title}</title>{body}</svg>',
        id=chart_id,
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        title=title,
        body=mark_safe("".join(grid + bars + labels)),
    )


def rows(buckets: list[stats.Bucket], label_format: str) -> list[dict[str, Any]]:
    return [
        {"label": timezone.localtime(b.start).strftime(label_format), "bucket": b} for b in buckets
    ]


def job_context(figures: stats.JobFigures) -> dict[str, Any]:
    return {
        "figures": figures,
        "statuses": [
            (value, label, figures.by_status.get(value, 0)) for value, label in JobStatus.choices
        ],
        "series": SERIES,
        "hours_chart": bar_chart(
            "chart-hours", HOURS_TITLE, figures.hours, label_format="%H:00", label_every=6
        ),
        "days_chart": bar_chart(
            "chart-days", DAYS_TITLE, figures.days, label_format="%b %d", label_every=5
        ),
        "hours_title": HOURS_TITLE,
        "days_title": DAYS_TITLE,
        "hours_rows": rows(figures.hours, "%a %H:00"),
        "days_rows": rows(figures.days, "%a %b %d"),
        "max_age_seconds": int(stats.MAX_AGE.total_seconds()),
    }


def recent_activity() -> list[tuple[JobEvent, list[tuple[str, Any, Any]]]]:
    """The latest job events, newest first, each with the first fields of its diff."""
    events = JobEvent.objects.select_related("job", "actor").order_by("-id")[:RECENT_EVENTS]
    return [
        (
            event,
            []
            if event.kind in (JobEvent.Kind.CREATED, JobEvent.Kind.IMPORTED)
            else [(name, *change) for name, change in event.changes.items()][:CHANGES_SHOWN],
        )
        for event in events
    ]


def visible_imports(user: Any) -> Any:
    """The imports the imports list shows `user` (every one, their own, or none)."""
    imports = ImportJob.objects.select_related("created_by").order_by("-created_at")
    if user.has_perm("imports.view_importjob"):
        return imports
    if user.has_perm("imports.add_importjob"):
        return imports.filter(created_by=user)
    return None


def cluster_context(now: Any) -> dict[str, Any]:
    """The cluster's health, or why it cannot be shown (the cache or broker is down)."""
    try:
        return {"cluster": cluster_health(now)}
    except Exception:
        logger.warning("dashboard: cluster status unavailable", exc_info=True)
        return {"cluster": None, "cluster_unavailable": True}


@require_safe
@login_required
def dashboard(request: HttpRequest) -> TemplateResponse:
    user = request.user
    context: dict[str, Any] = {
        "may_view_jobs": user.has_perm("jobs.view_job"),
        "may_upload": user.has_perm("imports.add_importjob"),
    }
    if context["may_view_jobs"]:
        context.update(job_context(stats.current()))
        context["bulk_runs"] = list(
            BulkRun.objects.select_related("created_by", "new_printer").order_by("-created_at")[
                :RECENT_RUNS
            ]
        )
        context["events"] = recent_activity()
    imports = visible_imports(user)
    if imports is not None:
        context["imports"] = list(imports[:RECENT_RUNS])
    if user.is_staff:
        context.update(cluster_context(timezone.now()))
    return TemplateResponse(request, "jobsite/dashboard.html", context)
