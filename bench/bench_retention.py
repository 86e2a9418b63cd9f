"""Retention benchmark (not a test): `.venv/bin/python bench/bench_retention.py [--imports N]`.

In a temporary SQLite database (WAL, as in production), bulk-inserts N old finished imports
(default 100,000) with error records (default 10 each), one event each, a job for every
tenth import, and stored files for the first 1,000; then runs `cleanup_imports` once and
reports the total time and the longest single write transaction (target < 0.5 s), while a
second connection plays the web app, writing one job every 50 ms, and reports its worst wait.
Prints the figures and deletes everything it created.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import setup_django


def populate(db_path: Path, media: Path, imports: int, errors_each: int, files: int) -> None:
    """Fast bulk inserts straight into the tables Django created."""
    from django.db import connection

    from imports.models import ImportJob

    ops = connection.ops
    now = datetime.now(UTC)
    template = ImportJob(original_filename="old.csv", file_hash="0" * 64, status="completed")
    fields = [f for f in ImportJob._meta.concrete_fields]
    columns = ", ".join(f.column for f in fields)
    marks = ", ".join("?" for _ in fields)
    job_fields = "name, status, priority, is_business, customer_name, notes, file_name, "
    job_fields += "created_at, updated_at, version, source_import_id, cancellation_reason"
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    chunk = 10_000
    for start in range(0, imports, chunk):
        import_rows, error_rows, event_rows, job_rows = [], [], [], []
        for n in range(start, min(start + chunk, imports)):
            template.id = uuid.uuid4()
            template.completed_at = now - timedelta(days=100, minutes=n)
            template.created_at = template.completed_at - timedelta(minutes=5)
            template.updated_at = template.completed_at
            template.status = ("completed", "cancelled", "failed")[n % 3]
            name = f"imports/2025/01/{template.id}.csv" if n < files else ""
            template.file.name = name
            if name:
                (media / name).write_bytes(b"name\nBracket\n")
            import_rows.append(
                tuple(f.get_db_prep_save(getattr(template, f.attname), connection) for f in fields)
            )
            key = template.id.hex
            stamp = ops.adapt_datetimefield_value(template.completed_at)
            error_rows.extend(
                (key, row + 2, "name", "validation", "Name is required", "", stamp)
                for row in range(errors_each)
            )
            event_rows.append((key, "processing", template.status, "", stamp))
            if n % 10 == 0:
                job_rows.append((f"Job {n}", "pending", 0, 0, "", "", "", stamp, stamp, 1, key, ""))
        db.executemany(f"INSERT INTO imports_importjob ({columns}) VALUES ({marks})", import_rows)
        db.executemany(
            "INSERT INTO imports_importerrorrecord "
            "(import_job_id, row, field, error_type, message, raw_data, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            error_rows,
        )
        db.executemany(
            "INSERT INTO imports_importevent "
            "(import_job_id, old_status, new_status, message, created_at) VALUES (?, ?, ?, ?, ?)",
            event_rows,
        )
        db.executemany(
            f"INSERT INTO jobs_job ({job_fields}) VALUES ({', '.join('?' * 12)})", job_rows
        )
        db.commit()
    db.execute("ANALYZE")
    db.close()


class WebWriter(threading.Thread):
    """A web request's write every 50 ms on its own connection; records the worst wait."""

    def __init__(self, db_path: Path) -> None:
        super().__init__(daemon=True)
        self.db_path = db_path
        self.stop = threading.Event()
        self.waits: list[float] = []

    def run(self) -> None:
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        while not self.stop.wait(0.05):
            started = time.monotonic()
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO jobs_job (name, status, priority, is_business, customer_name, notes,"
                " file_name, created_at, updated_at, version, cancellation_reason)"
                " VALUES ('Web', 'pending', 0, 0, '', '', '', '2026-01-01', '2026-01-01', 1, '')"
            )
            db.execute("COMMIT")
            self.waits.append(time.monotonic() - started)
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=100_000)
    parser.add_argument("--errors-per-import", type=int, default=10)
    parser.add_argument("--files", type=int, default=1_000)
    parser.add_argument("--import-chunk", type=int, help="override retention.IMPORT_CHUNK")
    parser.add_argument("--error-chunk", type=int, help="override retention.ERROR_CHUNK")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    try:
        setup_django(var_dir)
        from django.core.management import call_command

        from imports import retention
        from imports.models import ImportErrorRecord, ImportJob
        from jobs.models import Job

        db_path = var_dir / "jobsite.sqlite3"
        call_command("migrate", verbosity=0)
        media = var_dir / "media"
        (media / "imports" / "2025" / "01").mkdir(parents=True)
        started = time.monotonic()
        populate(db_path, media, args.imports, args.errors_per_import, args.files)
        print(
            f"Populated {ImportJob.objects.count():,} imports, "
            f"{ImportErrorRecord.objects.count():,} error records, "
            f"{Job.objects.count():,} jobs, {args.files:,} files "
            f"in {time.monotonic() - started:.1f} s"
        )

        if args.import_chunk:
            retention.IMPORT_CHUNK = args.import_chunk
        if args.error_chunk:
            retention.ERROR_CHUNK = args.error_chunk
        web = WebWriter(db_path)
        web.start()
        result = retention.cleanup_imports(include_failed=True, actor="bench")
        web.stop.set()
        web.join()

        assert ImportJob.objects.count() == 0, "imports left behind"
        assert Job.objects.filter(source_import__isnull=False).count() == 0
        print(f"Deleted {result.imports:,} imports, {result.error_records:,} error records,")
        print(f"  {result.events:,} events, {result.files:,} files;", end=" ")
        print(f"detached {result.jobs_detached:,} jobs (kept)")
        print(f"Chunks per transaction: {retention.IMPORT_CHUNK} imports,", end=" ")
        print(f"{retention.ERROR_CHUNK} error records, {retention.JOB_CHUNK} jobs")
        print(f"Total cleanup time: {result.duration_seconds:.2f} s")
        longest = result.longest_write_seconds * 1000
        print(f"Longest single write transaction: {longest:.0f} ms (target < 500 ms)")
        waits = sorted(web.waits)
        if waits:
            median, worst = waits[len(waits) // 2] * 1000, waits[-1] * 1000
            print(f"Concurrent web writes (one every 50 ms): {len(waits)},", end=" ")
            print(f"median wait {median:.1f} ms, worst {worst:.0f} ms")
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
