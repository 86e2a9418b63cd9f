"""Import benchmark (not a test): `.venv/bin/python bench/bench_import.py [--rows N]`.

Needs the bench extra (`pip install -e '.[bench]'`: django-import-export). In one run, on
one generated file, on SQLite and then on PostgreSQL (127.0.0.1:5432, user postgres, a
throwaway database created and dropped; skipped with a note when the server is down):

- Jobsite's import (`run_import`: read, check, write jobs and events in batches with their
  checkpoints): new jobs; a re-import of a changed file, in which every row updates its job
  by reference (`generate` says what changes); a re-import of the same file, in which every
  row is unchanged; and once, a re-import that renames every job;
- django-import-export: a `ModelResource` for `Job` with the same columns and
  `import_id_fields = ["reference"]`, for the same three (its defaults otherwise, plus
  `skip_unchanged`);
- a plain `csv.reader` + `Job.objects.bulk_create(batch_size=1000)`: jobs only, no checks;
- the raw driver (sqlite3 / psycopg) writing what Jobsite writes: the jobs and their
  `imported` events, each batch (of the import's IMPORT_BATCH_SIZE) one transaction; on
  PostgreSQL also by COPY, the fastest any client can write them, which bounds what the
  import can reach;
- beside each run of Jobsite's new jobs, one with the text-search index dropped (its triggers
  on SQLite, its GIN indexes on PostgreSQL), the two in alternating order: what the index
  costs the import.

Then, on SQLite, a 10,000 and a 1,000,000-row import, each in a fresh subprocess: their
rates and the peak RSS of the large one, each next to the raw driver writing the same rows
in a fresh database of its own: how much of a slowdown with size is the database's. Every
Jobsite run times each write transaction (outermost `transaction.atomic` block) and reports
the longest. Rates are the median of
--repeat runs (django-import-export: --die-repeat runs). The machine is shared: the load
average is printed at the start and the end, and the goals are checked as ratios to
baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import (
    load_average,
    postgres_reachable,
    print_result,
    run_child,
    setup_django,
    throwaway_postgres,
)

PRINTERS = ("Prusa MK4 #1", "Prusa MK4 #2", "Bambu X1C", "Form 3")
STATUSES = ("pending", "scheduled", "running", "completed", "failed", "cancelled")
COLUMNS = (
    "name",
    "status",
    "priority",
    "is_business",
    "customer_name",
    "notes",
    "file_name",
    "printer",
    "reference",
)
BATCH = 1000  # plain bulk_create's batch; the raw baselines use the import's own
RENAMED = 3  # the file variant that renames every job
SEARCH_MIGRATION = "jobs.migrations.0003_job_search"  # its statements make and drop the index


# --- The files ---------------------------------------------------------------------------


def generate(path: Path, rows: int, variant: int = 0) -> None:
    """Variant 0 is the base file. Variants 1 and 2 change every row of the one imported
    before (1 after 0, then 2, then 1 again), as a daily re-import would: each row's priority
    and notes; pending jobs go to scheduled and back; one row in ten is renamed, and when it
    is a business job its customer changes too. Variant 3 is variant 1 with every job renamed
    (so every row rewrites the job's search index entries as well)."""
    rng = random.Random(42)
    revision = 1 if variant == RENAMED else variant
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for number in range(1, rows + 1):
            business = number % 3 == 0
            status = STATUSES[number % len(STATUSES)]
            if status == "pending" and revision == 1:
                status = "scheduled"
            suffix = f" (rev {revision})" if revision else ""
            renamed = revision if number % 10 == 0 else 0
            name = f"Bracket v{number}" + (suffix if renamed else "")
            writer.writerow(
                [
                    name + (" renamed" if variant == RENAMED else ""),
                    status,
                    (rng.randint(0, 10) + revision) % 11,
                    "yes" if business else "no",
                    f"Customer {(number + renamed) % 97}" if business else "",
                    ("PLA, 0.2 mm" if number % 2 else "") + suffix,
                    f"bracket_{number}.3mf",
                    PRINTERS[number % len(PRINTERS)],
                    f"REF-{number:08d}",
                ]
            )


# --- Django in a child process -------------------------------------------------------------


def prepare_database() -> Any:
    """Migrate, add the printers; return the importing user."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from jobs.models import Printer

    call_command("migrate", verbosity=0)
    for name in PRINTERS:
        Printer.objects.create(name=name)
    return get_user_model().objects.create_user("bench")


def clear_jobs() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("TRUNCATE jobs_jobevent, jobs_job")
            cursor.execute("VACUUM ANALYZE jobs_job")
        else:
            cursor.execute("DELETE FROM jobs_jobevent")
            cursor.execute("DELETE FROM jobs_job")


def drop_search_index() -> None:
    """Drop the text-search index as its migration's reverse does: its triggers on SQLite
    (the FTS5 table stays, unchanged by the writes that follow), its GIN indexes on
    PostgreSQL."""
    migration = importlib.import_module(SEARCH_MIGRATION)
    _run_statements(sqlite=migration.SQLITE_BACKWARD[:-1], postgresql=migration.POSTGRESQL_BACKWARD)


def restore_search_index() -> None:
    """Create the text-search index again, as its migration does, over an empty jobs table:
    on SQLite its triggers, then a rebuild of the FTS5 table kept by drop_search_index."""
    migration = importlib.import_module(SEARCH_MIGRATION)
    _run_statements(sqlite=migration.SQLITE_FORWARD[1:], postgresql=migration.POSTGRESQL_FORWARD)


def _run_statements(*, sqlite: list[str], postgresql: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in sqlite if connection.vendor == "sqlite" else postgresql:
            cursor.execute(statement)


class TransactionTimer:
    """Times every outermost `transaction.atomic` block while active (the write transactions
    of an import: on SQLite each holds the database's write lock from start to end)."""

    def __init__(self) -> None:
        self.durations: list[float] = []

    def __enter__(self) -> TransactionTimer:
        from django.db import connections, transaction

        atomic = transaction.Atomic
        self.original = atomic.__enter__, atomic.__exit__
        enter, leave = self.original
        starts: list[float | None] = []

        def timed_enter(block: Any) -> Any:
            outermost = not connections[block.using or "default"].in_atomic_block
            starts.append(time.perf_counter() if outermost else None)
            return enter(block)

        def timed_exit(block: Any, *exc: Any) -> Any:
            try:
                return leave(block, *exc)
            finally:
                started = starts.pop()
                if started is not None:
                    self.durations.append(time.perf_counter() - started)

        atomic.__enter__, atomic.__exit__ = timed_enter, timed_exit
        return self

    def __exit__(self, *exc: Any) -> None:
        from django.db import transaction

        transaction.Atomic.__enter__, transaction.Atomic.__exit__ = self.original

    @property
    def longest(self) -> float:
        return max(self.durations, default=0.0)


def jobsite_import(path: Path, user: Any, expect: str) -> dict[str, float]:
    """Import `path` through intake and run_import; `expect` names the counter that must hold
    every row (created, updated or skipped)."""
    from imports import intake
    from imports.importer import run_import
    from imports.models import ImportJob

    started = time.perf_counter()
    with path.open("rb") as file:
        info = intake.inspect_upload(file)
        import_job = intake.create_import(
            file, info, user=user, on_error="skip", on_existing="update", enqueue=False
        )
    intake_seconds = time.perf_counter() - started
    with TransactionTimer() as timer:
        started = time.perf_counter()
        run_import(import_job.pk)
        seconds = time.perf_counter() - started
    import_job = ImportJob.objects.get(pk=import_job.pk)
    counted = getattr(import_job, f"{expect}_count")
    if import_job.status != "completed" or import_job.error_count or counted != info.estimated_rows:
        raise SystemExit(
            f"Jobsite import of {path.name} did not go as expected: {import_job.status}, "
            f"{import_job.created_count} created, {import_job.updated_count} updated, "
            f"{import_job.skipped_count} skipped, {import_job.error_count} errors"
        )
    return {
        "rows": counted,
        "seconds": seconds,
        "intake_seconds": intake_seconds,
        "longest_transaction": timer.longest,
        "transactions": len(timer.durations),
    }


# --- The others --------------------------------------------------------------------------


def die_resource() -> Any:
    from import_export import fields, resources, widgets

    from jobs.models import Job, Printer

    class YesNoWidget(widgets.BooleanWidget):
        TRUE_VALUES = ["yes", "true", "1"]
        FALSE_VALUES = ["no", "false", "0"]

    class JobResource(resources.ModelResource):
        printer = fields.Field(
            attribute="printer",
            column_name="printer",
            widget=widgets.ForeignKeyWidget(Printer, field="name"),
        )
        is_business = fields.Field(
            attribute="is_business", column_name="is_business", widget=YesNoWidget()
        )

        class Meta:
            model = Job
            fields = COLUMNS
            import_id_fields = ["reference"]
            skip_unchanged = True
            report_skipped = False

    return JobResource()


def die_import(path: Path, expect: str) -> float:
    import tablib

    started = time.perf_counter()
    dataset = tablib.Dataset().load(path.read_text(encoding="utf-8"), format="csv")
    result = die_resource().import_data(dataset, dry_run=False, raise_errors=True)
    seconds = time.perf_counter() - started
    wanted = {"created": "new", "updated": "update", "skipped": "skip"}[expect]
    if result.totals[wanted] != len(dataset):
        raise SystemExit(f"django-import-export did not {expect} every row: {result.totals}")
    return seconds


def bulk_create_baseline(path: Path) -> float:
    from jobs.models import Job, Printer

    printers = {printer.name: printer.pk for printer in Printer.objects.all()}
    started = time.perf_counter()
    created = 0
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        next(reader)
        batch: list[Job] = []
        for row in reader:
            batch.append(
                Job(
                    name=row[0],
                    status=row[1],
                    priority=int(row[2]),
                    is_business=row[3] == "yes",
                    customer_name=row[4],
                    notes=row[5],
                    file_name=row[6],
                    printer_id=printers[row[7]],
                    reference=row[8],
                )
            )
            if len(batch) == BATCH:
                created += len(Job.objects.bulk_create(batch, batch_size=BATCH))
                batch = []
        if batch:
            created += len(Job.objects.bulk_create(batch, batch_size=BATCH))
    seconds = time.perf_counter() - started
    assert created == Job.objects.count(), created
    return seconds


RAW_JOB_COLUMNS = (
    "name",
    "status",
    "priority",
    "is_business",
    "customer_name",
    "notes",
    "file_name",
    "printer_id",
    "reference",
    "created_by_id",
    "updated_by_id",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "cancelled_at",
    "cancelled_by_id",
    "cancellation_reason",
    "version",
)
RAW_EVENT_COLUMNS = ("job_id", "actor_id", "kind", "changes", "created_at")


def raw_columns(model: Any, given: tuple[str, ...]) -> tuple[list[str], tuple]:
    """The `given` columns and every other column of `model` (so the raw baselines write
    whole rows, whatever the models add); and the others' defaults."""
    others = [
        field
        for field in model._meta.concrete_fields
        if not field.primary_key and field.column not in given
    ]
    return [*given, *(field.column for field in others)], tuple(f.get_default() for f in others)


def raw_insert(model: Any, given: tuple[str, ...], placeholder: str) -> tuple[str, tuple]:
    """An INSERT of a whole row of `model` (see raw_columns); and the defaults it needs."""
    columns, defaults = raw_columns(model, given)
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
        f"VALUES ({', '.join([placeholder] * len(columns))})"
    )
    return sql, defaults


def raw_rows(path: Path, printers: dict[str, int], actor: int, now: Any) -> Any:
    """Batches of (job row, event changes as JSON), as Jobsite writes them, as many rows a
    batch as the import's (IMPORT_BATCH_SIZE)."""
    from django.conf import settings

    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        next(reader)
        batch = []
        for name, status, priority, business, customer, notes, file_name, printer, ref in reader:
            values = {
                "name": name,
                "status": status,
                "priority": int(priority),
                "is_business": business == "yes",
                "customer_name": customer,
                "notes": notes,
                "file_name": file_name,
                "printer": printer,
            }
            changes = json.dumps({k: [None, v] for k, v in values.items() if v not in ("", None)})
            batch.append(
                (
                    (
                        name,
                        status,
                        values["priority"],
                        values["is_business"],
                        customer,
                        notes,
                        file_name,
                        printers[printer],
                        ref,
                        actor,
                        actor,
                        now,
                        now,
                        now if status == "running" else None,
                        now if status in ("completed", "failed") else None,
                        now if status == "cancelled" else None,
                        actor if status == "cancelled" else None,
                        "",
                        1,
                    ),
                    changes,
                )
            )
            if len(batch) == settings.IMPORT_BATCH_SIZE:
                yield batch
                batch = []
        if batch:
            yield batch


def raw_sqlite(path: Path, db_path: str, actor: int) -> float:
    from jobs.models import Job, JobEvent

    connection = sqlite3.connect(db_path, isolation_level=None)
    printers = dict(connection.execute("SELECT name, id FROM jobs_printer"))
    job_sql, job_defaults = raw_insert(Job, RAW_JOB_COLUMNS, "?")
    event_sql, event_defaults = raw_insert(JobEvent, RAW_EVENT_COLUMNS, "?")
    started = time.perf_counter()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    for batch in raw_rows(path, printers, actor, now):
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(job_sql, [(*job, *job_defaults) for job, _ in batch])
        # The batch holds the write lock, so its ids are the last len(batch) ones.
        last = connection.execute("SELECT last_insert_rowid()").fetchone()[0]
        first = last - len(batch) + 1
        connection.executemany(
            event_sql,
            [
                (first + i, actor, "imported", changes, now, *event_defaults)
                for i, (_, changes) in enumerate(batch)
            ],
        )
        connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def raw_postgres(path: Path, url: str, actor: int) -> float:
    import psycopg

    from jobs.models import Job, JobEvent

    job_sql, job_defaults = raw_insert(Job, RAW_JOB_COLUMNS, "%s")
    event_sql, event_defaults = raw_insert(JobEvent, RAW_EVENT_COLUMNS, "%s")
    with psycopg.connect(url) as connection:
        printers = dict(connection.execute("SELECT name, id FROM jobs_printer").fetchall())
        started = time.perf_counter()
        now = datetime.now(UTC)
        for batch in raw_rows(path, printers, actor, now):
            with connection.transaction(), connection.cursor() as cursor:
                cursor.executemany(
                    f"{job_sql} RETURNING id",
                    [(*job, *job_defaults) for job, _ in batch],
                    returning=True,
                )
                ids = []
                while True:
                    ids.append(cursor.fetchone()[0])
                    if not cursor.nextset():
                        break
                cursor.executemany(
                    event_sql,
                    [
                        (job_id, actor, "imported", changes, now, *event_defaults)
                        for job_id, (_, changes) in zip(ids, batch, strict=True)
                    ],
                )
        return time.perf_counter() - started


def raw_postgres_copy(path: Path, url: str, actor: int) -> float:
    """The fastest way any client can write the rows: the keys drawn from the sequence, then
    the jobs and their events by COPY, each batch one transaction. What is left is the
    database's own work for the rows (their indexes, the search index, the foreign keys)."""
    import psycopg

    from jobs.models import Job, JobEvent

    job_columns, job_defaults = raw_columns(Job, RAW_JOB_COLUMNS)
    event_columns, event_defaults = raw_columns(JobEvent, RAW_EVENT_COLUMNS)
    with psycopg.connect(url) as connection:
        printers = dict(connection.execute("SELECT name, id FROM jobs_printer").fetchall())
        started = time.perf_counter()
        now = datetime.now(UTC)
        for batch in raw_rows(path, printers, actor, now):
            with connection.transaction(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence('jobs_job', 'id')) "
                    "FROM generate_series(1, %s)",
                    [len(batch)],
                )
                ids = [found[0] for found in cursor.fetchall()]
                with cursor.copy(
                    f"COPY jobs_job (id, {', '.join(job_columns)}) FROM STDIN"
                ) as copy:
                    for job_id, (job, _) in zip(ids, batch, strict=True):
                        copy.write_row((job_id, *job, *job_defaults))
                with cursor.copy(
                    f"COPY jobs_jobevent ({', '.join(event_columns)}) FROM STDIN"
                ) as copy:
                    for job_id, (_, changes) in zip(ids, batch, strict=True):
                        copy.write_row((job_id, actor, "imported", changes, now, *event_defaults))
        return time.perf_counter() - started


# --- One database --------------------------------------------------------------------------


def measure(work: Path, args: argparse.Namespace, database_url: str) -> dict:
    """Everything on the current database; {measure: [seconds, ...]} and details."""
    from django.conf import settings
    from django.db import connection

    user = prepare_database()
    files = [work / f"jobs-{variant}.csv" for variant in range(RENAMED + 1)]
    out: dict[str, Any] = {"vendor": connection.vendor, "batch_size": settings.IMPORT_BATCH_SIZE}
    timings: dict[str, list[float]] = {}
    longest: dict[str, float] = {}

    def jobsite(name: str, path: Path, expect: str) -> None:
        result = jobsite_import(path, user, expect)
        timings.setdefault(name, []).append(result["seconds"])
        longest[name] = max(longest.get(name, 0.0), result["longest_transaction"])
        out["intake_seconds"] = result["intake_seconds"]

    repeat = args.repeat
    # New jobs, each run paired with one without the text-search index: what the index costs.
    # The pair's order alternates, so that neither side always meets the database just after
    # the other's rows were deleted; the last run keeps its jobs for the re-imports below.
    for run in range(repeat):
        for indexed in (True, False) if (repeat - run) % 2 == 0 else (False, True):
            clear_jobs()
            if indexed:
                jobsite("jobsite_create", files[0], "created")
            else:
                drop_search_index()
                jobsite("jobsite_create_unindexed", files[0], "created")
                clear_jobs()
                restore_search_index()
    for run in range(repeat):  # files 1, 2, 1, ...: each changes every row of the one before
        jobsite("jobsite_changed", files[1 + run % 2], "updated")
    last = files[1 + (repeat - 1) % 2]
    for _ in range(repeat):
        jobsite("jobsite_unchanged", last, "skipped")
    jobsite("jobsite_renamed", files[RENAMED], "updated")

    for _ in range(repeat):
        clear_jobs()
        timings.setdefault("bulk_create", []).append(bulk_create_baseline(files[0]))
    for _ in range(repeat):
        clear_jobs()
        if connection.vendor == "sqlite":
            seconds = raw_sqlite(files[0], str(settings.DATABASES["default"]["NAME"]), user.pk)
        else:
            seconds = raw_postgres(files[0], database_url, user.pk)
        timings.setdefault("raw", []).append(seconds)
    if connection.vendor == "postgresql":
        for _ in range(repeat):
            clear_jobs()
            seconds = raw_postgres_copy(files[0], database_url, user.pk)
            timings.setdefault("raw_copy", []).append(seconds)

    die_files = files[:2]
    if args.die_rows < args.rows:  # the first rows of the same files
        die_files = [work / f"die-{variant}.csv" for variant in range(2)]
        for variant, path in enumerate(die_files):
            generate(path, args.die_rows, variant)
    for _ in range(args.die_repeat):
        clear_jobs()
        timings.setdefault("die_create", []).append(die_import(die_files[0], "created"))
        timings.setdefault("die_changed", []).append(die_import(die_files[1], "updated"))
        timings.setdefault("die_unchanged", []).append(die_import(die_files[1], "skipped"))
    clear_jobs()
    out["timings"] = timings
    out["longest_transaction"] = longest
    return out


def child(args: argparse.Namespace) -> None:
    work = Path(args.work)
    var_dir = work / f"var-{args.child}"
    if args.child == "sqlite":
        setup_django(var_dir)
        result = measure(work, args, "")
    else:
        with throwaway_postgres("jobsite_bench") as url:
            setup_django(var_dir, url)
            result = measure(work, args, url)
    print_result(result)


def scale_child(args: argparse.Namespace) -> None:
    """A fresh SQLite database importing one file (with --scale-raw: the raw driver writing
    its rows); prints its time and this process's peak."""
    var_dir = Path(args.work) / f"var-scale-{os.getpid()}"
    setup_django(var_dir)
    user = prepare_database()
    if args.scale_raw:
        from django.conf import settings

        database = str(settings.DATABASES["default"]["NAME"])
        result = {"seconds": raw_sqlite(Path(args.scale_child), database, user.pk)}
    else:
        result = jobsite_import(Path(args.scale_child), user, "created")
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print_result(result)


# --- The report ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--die-repeat", type=int, default=1, help="django-import-export runs (0: none)"
    )
    parser.add_argument(
        "--die-rows", type=int, help="django-import-export on the first N rows (default: all)"
    )
    parser.add_argument("--scale-rows", type=int, nargs=2, default=[10_000, 1_000_000])
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-scale", action="store_true", help="skip the 1,000,000-row run")
    parser.add_argument("--child", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    parser.add_argument("--scale-child", help=argparse.SUPPRESS)
    parser.add_argument("--scale-raw", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.die_rows = min(args.die_rows or args.rows, args.rows)
    if args.child:
        child(args)
        return
    if args.scale_child:
        scale_child(args)
        return

    print(f"Load average at start: {load_average()}  ({os.cpu_count()} CPUs)")
    work = Path(tempfile.mkdtemp(prefix="jobsite-bench-"))
    common = ["--work", str(work), "--rows", str(args.rows)]
    common += ["--repeat", str(args.repeat), "--die-repeat", str(args.die_repeat)]
    common += ["--die-rows", str(args.die_rows)]
    try:
        for variant in range(RENAMED + 1):
            generate(work / f"jobs-{variant}.csv", args.rows, variant)
        size = (work / "jobs-0.csv").stat().st_size / 1e6
        print(
            f"File: {args.rows:,} rows, {size:.1f} MB. Median of {args.repeat} runs "
            f"(django-import-export: {args.die_repeat}, on the first {args.die_rows:,} rows)."
        )
        results = {"SQLite": run_child(__file__, "--child", "sqlite", *common)}
        why_not = "skipped (--no-postgres)" if args.no_postgres else postgres_reachable()
        if why_not:
            print(f"PostgreSQL half skipped: the server is not reachable ({why_not}).")
        else:
            results["PostgreSQL"] = run_child(__file__, "--child", "postgres", *common)
        report(args.rows, args.die_rows, results)
        if not args.no_scale:
            scale(work, args.scale_rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"Load average at end: {load_average()}")


CREATE, CHANGED, UNCHANGED = "jobsite_create", "jobsite_changed", "jobsite_unchanged"
UNINDEXED = "jobsite_create_unindexed"
LINES = (
    ("jobsite_create", "Jobsite, new jobs"),
    ("jobsite_changed", "Jobsite, re-import of a changed file"),
    ("jobsite_unchanged", "Jobsite, re-import of the same file"),
    ("jobsite_renamed", "Jobsite, re-import renaming every job (1 run)"),
    ("jobsite_create_unindexed", "Jobsite, new jobs, without the search index"),
    ("die_create", "django-import-export, new jobs"),
    ("die_changed", "django-import-export, changed re-import"),
    ("die_unchanged", "django-import-export, unchanged re-import"),
    ("bulk_create", "plain bulk_create(1000), jobs only"),
    ("raw", "raw driver, jobs + events, per-batch transactions"),
    ("raw_copy", "raw COPY, jobs + events, per-batch transactions"),
)


def report(rows: int, die_rows: int, results: dict[str, dict]) -> None:
    names = list(results)
    rates = {
        db: {
            key: (die_rows if key.startswith("die_") else rows) / statistics.median(values)
            for key, values in r["timings"].items()
        }
        for db, r in results.items()
    }
    print()
    print(f"{'rows/s':<48}" + "".join(f"{db:>14}" for db in names))
    for key, label in LINES:
        cells = (f"{rates[db][key]:>14,.0f}" if key in rates[db] else f"{'-':>14}" for db in names)
        print(f"{label:<48}" + "".join(cells))
    print(
        f"{'longest write transaction of a Jobsite run':<48}"
        + "".join(
            f"{max(results[db]['longest_transaction'].values()) * 1000:>11.0f} ms" for db in names
        )
    )
    for key, label in LINES[:4]:
        cells = (
            f"{results[db]['longest_transaction'][key] * 1000:>11.0f} ms"
            if key in results[db]["longest_transaction"]
            else f"{'-':>14}"
            for db in names
        )
        print(f"{'  of which ' + label.split(', ', 1)[1]:<48}" + "".join(cells))
    print(
        f"{'upload checks (hash, decode, estimate)':<48}"
        + "".join(f"{results[db]['intake_seconds']:>12.2f} s" for db in names)
    )
    print()
    # (database, what, numerator, denominator, goal or None)
    goals = [
        ("SQLite", "new jobs / raw driver (jobs + events)", CREATE, "raw", 0.5),
        ("SQLite", "changed re-import / new jobs", CHANGED, CREATE, 0.7),
        ("SQLite", "changed re-import / django-import-export", CHANGED, "die_changed", 10),
        ("SQLite", "unchanged re-import / new jobs", UNCHANGED, CREATE, 1.0),
        ("PostgreSQL", "new jobs / plain bulk_create", CREATE, "bulk_create", 1.5),
        ("PostgreSQL", "changed re-import / new jobs", CHANGED, CREATE, 0.7),
        # The search index may cost the import at most 15%.
        ("SQLite", "new jobs / new jobs without the search index", CREATE, UNINDEXED, 0.85),
        ("PostgreSQL", "new jobs / new jobs without the search index", CREATE, UNINDEXED, 0.85),
        ("SQLite", "new jobs / plain bulk_create", CREATE, "bulk_create", None),
        ("SQLite", "new jobs / django-import-export", CREATE, "die_create", None),
        ("PostgreSQL", "new jobs / raw driver (jobs + events)", CREATE, "raw", None),
        ("PostgreSQL", "new jobs / raw COPY (jobs + events)", CREATE, "raw_copy", None),
        # The most any client can reach: 1.5x bulk_create needs this at 1.5 or more.
        (
            "PostgreSQL",
            "raw COPY (jobs + events) / plain bulk_create",
            "raw_copy",
            "bulk_create",
            None,
        ),
        ("PostgreSQL", "new jobs / django-import-export", CREATE, "die_create", None),
        ("PostgreSQL", "changed re-import / django-import-export", CHANGED, "die_changed", None),
        ("PostgreSQL", "unchanged re-import / new jobs", UNCHANGED, CREATE, None),
    ]
    print("Ratios (same run):")
    for db, label, top, bottom, goal in goals:
        if db not in rates or top not in rates[db] or bottom not in rates[db]:
            continue
        ratio = rates[db][top] / rates[db][bottom]
        verdict = ""
        if goal is not None:
            verdict = f"  goal >= {goal}: {'met' if ratio >= goal else 'NOT MET'}"
        print(f"  {db + ': ' + label:<60}{ratio:>7.2f}{verdict}")
    for db in names:
        longest = max(results[db]["longest_transaction"].values()) * 1000
        verdict = "met" if longest < 300 else "NOT MET"
        label = f"{db}: longest write transaction"
        print(f"  {label:<60}{longest:>5.0f} ms  goal < 300 ms: {verdict}")


def scale(work: Path, sizes: list[int]) -> None:
    figures = []
    for rows in sizes:
        path = work / f"jobs-scale-{rows}.csv"
        generate(path, rows)
        result = run_child(__file__, "--scale-child", str(path), "--work", str(work))
        raw = run_child(__file__, "--scale-child", str(path), "--work", str(work), "--scale-raw")
        path.unlink()
        figures.append((rows, result, raw))
    print()
    print("SQLite, new jobs, each in a fresh process and database:")
    for rows, result, raw in figures:
        print(
            f"  {rows:>9,} rows: {rows / result['seconds']:>8,.0f} rows/s, "
            f"peak RSS {result['peak_rss_mb']:.0f} MB, "
            f"longest write transaction {result['longest_transaction'] * 1000:.0f} ms; "
            f"the raw driver writing the same rows: {rows / raw['seconds']:,.0f} rows/s"
        )
    (small_rows, small, small_raw), (big_rows, big, big_raw) = figures[0], figures[-1]
    flat = (big_rows / big["seconds"]) / (small_rows / small["seconds"])
    raw_flat = (big_rows / big_raw["seconds"]) / (small_rows / small_raw["seconds"])
    print(
        f"  rate at {big_rows:,} / at {small_rows:,} rows: {flat:.2f} (goal: flat, >= 0.9: "
        f"{'met' if flat >= 0.9 else 'NOT MET'}); the raw driver's: {raw_flat:.2f}, which "
        f"is what the database itself keeps as its indexes grow; peak RSS at {big_rows:,}: "
        f"{big['peak_rss_mb']:.0f} MB (goal < 200 MB: "
        f"{'met' if big['peak_rss_mb'] < 200 else 'NOT MET'})"
    )


if __name__ == "__main__":
    main()
