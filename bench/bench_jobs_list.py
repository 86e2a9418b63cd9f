"""Jobs list benchmark (not a test): `.venv/bin/python bench/bench_jobs_list.py [--rows N]
[--db sqlite|postgres|both]`.

Fills a throwaway database with N jobs (default 1,000,000), one creation event each (most
from 50 imports, the rest from the web page, the admin and the command line), on SQLite
(WAL, as in production) and on PostgreSQL (127.0.0.1:5432, user postgres; a database
created and dropped; skipped with a note when the server is down), each in a child process
of its own. The rows go in raw (multi-row INSERTs / COPY, indexes and the search index's
triggers dropped first), then the indexes and the text-search index are rebuilt.

Then, as a logged-in superuser through Django's test Client with production settings, the
server time (median of --repeat requests after one warm-up) of each list case on `/jobs/`,
side by side with the same question put to the Django admin's changelist of Job, and their
ratio. Besides: a plain `icontains` query over the searched columns (what the stock admin's
search runs), the fixed baseline for text search; and the export's rate (`jobs.export`),
next to a plain `csv.writer` over the same value tuples, and its memory (the peak of Python's
allocations while it writes, traced) for the newest 10,000 jobs and for all of them: flat when
it streams. Goals: every list case at most 30 ms,
a rare search at least 10 times faster than the plain query, export at least 50,000 rows/s.
The machine is shared: the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (
    load_average,
    print_result,
    run_on_databases,
    setup_django,
    throwaway_postgres,
)

STATUSES = ["pending"] * 30 + ["scheduled"] * 15 + ["running"] * 10 + ["completed"] * 35
STATUSES += ["failed"] * 5 + ["cancelled"] * 5
WORDS = "bracket gear hinge mount clip housing lid spacer knob panel frame cover".split()
CUSTOMERS = [f"{word} {kind}" for word in WORDS for kind in ("Ltd", "GmbH", "Corp", "Studio")]
RARE_WORD = "quokka"  # in exactly RARE_MATCHES job names
RARE_MATCHES = 5
NO_MATCH = "zzqx"
IMPORTS = 50  # creation events from imports: 70% of the jobs, in IMPORTS equal runs
IMPORTED_SHARE = 0.7
OTHER_ORIGINS = ["ui"] * 4 + ["admin", "cli"]
PRINTERS = 20
CURSOR_DEPTH = 10_050  # rows before the cursor page: past the list's 10,000 count cap
PAGE_SIZE = 50
ADMIN_PER_PAGE = 100  # the Django admin's list_per_page
ADMIN_DEEPEST_PAGE = 10_000 // ADMIN_PER_PAGE  # the admin offers pages up to 10,000 rows
LIST_GOAL_MS = 30.0
RARE_GOAL_RATIO = 10.0
EXPORT_GOAL_ROWS_PER_SECOND = 50_000
# Jobs the export writes for the small figure of its memory (against all of them).
MEMORY_FEW_ROWS = 10_000

# (label, list page URL, admin changelist URL or None). {cursor}, {name_cursor} and
# {import_id} are filled in once the data is there. The admin's `p` is 1-based; it pages by
# number no further than 10,000 rows, so its side of the deep cases is its deepest page.
CASES = [
    ("first page", "/jobs/", "/admin/jobs/job/"),
    ("one status (failed, 5%)", "/jobs/?status=failed", "/admin/jobs/job/?status__exact=failed"),
    (
        "two statuses (pending, running)",
        "/jobs/?status=pending&status=running",
        "/admin/jobs/job/?status__in=pending,running",
    ),
    ("text, common (gear, ~16%)", "/jobs/?q=gear", "/admin/jobs/job/?q=gear"),
    # The page above leaves this count out and fetches it once shown (docs/search.md).
    ("its count, fetched after the page", "/jobs/count/?q=gear", None),
    (
        f"text, rare ({RARE_MATCHES} matches)",
        f"/jobs/?q={RARE_WORD}",
        f"/admin/jobs/job/?q={RARE_WORD}",
    ),
    ("text, no match", f"/jobs/?q={NO_MATCH}", f"/admin/jobs/job/?q={NO_MATCH}"),
    (
        f"page past {CURSOR_DEPTH:,} rows",
        "/jobs/?cursor={cursor}",
        f"/admin/jobs/job/?p={ADMIN_DEEPEST_PAGE}",
    ),
    (
        f"sort by name, past {CURSOR_DEPTH:,}",
        "/jobs/?sort=name&cursor={name_cursor}",
        f"/admin/jobs/job/?o=2&p={ADMIN_DEEPEST_PAGE}",
    ),
    # Added cases, without a goal: the admin has no such filter.
    ("jobs of one import (1.4%)", "/jobs/?import={import_id}", None),
    ("changed in the admin (5%)", "/jobs/?origin=admin", None),
]
RARE_CASE = f"text, rare ({RARE_MATCHES} matches)"


# --- Django in a child process -------------------------------------------------------------


def progress(message: str) -> None:
    print(f"  [{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- The data ------------------------------------------------------------------------------


def job_rows(rows: int, printer_ids: list[int], imports: list[uuid.UUID], user_id: int) -> Iterator:
    """(job columns, event columns) per job, in id order (ids are 1..rows).

    The imported jobs come first, import after import, each import's jobs created together at
    the import's time (as an import writes them) over the two years; the others at random
    times. A job was last updated within 30 days of its creation."""
    rng = random.Random(7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    span = 2 * 365 * 24 * 3600
    rare = {rows * k // RARE_MATCHES + 3 for k in range(RARE_MATCHES)}
    imported = int(rows * IMPORTED_SHARE)
    per_import = max(1, imported // len(imports))
    for n in range(1, rows + 1):
        number = min((n - 1) // per_import, len(imports) - 1)
        source = imports[number] if n <= imported else None
        if source:
            at = span * (number + 0.5) / len(imports)
            created = start + timedelta(seconds=at, milliseconds=(n - 1) % per_import)
        else:
            created = start + timedelta(seconds=rng.randrange(span))
        updated = created + timedelta(seconds=rng.randrange(30 * 24 * 3600))
        business = rng.random() < 0.3
        words = f"{rng.choice(WORDS)} {RARE_WORD if n in rare else rng.choice(WORDS)}"
        status = rng.choice(STATUSES)
        job = {
            "id": n,
            "name": f"{words} {n:07d}",
            "status": status,
            "priority": rng.randrange(11),
            "is_business": business,
            "customer_name": rng.choice(CUSTOMERS) if business else "",
            "notes": "",
            "file_name": f"part-{n}.gcode",
            "printer_id": rng.choice(printer_ids) if rng.random() < 0.9 else None,
            "reference": f"REF-{n:07d}" if n % 2 else None,
            "created_by_id": user_id,
            "updated_by_id": user_id,
            "created_at": created,
            "updated_at": updated,
            "started_at": created if status in ("running", "completed", "failed") else None,
            "completed_at": updated if status in ("completed", "failed") else None,
            "cancelled_at": updated if status == "cancelled" else None,
            "cancelled_by_id": user_id if status == "cancelled" else None,
            "cancellation_reason": "",
            "version": 1,
            "source_import_id": source,
        }
        event = {
            "job_id": n,
            "actor_id": user_id,
            "kind": "imported" if source else "created",
            "changes": "{}",
            "created_at": created,
            "origin": "import" if source else rng.choice(OTHER_ORIGINS),
            "origin_ref": str(source) if source else "",
        }
        yield job, event


def prepare() -> tuple[Any, list[int], list[uuid.UUID]]:
    """Migrate; add the superuser, the printers and the imports."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from imports.models import ImportJob
    from jobs.models import Printer

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("bench", password="bench-password")
    printers = [Printer.objects.create(name=f"Printer {n:02d}").pk for n in range(1, PRINTERS + 1)]
    imports = [
        ImportJob.objects.create(
            file=f"imports/bench-{n}.csv",
            original_filename=f"bench-{n}.csv",
            file_hash=f"{n:064x}",
            status="completed",
            created_by=user,
        ).pk
        for n in range(IMPORTS)
    ]
    return user, printers, imports


def fill(rows: int, user: Any, printers: list[int], imports: list[uuid.UUID]) -> float:
    from django.db import connection

    started = time.perf_counter()

    def data() -> Iterator:
        return job_rows(rows, printers, imports, user.pk)

    if connection.vendor == "sqlite":
        fill_sqlite(data())
    else:
        fill_postgres(data)
    return time.perf_counter() - started


def _columns(model: Any) -> list[str]:
    return [field.column for field in model._meta.concrete_fields]


def fill_sqlite(data: Iterator) -> None:
    """Multi-row INSERTs (executemany) with the tables' indexes and triggers dropped, then
    the indexes and triggers back and the text-search table rebuilt from the jobs."""
    from django.db import connection

    from jobs.models import Job, JobEvent

    connection.close()
    import sqlite3

    db = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    tables = (Job._meta.db_table, JobEvent._meta.db_table)
    schema = db.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger')"
        f" AND tbl_name IN {tables} AND sql IS NOT NULL"
    ).fetchall()
    for kind, name, _ in schema:
        db.execute(f'DROP {kind.upper()} "{name}"')
    job_columns, event_columns = _columns(Job), [c for c in _columns(JobEvent) if c != "id"]

    def insert(table: str, columns: list[str], values: list[tuple]) -> None:
        marks = ", ".join("?" * len(columns))
        db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)

    def sqlite_value(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, uuid.UUID):
            return value.hex
        return value

    jobs, events = [], []
    for job, event in data:
        jobs.append(tuple(sqlite_value(job[column]) for column in job_columns))
        events.append(tuple(sqlite_value(event[column]) for column in event_columns))
        if len(jobs) == 50_000:
            insert(tables[0], job_columns, jobs)
            insert(tables[1], event_columns, events)
            jobs, events = [], []
    insert(tables[0], job_columns, jobs)
    insert(tables[1], event_columns, events)
    progress("rows in; rebuilding indexes")
    for _, _, sql in schema:
        db.execute(sql)
    search_table = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'job_search'"
    ).fetchone()
    if search_table:
        progress("rebuilding the text-search index")
        db.execute("INSERT INTO job_search(job_search) VALUES ('rebuild')")
    db.execute("COMMIT")
    db.close()


def fill_postgres(data: Callable[[], Iterator]) -> None:
    """COPY with the tables' plain indexes dropped, then the indexes (the trigram ones
    included) back, the id sequences moved past the rows, VACUUM ANALYZE and a CHECKPOINT."""
    from django.db import connection

    from jobs.models import Job, JobEvent

    tables = (Job._meta.db_table, JobEvent._meta.db_table)
    job_columns, event_columns = _columns(Job), [c for c in _columns(JobEvent) if c != "id"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            [list(tables)],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        # One COPY at a time on a connection: the rows are made twice rather than kept.
        for table, columns, part in ((tables[0], job_columns, 0), (tables[1], event_columns, 1)):
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for pair in data():
                    copy.write_row([pair[part][column] for column in columns])
        progress("rows in; rebuilding indexes")
        for _, create in indexes:
            cursor.execute(create)
        for table in tables:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) FROM {table}"
            )
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")
        # Write the loaded pages out now, not during the first cases' measurements.
        cursor.execute("CHECKPOINT")


# --- Measuring ------------------------------------------------------------------------------


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up: page cache, connection, template loading
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def cursor_after(sort: str, depth: int) -> str:
    """The list's cursor to the page that starts after `depth` rows in this sort."""
    from jobs.models import Job
    from jobs.paging import paginate

    cursor = None
    for _ in range(depth // 100):
        page = paginate(Job.objects.all(), sort=sort, cursor=cursor, limit=100)
        cursor = page.next_cursor
    assert cursor, "too few rows to page that far"
    return cursor


def request_ms(client: Any, url: str, repeat: int) -> tuple[float | None, int]:
    """Median server time of GET `url`, or None and the status when it does not answer 200."""
    response = client.get(url, secure=True)  # production settings redirect plain HTTP
    if response.status_code != 200:
        return None, response.status_code
    return median_ms(lambda: client.get(url, secure=True), repeat), 200


def plain_icontains_ms(term: str, repeat: int) -> float:
    """The first page of a text search as the stock admin runs it: icontains on every
    searched column, OR'ed, newest first, without the text-search index. (On PostgreSQL the
    trigram indexes serve this very query, so it runs in a transaction that drops them and
    is rolled back.)"""
    from django.db import connection, transaction
    from django.db.models import Q

    from jobs.models import Job

    condition = Q()
    for column in ("name", "customer_name", "reference", "file_name"):
        condition |= Q(**{f"{column}__icontains": term})
    query = Job.objects.filter(condition).order_by("-updated_at", "-id")
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
                    [Job._meta.db_table, "%gin_trgm_ops%"],
                )
                for (name,) in cursor.fetchall():
                    cursor.execute(f'DROP INDEX "{name}"')
        found = len(list(query[:PAGE_SIZE]))
        assert found == RARE_MATCHES, f"{found} jobs match {term!r}, not {RARE_MATCHES}"
        ms = median_ms(lambda: list(query[:PAGE_SIZE]), repeat)
        transaction.set_rollback(True)
    return ms


class NullWriter(io.TextIOBase):
    """A text sink: the export's own work, not the disk's."""

    def write(self, text: str) -> int:
        return len(text)


def newest_first():
    """Every job, newest first: what the export writes (the list's default sort)."""
    from jobs.models import Job
    from jobs.paging import sorted_by

    return sorted_by(Job.objects.all(), "-updated")


def export_rates(repeat: int) -> dict[str, Any]:
    """Rows/s of `jobs.export.write_csv` / `write_jsonl` over every job, newest first, and of
    a plain csv.writer over the same value tuples (no formula guard) as the anchor."""
    from jobs import export

    queryset = newest_first()
    result: dict[str, Any] = {}
    for name, write in (("csv", export.write_csv), ("jsonl", export.write_jsonl)):
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            rows = write(queryset, NullWriter())
            runs.append(time.perf_counter() - started)
        result[name] = {"rows": rows, "seconds": statistics.median(runs)}

    def plain() -> int:
        writer = csv.writer(NullWriter())
        count = 0
        columns = [path for _, path in export.CSV_COLUMNS]
        for row in queryset.values_list(*columns).iterator(chunk_size=2000):
            writer.writerow(row)
            count += 1
        return count

    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = plain()
        runs.append(time.perf_counter() - started)
    result["plain_csv"] = {"rows": rows, "seconds": statistics.median(runs)}
    return result


def export_peak_bytes(rows: int | None) -> int:
    """The peak of Python's allocations (tracemalloc) while `jobs.export.write_csv` writes
    the newest `rows` jobs (None: every job)."""
    from jobs import export

    queryset = newest_first()
    if rows is not None:
        queryset = queryset[:rows]
    tracemalloc.start()
    try:
        export.write_csv(queryset, NullWriter())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(rows: int, repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client

    user, printers, imports = prepare()
    progress(f"{connection.vendor}: filling {rows:,} jobs and their events")
    out: dict[str, Any] = {
        "vendor": connection.vendor,
        "fill_seconds": fill(rows, user, printers, imports),
    }
    progress(f"filled in {out['fill_seconds']:.0f} s; measuring")
    client = Client()
    client.force_login(user)
    values = {
        "cursor": cursor_after("-updated", CURSOR_DEPTH),
        "name_cursor": cursor_after("name", CURSOR_DEPTH),
        "import_id": imports[len(imports) // 2],
    }
    cases = []
    for label, list_url, admin_url in CASES:
        list_ms, list_status = request_ms(client, list_url.format(**values), repeat)
        admin_ms, admin_status = (
            request_ms(client, admin_url.format(**values), repeat) if admin_url else (None, None)
        )
        cases.append(
            {
                "label": label,
                "list_ms": list_ms,
                "list_status": list_status,
                "admin_ms": admin_ms,
                "admin_status": admin_status,
            }
        )
        progress(f"{label}: list {_ms(list_ms, list_status)}, admin {_ms(admin_ms, admin_status)}")
    out["cases"] = cases
    out["icontains_ms"] = plain_icontains_ms(RARE_WORD, repeat)
    progress("export")
    out["export"] = export_rates(1 if rows >= 200_000 else 3)
    progress("export's memory")
    out["export_peak"] = {"few": export_peak_bytes(MEMORY_FEW_ROWS), "all": export_peak_bytes(None)}
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
        with throwaway_postgres("jobsite_bench_list") as url:
            setup_django(var_dir, url)
            result = measure(args.rows, args.repeat)
    print_result(result)


# --- The report ----------------------------------------------------------------------------


def _ms(ms: float | None, status: int | None) -> str:
    if status is None:
        return "—"
    if ms is None:
        return f"HTTP {status}"
    return f"{ms:.1f}"


def _ratio(slow: float | None, fast: float | None) -> str:
    return f"{slow / fast:.1f}×" if slow and fast else "—"


def report(results: dict[str, dict[str, Any]], rows: int, repeat: int) -> None:
    names = list(results)
    print(
        f"\n{rows:,} jobs. Server time in ms, median of {repeat} requests after one warm-up;"
        " ×: the admin's time over the list's."
    )
    width = 34
    header = f"{'case':<{width}}"
    for name in names:
        header += f" | {name + ' list':>15} {'admin':>8} {'×':>6}"
    print(f"\n{header} | goal ≤ {LIST_GOAL_MS:.0f} ms")
    print("-" * len(header) + "-" * 18)
    for index, (label, _, _) in enumerate(CASES):
        line = f"{label:<{width}}"
        verdicts = []
        for name in names:
            case = results[name]["cases"][index]
            list_ms, admin_ms = case["list_ms"], case["admin_ms"]
            line += f" | {_ms(list_ms, case['list_status']):>15}"
            line += f" {_ms(admin_ms, case['admin_status']):>8} {_ratio(admin_ms, list_ms):>6}"
            if case["admin_status"] is None:  # an added case: the goal names the others
                verdicts.append(f"{name}: no goal")
                continue
            met = list_ms is not None and list_ms <= LIST_GOAL_MS
            verdicts.append(f"{name}: {'met' if met else 'MISSED'}")
        print(f"{line} | {', '.join(verdicts)}")

    per_import = int(rows * IMPORTED_SHARE) // IMPORTS
    admin_share = OTHER_ORIGINS.count("admin") / len(OTHER_ORIGINS) * (1 - IMPORTED_SHARE)
    print(
        f"\nThe admin pages by number up to 10,000 rows: its side of the two deep cases is its"
        f" deepest page (rows {10_000 - ADMIN_PER_PAGE + 1:,} to 10,000). One import: its"
        f" {per_import:,} jobs, created together halfway through the two years the jobs span."
        f" origin=admin: the {admin_share:.0%} of jobs created in the admin."
    )
    print(f"\nRare text search ({RARE_MATCHES} matches) against the plain icontains query:")
    for name in names:
        result = results[name]
        rare = next(case for case in result["cases"] if case["label"] == RARE_CASE)["list_ms"]
        times = rare and result["icontains_ms"] / rare
        verdict = "met" if times and times >= RARE_GOAL_RATIO else "MISSED"
        print(
            f"  {name}: list page {_ms(rare, 200)} ms (whole request), plain icontains first"
            f" page {result['icontains_ms']:.1f} ms (query alone): {times or 0:.1f}× faster"
            f" (goal ≥ {RARE_GOAL_RATIO:.0f}×: {verdict})"
        )

    print("\nExport of every job, newest first (rows/s):")
    for name in names:
        export = results[name]["export"]
        rate = {key: value["rows"] / value["seconds"] for key, value in export.items()}
        verdict = "met" if rate["csv"] >= EXPORT_GOAL_ROWS_PER_SECOND else "MISSED"
        print(
            f"  {name}: CSV {rate['csv']:,.0f} (goal ≥ {EXPORT_GOAL_ROWS_PER_SECOND:,}: {verdict}),"
            f" JSON lines {rate['jsonl']:,.0f}; a plain csv.writer over the same tuples"
            f" {rate['plain_csv']:,.0f} (the export at {rate['csv'] / rate['plain_csv']:.2f}×"
            " its rate)"
        )
    print("\nExport's memory (peak of Python's allocations while it writes the CSV):")
    for name in names:
        peak = results[name]["export_peak"]
        print(
            f"  {name}: newest {MEMORY_FEW_ROWS:,} jobs {peak['few'] / 2**20:.1f} MiB,"
            f" every job {peak['all'] / 2**20:.1f} MiB ({peak['all'] / peak['few']:.2f}×)"
        )
    for name in names:
        print(f"  {name}: filled in {results[name]['fill_seconds']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=7, help="requests per figure (median)")
    parser.add_argument("--child", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rows < CURSOR_DEPTH + 2 * PAGE_SIZE:
        parser.error(f"--rows must be at least {CURSOR_DEPTH + 2 * PAGE_SIZE:,}")
    if args.child:
        child(args)
        return

    print(f"Load average at start: {load_average()}  ({os.cpu_count()} CPUs)")
    work = Path(tempfile.mkdtemp(prefix="jobsite-bench-list-"))
    common = ["--work", str(work), "--rows", str(args.rows), "--repeat", str(args.repeat)]
    try:
        results = run_on_databases(__file__, args.db, *common)
        report(results, args.rows, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nLoad average at the end: {load_average()}")


if __name__ == "__main__":
    main()
