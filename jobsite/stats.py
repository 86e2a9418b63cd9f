"""The dashboard's job figures (docs/dashboard.md): jobs by status, and jobs created,
completed and failed per hour over the last 24 hours and per day over the last 30 days.

Counting them takes three grouped queries over the jobs table, which at a million jobs is
too slow for every view of the dashboard (about a second). So the figures are a snapshot
kept in the cache: the `jobsite-dashboard-figures` schedule takes a new one every minute on
the cluster, and a view takes one itself when the snapshot is missing or older than
`MAX_AGE` (no cluster running), or when taking the last one was cheap (a small database: its
dashboard is always live). A changed job therefore shows within `MAX_AGE`.

The figures are the jobs table as it is when the snapshot is taken: a job counts as created
in the hour of its `created_at`, completed (or failed) in the hour of its `completed_at`
while its status is completed (or failed); a job reopened since no longer counts there.
Days are local days (TIME_ZONE), made of whole UTC hours, which is exact for every time
zone whose offset is a whole number of hours.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import CharField, Count, Func, QuerySet
from django.utils import timezone
from django_q.models import Schedule

from jobs.models import Job
from jobs.status import JobStatus

HOURS = 24
DAYS = 30
MAX_AGE = timedelta(seconds=90)
# A snapshot that took less than this is taken again on every view: the dashboard is live.
LIVE_BELOW_SECONDS = 0.025
SNAPSHOT_KEY = "jobsite:dashboard-figures:v1"
SCHEDULE_NAME = "jobsite-dashboard-figures"
SCHEDULE_FUNC = "jobsite.tasks.refresh_job_figures_task"
FINISHED = (JobStatus.COMPLETED, JobStatus.FAILED)

logger = logging.getLogger(__name__)


class UtcHour(Func):
    """The UTC hour of a datetime column as text, "YYYY-MM-DD HH", by each database's own
    function (Django's TruncHour calls back into Python for every row on SQLite)."""

    arity = 1
    output_field = CharField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        template = "strftime('%%%%Y-%%%%m-%%%%d %%%%H', %(expressions)s)"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"
        return self.as_sql(compiler, connection, template=template, **extra)


@dataclass(frozen=True)
class Bucket:
    """An hour or a day: when it starts and the jobs created, completed and failed in it."""

    start: datetime
    created: int = 0
    completed: int = 0
    failed: int = 0


@dataclass(frozen=True)
class JobFigures:
    taken_at: datetime
    seconds: float  # how long taking them took
    by_status: dict[str, int] = field(default_factory=dict)
    hours: list[Bucket] = field(default_factory=list)
    days: list[Bucket] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def is_stale(self, now: datetime) -> bool:
        return now - self.taken_at > MAX_AGE


def hour_starts(now: datetime) -> list[datetime]:
    """The starts of the last HOURS clock hours, oldest first; the last one holds `now`."""
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=back) for back in range(HOURS - 1, -1, -1)]


def day_starts(now: datetime) -> list[datetime]:
    """The starts (local midnight) of the last DAYS local days, oldest first; the last one
    is today."""
    today = timezone.localdate(now)
    dates = [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]
    return [timezone.make_aware(datetime.combine(day, datetime.min.time())) for day in dates]


def _per_hour(jobs: QuerySet, column: str, *extra: str) -> Counter:
    """Counts of `jobs` by the UTC hour of `column` (and the `extra` fields' values)."""
    rows = (
        jobs.annotate(hour=UtcHour(column))
        .values_list("hour", *extra)
        .annotate(n=Count("pk"))
        .order_by()
    )
    return Counter(
        {
            (datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC), *rest[:-1]): rest[-1]
            for hour, *rest in rows
        }
    )


def _buckets(starts: list[datetime], created: Counter, finished: Counter, span: timedelta) -> list:
    """One Bucket per start, summing the hours in [start, next start) (the last one: in
    [start, start + span)); the hours before the first start are left out."""
    end = starts[-1] + span
    totals = [Counter() for _ in starts]
    counted = [((hour, "created"), n) for (hour,), n in created.items()]
    counted += [((hour, status), n) for (hour, status), n in finished.items()]
    for (hour, name), n in counted:
        index = bisect_right(starts, hour) - 1
        if index >= 0 and hour < end:
            totals[index][name] += n
    return [
        Bucket(start=start, created=t["created"], completed=t["completed"], failed=t["failed"])
        for start, t in zip(starts, totals, strict=True)
    ]


def take(now: datetime | None = None) -> JobFigures:
    """The figures counted from the jobs table now."""
    started = time.perf_counter()
    now = now or timezone.now()
    hours, days = hour_starts(now), day_starts(now)
    since = min(hours[0], days[0])
    by_status = dict(
        Job.objects.values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("status", "n")
    )
    created = _per_hour(Job.objects.filter(created_at__gte=since), "created_at")
    finished = _per_hour(
        Job.objects.filter(status__in=FINISHED, completed_at__gte=since), "completed_at", "status"
    )
    return JobFigures(
        taken_at=now,
        seconds=time.perf_counter() - started,
        by_status={status: by_status.get(status, 0) for status in JobStatus.values},
        hours=_buckets(hours, created, finished, timedelta(hours=1)),
        days=_buckets(days, created, finished, timedelta(days=1)),
    )


def refresh() -> JobFigures:
    """Take the figures and keep them as the snapshot views read (when the cache answers:
    otherwise every view takes its own)."""
    figures = take()
    try:
        cache.set(SNAPSHOT_KEY, figures, timeout=None)
    except Exception:
        logger.warning("dashboard figures: the cache did not keep the snapshot", exc_info=True)
    return figures


def current() -> JobFigures:
    """The snapshot, or new figures when it is missing, stale, or cheap to take again."""
    try:
        figures = cache.get(SNAPSHOT_KEY)
    except Exception:
        logger.warning("dashboard figures: the cache did not answer", exc_info=True)
        figures = None
    if (
        not isinstance(figures, JobFigures)
        or figures.is_stale(timezone.now())
        or figures.seconds < LIVE_BELOW_SECONDS
    ):
        figures = refresh()
    return figures


def ensure_refresh_schedule(schedule_model: type, *, using: str = "default") -> None:
    """Keep one `jobsite-dashboard-figures` schedule, every minute (call it after every
    migrate, with the migration state's django_q Schedule)."""
    values = {"func": SCHEDULE_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1}
    schedule_model.objects.using(using).update_or_create(
        name=SCHEDULE_NAME,
        defaults=values,
        create_defaults={**values, "next_run": timezone.now()},
    )
