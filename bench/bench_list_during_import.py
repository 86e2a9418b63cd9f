"""Jobs list latency while the cluster imports (not a test):
`.venv/bin/python bench/bench_list_during_import.py [--rows N]`.

On a temporary SQLite database (WAL, the embedded default) it starts a real `manage.py
qcluster`, enqueues a 100,000-row import, and meanwhile requests the jobs list page (/jobs/,
full middleware, view and template through Django's test client) as a logged-in user. Prints
the page latency when idle and during the import, and the import's own rate. Cleans up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import bench_import  # noqa: E402  (the CSV generator)
import harness  # noqa: E402  (Django on a throwaway database)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"n={len(ordered)}  median {statistics.median(ordered) * 1000:.0f} ms  "
        f"p95 {p95 * 1000:.0f} ms  max {ordered[-1] * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="jobsite-bench-list-"))
    cluster = None
    try:
        # Production settings (harness.setup_django), served over plain HTTP.
        os.environ["DJANGO_SECURE_SSL_REDIRECT"] = "false"
        (work / "staticfiles").mkdir()  # WhiteNoise warns about a missing STATIC_ROOT
        harness.setup_django(work)
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.test import Client

        from imports import intake
        from imports.models import ImportJob
        from jobs.models import Printer
        from jobsite.testing import qcluster

        call_command("migrate", verbosity=0)
        call_command("createcachetable", verbosity=0)
        for name in bench_import.PRINTERS:
            Printer.objects.create(name=name)
        admin = User.objects.create_superuser("bench", password="pw-bench")
        client = Client()
        client.force_login(admin)

        get_list = harness.list_page_timer(client)

        csv_path = work / "jobs.csv"
        bench_import.generate(csv_path, args.rows)
        cluster = qcluster.Cluster(qcluster.environment(), work)
        cluster.wait_until_up()
        idle = [get_list() for _ in range(20)]

        with csv_path.open("rb") as file:
            import_job = intake.create_import(file, intake.inspect_upload(file), user=admin)
        during = harness.sample_while_processing(import_job, get_list, limit_seconds=1800)
        import_job = ImportJob.objects.get(pk=import_job.pk)
        print(f"Import of {args.rows:,} rows on the cluster: {import_job.status}, ", end="")
        print(
            f"{import_job.created_count:,} created in {import_job.elapsed_seconds:.1f} s "
            f"({import_job.rows_per_second:,.0f} rows/s)"
        )
        print(f"/jobs/ idle:             {percentiles(idle)}")
        if during:
            print(f"/jobs/ during the import: {percentiles(during)}")
        else:
            print("/jobs/ during the import: the import finished before a request was made")
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
