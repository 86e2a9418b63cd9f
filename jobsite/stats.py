"""The dashboard's job figures (docs/dashboard.md): jobs by status, and jobs created,
completed and failed per hour over the last 24 hours and per day over the last 30 days.

Counting them takes three grouped queries over the jobs table, which at a million jobs is
too slow for every view of the dashboard (seconds). So the figures are a snapshot kept in the
cache, renewed by the `jobsite-dashboard-figures` schedule every minute on the cluster, and by
a view when the snapshot is missing or older than `MAX_AGE` (no cluster running). Renewing
counts again only when a job was written since (the newest JobEvent id moved: every write of
a job writes one) or the clock entered another hour; otherwise it confirms the snapshot with
one look at that id. Figures of a small database (`LIVE_BELOW_JOBS`) are counted again on
every view: its dashboard is always live. A changed job therefore shows within `MAX_AGE`; a
job deleted without an event (the admin's delete) within the hour.

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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.core.cache import cache
from django.db.models import CharField, Count, Func, Max, QuerySet
from django.utils import timezone
from django_q.models import Schedule

from jobs.models import Job, JobEvent
from jobs.status import JobStatus

HOURS = 24
DAYS = 30
MAX_AGE = timedelta(seconds=90)
# Figures of fewer jobs than this (a few milliseconds to count) are counted again on every
# view: a small site's dashboard is always live. By the number of jobs, not the time the last
# count took, so that a busy moment does not turn a small site's dashboard stale.
LIVE_BELOW_JOBS = 20_000
SNAPSHOT_KEY = "jobsite:dashboard-figures:v2"
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
    taken_at: datetime  # when they were last known true (counted, or confirmed since)
    seconds: float  # how long counting them took
    event_id: int  # the newest JobEvent id when they were counted
    by_status: dict[str, int] = field(default_factory=dict)
    hours: list[Bucket] = field(default_factory=list)
    days: list[Bucket] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def is_stale(self, now: datetime) -> bool:
        return now - self.taken_at > MAX_AGE

    def still_true(self, now: datetime, event_id: int) -> bool:
        """No job was written since they were counted, and the hours shown are the same."""
        return event_id == self.event_id and hour_starts(now) == hour_starts(self.taken_at)


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


def newest_event_id() -> int:
    """The newest JobEvent's id (0 for none), read from the primary key's index."""
    return JobEvent.objects.aggregate(newest=Max("pk"))["newest"] or 0


def take(now: datetime | None = None) -> JobFigures:
    """The figures counted from the jobs table now."""
    started = time.perf_counter()
    now = now or timezone.now()
    event_id = newest_event_id()  # before counting: a write meanwhile is counted again
    hours, days = hour_starts(now), day_starts(now)
    since = min(hours[0], days[0])
    by_status = dict(
        Job.objects.values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("status", "n")
    )
    created = _per_hour(Job.objects.filter(created_at__gte=since), "created_at")
    # Every write that sets completed_at sets updated_at to the same moment, so a job
    # finished since `since` was updated since then: the (status, updated_at) index finds
    # the candidates (completed_at has no index of its own).
    recent = Job.objects.filter(status__in=FINISHED, updated_at__gte=since)
    finished = _per_hour(recent.filter(completed_at__gte=since), "completed_at", "status")
    return JobFigures(
        taken_at=now,
        seconds=time.perf_counter() - started,
        event_id=event_id,
        by_status={status: by_status.get(status, 0) for status in JobStatus.values},
        hours=_buckets(hours, created, finished, timedelta(hours=1)),
        days=_buckets(days, created, finished, timedelta(days=1)),
    )


def _snapshot() -> JobFigures | None:
    try:
        figures = cache.get(SNAPSHOT_KEY)
    except Exception:
        logger.warning("dashboard figures: the cache did not answer", exc_info=True)
        return None
    return figures if isinstance(figures, JobFigures) else None


def refresh(now: datetime | None = None, *, recount: bool = False) -> JobFigures:
    """Renew the snapshot views read: confirm it when still true (unless `recount`), else
    count the figures again. Without a cache that answers, every view counts its own."""
    now = now or timezone.now()
    figures = None if recount else _snapshot()
    if figures is not None and figures.still_true(now, newest_event_id()):
        figures = replace(figures, taken_at=now)
    else:
        figures = take(now)
    try:
        cache.set(SNAPSHOT_KEY, figures, timeout=None)
    except Exception:
        logger.warning("dashboard figures: the cache did not keep the snapshot", exc_info=True)
    return figures


def current() -> JobFigures:
    """The snapshot while it is fresh; renewed when stale; counted again when missing or
    cheap to count."""
    figures = _snapshot()
    if figures is None or figures.total < LIVE_BELOW_JOBS:
        return refresh(recount=True)
    if figures.is_stale(timezone.now()):
        return refresh()
    return figures


def keep_refresh_schedule(*, using: str, apps: Apps | None = None, **kwargs: Any) -> None:
    """A post_migrate receiver (jobsite's AppConfig connects it): after every migrate, keep
    the `jobsite-dashboard-figures` schedule in place."""
    apps = apps or global_apps  # `flush` (transactional tests) sends post_migrate without apps
    try:
        schedule_model = apps.get_model("django_q", "Schedule")
    except LookupError:  # django_q migrated to zero: nothing to keep
        return
    ensure_refresh_schedule(schedule_model, using=using)


def ensure_refresh_schedule(schedule_model: type, *, using: str = "default") -> None:
    """Keep one `jobsite-dashboard-figures` schedule, every minute (call it after every
    migrate, with the migration state's django_q Schedule)."""
    values = {"func": SCHEDULE_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1}
    schedule_model.objects.using(using).update_or_create(
        name=SCHEDULE_NAME,
        defaults=values,
        create_defaults={**values, "next_run": timezone.now()},
    )
