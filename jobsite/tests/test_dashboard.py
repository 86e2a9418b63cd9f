"""The dashboard at `/`: its figures against counts taken straight from the jobs table, how
fresh they are, the charts and their tables, and what each user may see."""

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from imports.models import ImportJob
from jobs.models import BulkRun, Job
from jobs.status import JobStatus
from jobsite import stats
from jobsite.tasks import refresh_job_figures_task

PAGE = "/"
NOW = datetime(2026, 3, 29, 14, 25, 7, tzinfo=UTC)  # the day Europe moves its clocks


@pytest.fixture(autouse=True)
def no_snapshot(db: None) -> Iterator[None]:
    """No snapshot from another test (a Redis cache outlives the test's transaction)."""
    cache.delete(stats.SNAPSHOT_KEY)
    yield
    cache.delete(stats.SNAPSHOT_KEY)


def jobs_at(now: datetime) -> list[Job]:
    """Jobs created, completed and failed at times around every kind of bucket boundary,
    inside the windows and just outside them, one reopened (completed_at cleared)."""
    offsets = [
        timedelta(0),
        timedelta(minutes=-25, seconds=-7),  # the current hour's first second
        timedelta(minutes=-25, seconds=-8),  # the hour before's last second
        timedelta(hours=-23, minutes=-25, seconds=-7),  # the oldest hour shown
        timedelta(hours=-23, minutes=-25, seconds=-8),  # just before it
        timedelta(hours=-14, minutes=-25, seconds=-7),  # local midnight in UTC
        timedelta(days=-3, hours=-5),
        timedelta(days=-29, hours=-14, minutes=-25, seconds=-7),  # the oldest day shown
        timedelta(days=-29, hours=-14, minutes=-25, seconds=-8),  # just before it
        timedelta(days=-45),
        timedelta(hours=2),  # in the future (a clock ahead): counted nowhere
    ]
    statuses = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.PENDING, JobStatus.RUNNING]
    jobs = []
    for n, offset in enumerate(offsets * 3):
        status = statuses[n % len(statuses)]
        created = now + offset - timedelta(hours=n % 5)
        finished = now + offset if status in (JobStatus.COMPLETED, JobStatus.FAILED) else None
        jobs.append(
            Job(
                name=f"Job {n}",
                status=status,
                created_at=created,
                updated_at=finished or created,  # every write sets updated_at
                completed_at=finished,
            )
        )
    jobs.append(Job(name="Reopened", status=JobStatus.PENDING, created_at=now, completed_at=None))
    jobs.append(Job(name="Cancelled", status=JobStatus.CANCELLED, created_at=now))
    return Job.objects.bulk_create(jobs)


def counted(start: datetime, end: datetime) -> dict[str, int]:
    """The jobs created, completed and failed in [start, end), counted directly."""
    finished = Job.objects.filter(completed_at__gte=start, completed_at__lt=end)
    return {
        "created": Job.objects.filter(created_at__gte=start, created_at__lt=end).count(),
        "completed": finished.filter(status=JobStatus.COMPLETED).count(),
        "failed": finished.filter(status=JobStatus.FAILED).count(),
    }


def assert_equal_to_direct_counts(figures: stats.JobFigures, now: datetime) -> None:
    assert figures.by_status == {
        status: Job.objects.filter(status=status).count() for status in JobStatus.values
    }
    assert figures.total == Job.objects.count()
    hour_ends = [b.start + timedelta(hours=1) for b in figures.hours]
    day_ends = [*[b.start for b in figures.days[1:]], stats.day_starts(now + timedelta(days=1))[-1]]
    for buckets, ends in ((figures.hours, hour_ends), (figures.days, day_ends)):
        for bucket, end in zip(buckets, ends, strict=True):
            expected = counted(bucket.start, end)
            assert (bucket.created, bucket.completed, bucket.failed) == (
                expected["created"],
                expected["completed"],
                expected["failed"],
            ), bucket.start


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_figures_equal_counts_taken_from_the_database(settings: Any, zone: str) -> None:
    settings.TIME_ZONE = zone
    jobs_at(NOW)
    figures = stats.take(NOW)
    assert len(figures.hours) == stats.HOURS and len(figures.days) == stats.DAYS
    assert figures.hours[-1].start == datetime(2026, 3, 29, 14, tzinfo=UTC)
    assert (
        timezone.localtime(figures.days[-1].start).date()
        == NOW.astimezone(timezone.get_current_timezone()).date()
    )
    assert sum(b.created for b in figures.hours) > 0
    assert sum(b.failed for b in figures.days) > 0
    assert_equal_to_direct_counts(figures, NOW)


def test_no_jobs_counts_zero_everywhere() -> None:
    figures = stats.take(NOW)
    assert figures.total == 0
    assert all(b.created == b.completed == b.failed == 0 for b in figures.hours + figures.days)


def status_counts(html: str) -> dict[str, int]:
    return {
        status: int(count.replace(",", ""))
        for status, count in re.findall(
            r'href="/jobs/\?status=(\w+)" id="status-\w+"><span class="status-count">([\d,]+)',
            html,
        )
    }


def test_page_shows_the_database_counts_with_links_to_the_filtered_list(
    client_for: Callable[..., Client], viewer: User
) -> None:
    jobs_at(timezone.now())
    response = client_for(viewer).get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert status_counts(html) == {
        status: Job.objects.filter(status=status).count() for status in JobStatus.values
    }
    figures = response.context["figures"]
    assert_equal_to_direct_counts(figures, figures.taken_at)


def chart_values(html: str, chart_id: str) -> list[int]:
    svg = html.split(f'<svg id="{chart_id}"', 1)[1].split("</svg>", 1)[0]
    return [int(v) for v in re.findall(r'<rect class="bar bar-\w+"[^>]* data-value="(\d+)"', svg)]


def table_values(html: str, chart_id: str) -> list[int]:
    table = html.split(f'id="{chart_id}-table"', 1)[1].split("</table>", 1)[0]
    return [int(v.replace(",", "")) for v in re.findall(r'<td data-series="\w+">([\d,]+)', table)]


def test_charts_draw_every_bucket_and_their_tables_hold_the_same_numbers(
    client_for: Callable[..., Client], viewer: User
) -> None:
    jobs_at(timezone.now())
    response = client_for(viewer).get(PAGE)
    html = response.content.decode()
    figures = response.context["figures"]
    for chart_id, buckets in (("chart-hours", figures.hours), ("chart-days", figures.days)):
        expected = [n for b in buckets for n in (b.created, b.completed, b.failed)]
        assert chart_values(html, chart_id) == expected
        assert table_values(html, chart_id) == expected
    assert 'style="' not in html and "<script>" not in html


def test_a_fresh_snapshot_is_shown_until_it_is_older_than_max_age(
    client_for: Callable[..., Client], viewer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a large database (counting is not cheap) the view shows the schedule's
    snapshot; once that is MAX_AGE old the view renews it, and a job written since (a new
    JobEvent) is counted again."""
    monkeypatch.setattr(stats, "LIVE_BELOW_JOBS", 0)
    job = Job.objects.create(name="Watched", status=JobStatus.RUNNING)
    client = client_for(viewer)
    refresh_job_figures_task()
    job.apply_changes({"status": JobStatus.FAILED}, actor=viewer, origin="ui")
    assert status_counts(client.get(PAGE).content.decode())["failed"] == 0
    monkeypatch.setattr(stats, "MAX_AGE", timedelta(0))
    assert status_counts(client.get(PAGE).content.decode())["failed"] == 1


def test_renewing_counts_again_only_after_a_write_or_in_another_hour() -> None:
    job = Job.objects.create(name="Counted", status=JobStatus.PENDING, created_at=NOW)
    counted = stats.refresh(NOW)
    assert counted.by_status["pending"] == 1
    # A write without a JobEvent (no path of the app does that) goes unseen until the hour ends.
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SCHEDULED)
    later = NOW + timedelta(minutes=30)
    confirmed = stats.refresh(later)
    assert (confirmed.taken_at, confirmed.by_status) == (later, counted.by_status)
    next_hour = stats.refresh(NOW + timedelta(minutes=40))
    assert next_hour.by_status["scheduled"] == 1
    assert next_hour.hours[-1].start == NOW.replace(hour=15, minute=0, second=0)
    job.refresh_from_db()
    job.apply_changes({"priority": 5}, actor=None, origin="cli")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    assert stats.refresh(NOW + timedelta(minutes=41)).by_status["running"] == 1


def test_cheap_figures_are_counted_on_every_view(
    client_for: Callable[..., Client], viewer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats, "LIVE_BELOW_JOBS", 1_000_000)
    client = client_for(viewer)
    refresh_job_figures_task()
    Job.objects.create(name="New", status=JobStatus.SCHEDULED)  # without a JobEvent, even
    assert status_counts(client.get(PAGE).content.decode())["scheduled"] == 1


def test_the_schedule_is_kept_once_and_its_task_stores_a_snapshot() -> None:
    Schedule.objects.filter(name=stats.SCHEDULE_NAME).delete()
    stats.keep_refresh_schedule(using="default")
    stats.keep_refresh_schedule(using="default")
    schedule = Schedule.objects.get(name=stats.SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        stats.SCHEDULE_FUNC,
        Schedule.MINUTES,
        1,
        -1,
    )
    Job.objects.create(name="Counted")
    assert refresh_job_figures_task()["jobs"] == 1
    assert cache.get(stats.SNAPSHOT_KEY).total == 1


# --- Who sees what --------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client: Client) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_without_view_job_the_page_says_so(
    client_for: Callable[..., Client], outsider: User
) -> None:
    Job.objects.create(name="Secret", status=JobStatus.FAILED)
    response = client_for(outsider).get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "need the permission to view jobs" in html
    assert "Secret" not in html and "chart-hours" not in html and "Recent imports" not in html
    assert "Cluster" not in response.content.decode().split("<main", 1)[1]


def test_no_jobs_yet_links_to_the_import(client_for: Callable[..., Client], editor: User) -> None:
    html = client_for(editor).get(PAGE).content.decode()
    assert "No jobs yet." in html
    assert 'href="/imports/new/" role="button">Import a CSV' in html
    assert "chart-hours" not in html


def imported_by(user: User, name: str) -> ImportJob:
    return ImportJob.objects.create(
        file=f"imports/{name}",
        original_filename=name,
        file_hash=name.encode().hex().ljust(64, "0")[:64],
        status="processing",
        created_by=user,
        estimated_rows=200,
        processed_rows=50,
    )


def test_imports_are_those_the_imports_list_shows(
    client_for: Callable[..., Client], editor: User, viewer: User
) -> None:
    uploader = User.objects.create_user("uploader")
    uploader.user_permissions.set(editor.user_permissions.exclude(codename="view_importjob"))
    imported_by(uploader, "mine.csv")
    imported_by(editor, "theirs.csv")
    own = client_for(uploader).get(PAGE).content.decode()
    assert "mine.csv" in own and "theirs.csv" not in own
    assert 'value="25"' in own  # 50 of 200 rows
    every = client_for(viewer).get(PAGE).content.decode()
    assert "mine.csv" in every and "theirs.csv" in every


def test_bulk_runs_and_history_for_job_viewers(
    client_for: Callable[..., Client], viewer: User, editor: User
) -> None:
    run = BulkRun.objects.create(action="set_priority", new_priority=3, created_by=editor)
    job = Job.objects.create(name="Tracked", status=JobStatus.PENDING)
    job.apply_changes({"priority": 7}, actor=editor, origin="ui", expected_version=job.version)
    html = client_for(viewer).get(PAGE).content.decode()
    assert f'href="{run.get_absolute_url()}"' in html
    assert f'href="{job.get_absolute_url()}">Tracked</a>' in html
    assert "priority: 0 → 7" in html
    assert "cluster-workers" not in html  # staff only, as the Cluster page


def test_staff_see_the_cluster_as_the_cluster_page_does(
    client_for: Callable[..., Client], admin_user: User, task_queue: Any
) -> None:
    assert 'id="cluster-oldest">none waiting' in client_for(admin_user).get(PAGE).content.decode()
    async_task("math.floor", 1.5)
    async_task("math.floor", 2.5)
    response = client_for(admin_user).get(PAGE)
    html = response.content.decode()
    assert f'id="cluster-queued">{task_queue.queue_size()}<' in html
    assert task_queue.queue_size() == 2
    assert re.search(r'id="cluster-oldest">\d+ s<', html)
    cluster_page = client_for(admin_user).get("/cluster/").context
    for key in ("workers", "queued", "broker"):
        assert response.context["cluster"][key] == cluster_page[key]


@pytest.mark.django_db
def test_migrate_keeps_the_figures_schedule() -> None:
    from django_q.models import Schedule

    assert Schedule.objects.filter(name="jobsite-dashboard-figures").count() == 1
