"""What every benchmark here needs: Django on a throwaway database in a child process, a
throwaway PostgreSQL database, the child's result, and the load average for the report.

Benchmarks run as `.venv/bin/python bench/<name>.py`, so this folder is on `sys.path` and they
import this module as `harness`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULT_PREFIX = "RESULT "


def setup_django(var_dir: Path, database_url: str = "") -> None:
    """Django with production settings on `database_url` (default: SQLite under `var_dir`).

    With DEBUG on, Django formats and keeps the SQL of every query, which would be measured
    too. Static files are served without a collectstatic manifest (a throwaway run has none).
    """
    os.environ.pop("REDIS_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ["JOBSITE_VAR_DIR"] = str(var_dir)
    os.environ["MEDIA_ROOT"] = str(var_dir / "media")
    os.environ.setdefault("IMPORT_MAX_UPLOAD_MB", "1000")
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ["DJANGO_STATIC_MANIFEST"] = "false"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + os.urandom(16).hex())
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "jobsite.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


@contextmanager
def throwaway_postgres(prefix: str) -> Iterator[str]:
    """A new PostgreSQL database for this process; its URL. Dropped afterwards."""
    import psycopg

    name = f"{prefix}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def print_result(result: dict) -> None:
    """A child's last line: what `run_child` reads back."""
    print(RESULT_PREFIX + json.dumps(result))


def run_child(script: str, *extra: str) -> dict:
    """Run `script` again with `extra` arguments in a fresh process; the result it printed."""
    # The child's standard error (its progress lines, a traceback) goes straight through.
    process = subprocess.run(
        [sys.executable, script, *extra], stdout=subprocess.PIPE, text=True, check=False
    )
    for line in reversed(process.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    print(process.stdout[-3000:])
    raise SystemExit(f"The benchmark child {' '.join(extra[:2])} failed.")


def postgres_reachable() -> str:
    """'' when the server answers, otherwise why not."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ""


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def list_page_timer(client: Any, url: str = "/jobs/") -> Callable[[], float]:
    """A function that GETs `url` with Django's test `client` and returns the seconds it took
    (a status other than 200 stops the benchmark)."""

    def get() -> float:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        return elapsed

    return get


def sample_while_processing(
    run: Any, measure: Callable[[], float], *, limit_seconds: float, every: float = 0.2
) -> list[float]:
    """`measure()` every `every` seconds while `run` (a BackgroundRun row: an import, a bulk
    run) is processing, until it ends or `limit_seconds` pass; the measures."""
    measures: list[float] = []
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_finished:
            break
        if run.status == "processing":
            measures.append(measure())
        time.sleep(every)
    return measures


def run_on_databases(script: str, db: str, *extra: str) -> dict[str, dict]:
    """`script`'s child run on SQLite and/or PostgreSQL (`db`: sqlite, postgres or both), each
    in a fresh process with `--child <database>` and `extra`; their results by database. The
    PostgreSQL run is skipped with a note when the server does not answer."""
    results: dict[str, dict] = {}
    if db in ("sqlite", "both"):
        results["SQLite"] = run_child(script, "--child", "sqlite", *extra)
    if db in ("postgres", "both"):
        why_not = postgres_reachable()
        if why_not:
            print(f"PostgreSQL skipped: the server is not reachable ({why_not}).")
        else:
            results["PostgreSQL"] = run_child(script, "--child", "postgres", *extra)
    return results
