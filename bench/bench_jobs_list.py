"""Jobs list benchmark (not a test): `.venv/bin/python bench/bench_jobs_list.py [--rows N]`.

Builds a temporary SQLite database (WAL, as in production) with N jobs (default 1,000,000),
then measures the server time of `/jobs/` through Django's test Client as a logged-in
superuser: the whole request (session, permissions, capped count, page query, template).
For context it also times the two queries the list page avoids: an unbounded COUNT(*) and a
page at OFFSET N/2. Prints a table of median milliseconds and deletes the database.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATUSES = ["pending"] * 30 + ["scheduled"] * 15 + ["running"] * 10 + ["completed"] * 35
STATUSES += ["failed"] * 5 + ["cancelled"] * 5
WORDS = "bracket gear hinge mount clip housing lid spacer knob panel frame cover".split()
CUSTOMERS = [f"{word} {kind}" for word in WORDS for kind in ("Ltd", "GmbH", "Corp", "Studio")]

CASES = [
    ("unfiltered, first page", "/jobs/"),
    ("status=failed (5%)", "/jobs/?status=failed"),
    ("status=pending&status=running", "/jobs/?status=pending&status=running"),
    ("printer + business", "/jobs/?printer=3&is_business=true"),
    ("text search, common (q=gear)", "/jobs/?q=gear"),
    ("text search, common, page 2", "/jobs/?q=gear&page=2"),
    ("text search, rare (q=REF-0777777)", "/jobs/?q=REF-0777777"),
    ("text search, no match (q=zzzz)", "/jobs/?q=zzzz"),
    ("deep page (page=200, OFFSET 9,950)", "/jobs/?page=200"),
    ("sort=name, page 200", "/jobs/?sort=name&page=200"),
    ("sort=-priority, status=failed", "/jobs/?sort=-priority&status=failed"),
    ("created range (one month)", "/jobs/?created_after=2025-03-01&created_before=2025-03-31"),
    ("HTMX table partial, status=failed", "/jobs/?status=failed"),
]


def setup_django(db_path: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-bench-only-secret-key")
    os.environ["DJANGO_SETTINGS_MODULE"] = "jobsite.settings"
    sys.path.insert(0, str(ROOT))
    import django
    from django.conf import settings

    django.setup()
    # Production settings, except static files: no collectstatic manifest in a throwaway run.
    static = "django.contrib.staticfiles.storage.StaticFilesStorage"
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": static}}


def fill(db_path: Path, rows: int) -> float:
    """Insert `rows` jobs with raw executemany; indexes are dropped first and rebuilt after."""
    from django.db import connection

    connection.close()
    started = time.perf_counter()
    rng = random.Random(7)
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA synchronous=OFF")
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='jobs_job'"
        " AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    db.executemany(
        "INSERT INTO jobs_printer (name, is_active, created_at) VALUES (?, 1, ?)",
        [(f"Printer {n:02d}", "2024-01-01 00:00:00") for n in range(1, 21)],
    )
    start = datetime(2024, 1, 1, tzinfo=UTC)
    span = 2 * 365 * 24 * 3600

    def job(n: int) -> tuple:
        created = start + timedelta(seconds=rng.randrange(span))
        updated = created + timedelta(seconds=rng.randrange(30 * 24 * 3600))
        business = rng.random() < 0.3
        return (
            f"{rng.choice(WORDS)} {rng.choice(WORDS)} {n:07d}",
            rng.choice(STATUSES),
            rng.randrange(11),
            business,
            rng.choice(CUSTOMERS) if business else "",
            "",
            f"part-{n}.gcode",
            rng.randrange(1, 21) if rng.random() < 0.9 else None,
            f"REF-{n:07d}" if n % 2 else None,
            created.strftime("%Y-%m-%d %H:%M:%S"),
            updated.strftime("%Y-%m-%d %H:%M:%S"),
            "",
            1,
        )

    sql = (
        "INSERT INTO jobs_job (name, status, priority, is_business, customer_name, notes,"
        " file_name, printer_id, reference, created_at, updated_at, cancellation_reason, version)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    chunk = 50_000
    for first in range(0, rows, chunk):
        db.executemany(sql, (job(n) for n in range(first, min(rows, first + chunk))))
    for _, create in indexes:
        db.execute(create)
    db.commit()
    db.close()
    return time.perf_counter() - started


def timed(fn, repeat: int) -> float:
    fn()  # warm-up: page cache, connection, template loading
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No directory at")

    workdir = Path(tempfile.mkdtemp(prefix="jobsite-bench-list-"))
    db_path = workdir / "bench.sqlite3"
    try:
        setup_django(db_path)
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.db import connection
        from django.http import QueryDict
        from django.test import Client

        from jobs.views import list_context

        call_command("migrate", verbosity=0)
        print(f"Filling {args.rows:,} jobs into {db_path} ...", flush=True)
        print(f"  inserted and indexed in {fill(db_path, args.rows):.1f} s", flush=True)

        admin = User.objects.create_superuser("bench", password="bench-password")
        client = Client()
        client.force_login(admin)

        print(f"\nMedian server time of {args.repeat} requests after one warm-up:\n")
        print(f"{'case':<40} {'ms':>8}  {'rows':>5}  count shown")
        for label, url in CASES:
            headers = {"HTTP_HX_REQUEST": "true"} if label.startswith("HTMX") else {}
            headers["secure"] = True  # production settings redirect plain HTTP
            response = client.get(url, **headers)
            assert response.status_code == 200, (url, response.status_code)
            page = list_context(QueryDict(url.partition("?")[2]))["page"]
            shown = "10,000+" if page.paginator.is_capped else f"{page.paginator.count:,}"
            ms = timed(lambda url=url, headers=headers: client.get(url, **headers), args.repeat)
            print(f"{label:<40} {ms:8.1f}  {len(page.object_list):>5}  {shown}")

        def raw(sql: str) -> float:
            def run() -> None:
                with connection.cursor() as cursor:
                    cursor.execute(sql)
                    cursor.fetchall()

            return timed(run, 3)

        print("\nFor comparison, queries the list page does not run:\n")
        half = args.rows // 2
        print(f"{'COUNT(*) unfiltered':<40} {raw('SELECT COUNT(*) FROM jobs_job'):8.1f}")
        count_pending = raw("SELECT COUNT(*) FROM jobs_job WHERE status = 'pending'")
        print(f"{'COUNT(*) status=pending':<40} {count_pending:8.1f}")
        offset = raw(
            f"SELECT * FROM jobs_job ORDER BY updated_at DESC, id DESC LIMIT 50 OFFSET {half}"
        )
        print(f"{f'page at OFFSET {half:,}':<40} {offset:8.1f}")
        count_q = raw(
            "SELECT COUNT(*) FROM jobs_job WHERE name LIKE '%zzzz%' OR customer_name LIKE"
            " '%zzzz%' OR reference LIKE '%zzzz%'"
        )
        print(f"{'full scan for a text search (no match)':<40} {count_q:8.1f}")
        connection.close()
        load = os.getloadavg()
        print(f"\nLoad average during the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
