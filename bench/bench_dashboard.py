"""Dashboard benchmark (not a test): `.venv/bin/python bench/bench_dashboard.py [--rows N]
[--db sqlite|postgres|both] [--repeat R]`.

Fills a throwaway database with N jobs (default 1,000,000) by bench_jobs_list.py's builder,
on SQLite and on PostgreSQL (skipped with a note when the server is down), each in a child
process of its own. Its two years of jobs are pressed into the last 90 days, so a third of
them fall in the dashboard's 30-day window (the figures' worst case: the more jobs in the
window, the more rows the hourly counts read).

Then, as a logged-in superuser (who sees every part, the cluster's too) through Django's
test Client with production settings, the server time (median of --repeat requests after
one warm-up) of:
- the dashboard `/` while the figures' snapshot is fresh (what views see while the
  `jobsite-dashboard-figures` schedule runs), next to the plain list page `/jobs/` in the
  same run, and their ratio (goal: the dashboard at most 50 ms);
- the jobs list's idle live poll as jobs/live.py describes it (`/jobs/live/?since=<token>`
  with the first page's ids and versions: nothing changed, 204);
- counting the figures (`jobsite.stats.refresh(recount=True)`: what the schedule does every
  minute after a job was written, and a view when the snapshot is missing or stale), and
  confirming them (the schedule's minute when no job was written);
The machine is shared: the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_jobs_list import (
    fill_postgres,
    fill_sqlite,
    job_rows,
    median_ms,
    prepare,
    progress,
    request_ms,
)
from harness import (
    load_average,
    print_result,
    run_on_databases,
    setup_django,
    throwaway_postgres,
)

DASHBOARD_GOAL_MS = 50.0
TAKE_REPEAT = 3
# bench_jobs_list's jobs are created over 2024 and 2025, then updated up to 30 days later.
BUILDER_END = datetime(2026, 1, 1, tzinfo=UTC)
BUILDER_SPAN = timedelta(days=2 * 365)
PRESSED_INTO = timedelta(days=90)
TIME_COLUMNS = ("created_at", "updated_at", "started_at", "completed_at", "cancelled_at")


def recent_rows(rows: int, printers: list[int], imports: list, user_id: int, now: datetime):
    """bench_jobs_list's (job, event) pairs with every time pressed into the 90 days before
    `now` (none after it), keeping their order."""
    scale = PRESSED_INTO / BUILDER_SPAN

    def pressed(moment: datetime | None) -> datetime | None:
        if moment is None:
            return None
        return min(now - (BUILDER_END - moment) * scale, now)

    for job, event in job_rows(rows, printers, imports, user_id):
        for column in TIME_COLUMNS:
            job[column] = pressed(job[column])
        event["created_at"] = job["created_at"]
        yield job, event


def fill(rows: int, user: Any, printers: list[int], imports: list, now: datetime) -> float:
    from django.db import connection

    started = time.perf_counter()

    def data() -> Iterator:
        return recent_rows(rows, printers, imports, user.pk, now)

    if connection.vendor == "sqlite":
        fill_sqlite(data())
    else:
        fill_postgres(data)
    return time.perf_counter() - started


def idle_poll_url() -> str:
    """The jobs list's poll when nothing changed since its first page was rendered."""
    from urllib.parse import urlencode

    from jobs import live
    from jobs.models import Job
    from jobs.views import PAGE_SIZE

    shown = Job.objects.order_by("-updated_at", "-id").values_list("id", "version")[:PAGE_SIZE]
    jobs = ",".join(f"{pk}:{version}" for pk, version in shown)
    return "/jobs/live/?" + urlencode({"since": live.change_token(), "jobs": jobs, "query": ""})


def poll_ms(client: Any, url: str, repeat: int) -> tuple[float | None, int]:
    """Median server time of the idle poll, or None and the status when it is not 204."""
    response = client.get(url, secure=True)
    if response.status_code != 204:
        return None, response.status_code
    return median_ms(lambda: client.get(url, secure=True), repeat), 204


def measure(rows: int, repeat: int) -> dict[str, Any]:
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from jobsite import stats

    user, printers, imports = prepare()
    call_command("createcachetable", verbosity=0)
    now = timezone.now()
    progress(f"{connection.vendor}: filling {rows:,} jobs and their events")
    out: dict[str, Any] = {
        "vendor": connection.vendor,
        "fill_seconds": fill(rows, user, printers, imports, now),
    }
    progress(f"filled in {out['fill_seconds']:.0f} s; measuring")
    client = Client()
    client.force_login(user)

    take_runs = []
    for _ in range(TAKE_REPEAT):
        started = time.perf_counter()
        figures = stats.refresh(recount=True)
        take_runs.append((time.perf_counter() - started) * 1000)
    out["take_ms"] = statistics.median(take_runs)
    out["in_window"] = sum(bucket.created for bucket in figures.days)
    progress(f"counting the figures: {out['take_ms']:.0f} ms ({out['in_window']:,} in 30 days)")
    out["confirm_ms"] = median_ms(stats.refresh, repeat)

    stats.refresh()
    out["dashboard_ms"], out["dashboard_status"] = request_ms(client, "/", repeat)
    out["snapshot_age_s"] = (timezone.now() - stats.current().taken_at).total_seconds()
    out["list_ms"], out["list_status"] = request_ms(client, "/jobs/", repeat)
    progress(f"dashboard {out['dashboard_ms']} ms, list {out['list_ms']} ms")

    out["poll_ms"], out["poll_status"] = poll_ms(client, idle_poll_url(), repeat)

    def without_snapshot() -> None:
        cache.delete(stats.SNAPSHOT_KEY)
        client.get("/", secure=True)

    out["cold_dashboard_ms"] = median_ms(without_snapshot, 1)
    connection.close()
    return out


def child(args: argparse.Namespace) -> None:
    work = Path(args.work)
    var_dir = work / f"var-{args.child}"
    var_dir.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", message="No directory at")
    if args.child == "sqlite":
        setup_django(var_dir, f"sqlite:///{var_dir / 'bench.sqlite3'}")
        result = measure(args.rows, args.repeat)
    else:
        with throwaway_postgres("jobsite_bench_dashboard") as url:
            setup_django(var_dir, url)
            result = measure(args.rows, args.repeat)
    print_result(result)


def _ms(ms: float | None, status: int | None = 200) -> str:
    if ms is None:
        return f"HTTP {status}" if status else "—"
    return f"{ms:.1f} ms"


def report(results: dict[str, dict[str, Any]], rows: int, repeat: int) -> None:
    print(f"\n{rows:,} jobs. Server time, median of {repeat} requests after one warm-up.")
    for name, result in results.items():
        dashboard, listing = result["dashboard_ms"], result["list_ms"]
        ratio = f"{dashboard / listing:.2f}×" if dashboard and listing else "—"
        met = dashboard is not None and dashboard <= DASHBOARD_GOAL_MS
        print(f"\n{name} ({result['in_window']:,} jobs created in the last 30 days):")
        print(
            f"  dashboard /, fresh snapshot: {_ms(dashboard, result['dashboard_status'])}"
            f" (goal ≤ {DASHBOARD_GOAL_MS:.0f} ms: {'met' if met else 'MISSED'};"
            f" snapshot {result['snapshot_age_s']:.0f} s old)"
        )
        print(f"  jobs list /jobs/:            {_ms(listing, result['list_status'])}")
        print(f"  dashboard / list page:       {ratio}")
        poll = _ms(result["poll_ms"], result["poll_status"])
        print(f"  idle live poll /jobs/live/:  {poll} (list page / poll:", end=" ")
        print(f"{listing / result['poll_ms']:.1f}×)" if listing and result["poll_ms"] else "—)")
        print(
            f"  counting the figures (the schedule's minute after a write):"
            f" {result['take_ms']:.0f} ms (median of {TAKE_REPEAT}); confirming them (a minute"
            f" without writes): {result['confirm_ms']:.1f} ms; a view with no snapshot:"
            f" {result['cold_dashboard_ms']:.0f} ms"
        )
        print(f"  filled in {result['fill_seconds']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=15, help="requests per figure (median)")
    parser.add_argument("--child", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    print(f"Load average at start: {load_average()}  ({os.cpu_count()} CPUs)")
    work = Path(tempfile.mkdtemp(prefix="jobsite-bench-dashboard-"))
    common = ["--work", str(work), "--rows", str(args.rows), "--repeat", str(args.repeat)]
    try:
        results = run_on_databases(__file__, args.db, *common)
        report(results, args.rows, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nLoad average at the end: {load_average()}")


if __name__ == "__main__":
    main()
