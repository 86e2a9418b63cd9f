"""Import benchmark (not a test): `.venv/bin/python bench/bench_import.py [--rows N]`.

All on one generated CSV file and a temporary SQLite database (WAL, as in production):
1. Jobsite: `imports.processing.run_import` — batches, validation, events, checkpoints.
2. Baseline: plain `csv.reader` + `Job.objects.bulk_create(batch_size=1000)`, no validation.
3. Raw `sqlite3.executemany` into the same table.
Then the peak RSS of a subprocess importing a 1,000,000-row file through run_import.
Prints the figures and deletes everything it created.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRINTERS = ("Prusa MK4 #1", "Prusa MK4 #2", "Bambu X1C", "Form 3")
STATUSES = ("pending", "scheduled", "running", "completed", "failed", "cancelled")


def setup_django(var_dir: Path, *, debug: bool = False) -> None:
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["JOBSITE_VAR_DIR"] = str(var_dir)
    os.environ["MEDIA_ROOT"] = str(var_dir / "media")
    os.environ.setdefault("IMPORT_MAX_UPLOAD_MB", "1000")
    # Production settings: with DEBUG on, Django formats and keeps the SQL of every query.
    os.environ["DJANGO_DEBUG"] = "true" if debug else "false"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + os.urandom(16).hex())
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "jobsite.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def generate(path: Path, rows: int) -> None:
    rng = random.Random(42)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(
            [
                "name",
                "status",
                "priority",
                "is_business",
                "customer_name",
                "notes",
                "file_name",
                "printer",
                "reference",
            ]
        )
        for number in range(1, rows + 1):
            business = number % 3 == 0
            writer.writerow(
                [
                    f"Bracket v{number}",
                    STATUSES[number % len(STATUSES)],
                    rng.randint(0, 10),
                    "yes" if business else "no",
                    f"Customer {number % 97}" if business else "",
                    "PLA, 0.2 mm" if number % 2 else "",
                    f"bracket_{number}.3mf",
                    PRINTERS[number % len(PRINTERS)],
                    f"REF-{number:08d}",
                ]
            )


def clear_jobs() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM jobs_jobevent")
        cursor.execute("DELETE FROM jobs_job")


def jobsite_import(path: Path) -> tuple[float, float, int]:
    """(intake seconds, run_import seconds, jobs created)."""
    from imports import intake
    from imports.importer import run_import
    from imports.models import ImportJob

    started = time.perf_counter()
    with path.open("rb") as file:
        info = intake.inspect_upload(file)
        import_job = intake.create_import(
            file, info, user=None, on_error="skip", on_existing="update", enqueue=False
        )
    intake_seconds = time.perf_counter() - started
    started = time.perf_counter()
    run_import(import_job.pk)
    run_seconds = time.perf_counter() - started
    import_job = ImportJob.objects.get(pk=import_job.pk)
    if import_job.status != "completed" or import_job.error_count:
        raise SystemExit(f"Jobsite import did not complete cleanly: {import_job.status}")
    return intake_seconds, run_seconds, import_job.created_count


def baseline_bulk_create(path: Path) -> tuple[float, int]:
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
            if len(batch) == 1000:
                created += len(Job.objects.bulk_create(batch, batch_size=1000))
                batch = []
        if batch:
            created += len(Job.objects.bulk_create(batch, batch_size=1000))
    return time.perf_counter() - started, created


def raw_executemany(path: Path, db_path: Path) -> tuple[float, int]:
    connection = sqlite3.connect(db_path)
    printers = dict(connection.execute("SELECT name, id FROM jobs_printer"))
    started = time.perf_counter()
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        next(reader)
        rows = (
            (r[0], r[1], int(r[2]), r[3] == "yes", r[4], r[5], r[6], printers[r[7]], r[8], now, now)
            for r in reader
        )
        with connection:
            cursor = connection.executemany(
                "INSERT INTO jobs_job (name, status, priority, is_business, customer_name, notes,"
                " file_name, printer_id, reference, created_at, updated_at, cancellation_reason,"
                " version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 1)",
                rows,
            )
            created = cursor.rowcount
    seconds = time.perf_counter() - started
    connection.close()
    return seconds, created


def rss_child(path: Path) -> None:
    """Runs in the subprocess: import `path` through run_import, print the result."""
    _, seconds, created = jobsite_import(path)
    print(f"{created} {seconds:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rss-rows", type=int, default=1_000_000)
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.rss_child:
        setup_django(Path(args.var_dir))
        rss_child(Path(args.rss_child))
        return

    work = Path(tempfile.mkdtemp(prefix="jobsite-bench-"))
    try:
        setup_django(work)
        from django.conf import settings
        from django.core.management import call_command

        from jobs.models import Printer

        call_command("migrate", verbosity=0)
        for name in PRINTERS:
            Printer.objects.create(name=name)
        csv_path = work / "jobs.csv"
        generate(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"File: {args.rows:,} rows, {size_mb:.1f} MB; SQLite WAL at {work}")
        print(f"Jobsite batch size: {settings.IMPORT_BATCH_SIZE}")

        intake_s, jobsite_s, created = jobsite_import(csv_path)
        assert created == args.rows, created
        clear_jobs()
        baseline_s, created = baseline_bulk_create(csv_path)
        assert created == args.rows, created
        clear_jobs()
        raw_s, created = raw_executemany(csv_path, Path(settings.DATABASES["default"]["NAME"]))
        assert created == args.rows, created
        clear_jobs()

        def rate(seconds: float) -> str:
            return f"{args.rows / seconds:>10,.0f} rows/s  ({seconds:.2f} s)"

        print(f"Jobsite run_import (validation, events, batches): {rate(jobsite_s)}")
        print(f"  + upload checks (hash, decode, estimate):        {intake_s:.2f} s")
        print(f"Baseline csv.reader + bulk_create(1000):          {rate(baseline_s)}")
        print(f"Raw sqlite3.executemany:                          {rate(raw_s)}")
        print(f"Ratio Jobsite / bulk_create baseline: {baseline_s / jobsite_s:.2f}")

        if args.rss_rows:
            big = work / "jobs-big.csv"
            generate(big, args.rss_rows)
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--rss-child",
                    str(big),
                    "--var-dir",
                    str(work),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            if child.returncode:
                print(child.stderr[-2000:])
                raise SystemExit("The 1,000,000-row import failed.")
            created, seconds = child.stdout.split()[-2:]
            print(
                f"Peak RSS importing {args.rss_rows:,} rows ({big.stat().st_size / 1e6:.0f} MB) "
                f"through run_import: {peak_mb:.0f} MB "
                f"({int(created):,} created in {float(seconds):.0f} s)"
                + ("" if before == 0 else " [earlier children counted]")
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
