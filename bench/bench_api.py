"""JSON API benchmark (not a test): `.venv/bin/python bench/bench_api.py [--rows N]
[--repeat R] [--seconds S] [--db sqlite|postgres]`.

Fills a throwaway database (SQLite by default; PostgreSQL at 127.0.0.1:5432, user postgres,
with --db postgres) with N jobs (default 100,000), then measures the API (/api/v1/, token
auth) beside an anchor run in the same process and the same server: a Django REST Framework
ModelViewSet over the same model, with the same filters (jobs.filters.JobFilter through
DRF's DjangoFilterBackend), the same token check, and DRF's own CursorPagination.

A third line, the floor, is a bare Django view (no framework) doing the list's unavoidable
work the API's way: the same token check, ModelBackend's permission check, the page's
queries (jobs.paging.paginate walking the sort's index for the keys, then jobs.api.job_rows)
and json.dumps. It shows what is left of a request once no framework does anything.

1. In-process (Django's test Client, production settings): the median server time of
   --repeat requests after a warm-up, for the list (first page, filtered, a cursor page past
   10,000), one job, a PATCH, and a bulk change of 100 jobs; the list cases also for DRF
   and the floor.
2. Under load: gunicorn with 4 workers, --seconds (default 20) per case of a load generator
   (Debian's `wrk` when installed, else a bounded Python client of 8 keep-alive threads) on
   the list's first page and a filtered page, API, DRF and floor (after 3 s of warm-up
   each): requests/s, p50 and p99.

Goal: at least 2x DRF's requests/s on the list; p99 under load reported. The rate limit is
raised and both sides use a local-memory cache, so neither measures the throttle's cache.
The machine is shared: the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_NAME = "jobsite_bench_api"
STATUSES = ["pending"] * 30 + ["scheduled"] * 15 + ["running"] * 10 + ["completed"] * 35
STATUSES += ["failed"] * 5 + ["cancelled"] * 5
WORDS = "bracket gear hinge mount clip housing lid spacer knob panel frame cover".split()
CURSOR_DEPTH = 10_050
GOAL_RATIO = 2.0
WORKERS = 4
WARM_UP_SECONDS = 3

# The anchor: DRF serving the same model with the same filters, mounted at /drf/jobs.
SETTINGS_MODULE = """
import warnings

from jobsite.settings import *  # noqa: F403

warnings.filterwarnings("ignore", message="No directory at")
SECURE_SSL_REDIRECT = False  # plain HTTP on 127.0.0.1, no TLS proxy in front

ROOT_URLCONF = "bench_api_urls"
INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework"]  # noqa: F405
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
API_RATE_LIMIT = "100000000/s"
LOGGING = {"version": 1, "disable_existing_loggers": True}
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
"""
URLS_MODULE = """
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.http import HttpResponse
from django.urls import path
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import authentication, exceptions, pagination, permissions, routers
from rest_framework import serializers, viewsets

from jobs import search
from jobs.api import job_rows
from jobs.filters import JobFilter
from jobs.models import Job
from jobs.paging import paginate
from jobsite.models import ApiToken
from jobsite.urls import urlpatterns as site_patterns


class BearerToken(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        token = ApiToken.authenticate(header[7:].strip())
        if token is None:
            raise exceptions.AuthenticationFailed("The token is unknown, expired or revoked.")
        return token.user, token


class JobSerializer(serializers.ModelSerializer):
    printer = serializers.StringRelatedField()
    created_by = serializers.StringRelatedField()
    updated_by = serializers.StringRelatedField()
    cancelled_by = serializers.StringRelatedField()

    class Meta:
        model = Job
        fields = [
            "id", "name", "status", "priority", "is_business", "customer_name", "notes",
            "file_name", "printer_id", "printer", "reference", "version", "created_at",
            "updated_at", "started_at", "completed_at", "cancelled_at",
            "cancellation_reason", "created_by", "updated_by", "cancelled_by",
        ]


class JobCursorPagination(pagination.CursorPagination):
    ordering = ("-updated_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Job.objects.select_related("printer", "created_by", "updated_by", "cancelled_by")
    serializer_class = JobSerializer
    authentication_classes = [BearerToken]
    permission_classes = [permissions.DjangoModelPermissions]
    filter_backends = [DjangoFilterBackend]
    filterset_class = JobFilter
    pagination_class = JobCursorPagination


def floor(request):
    # The least any framework on this stack must do for a page of the list: the token check,
    # the permission (ModelBackend's, as DRF), the page's queries (the sort's index walked for
    # the page's keys, one status at a time when several are asked for, from a cursor when
    # given, then the rows by id), and json.dumps; no schema, no filter form, no errors.
    token = ApiToken.authenticate(request.headers.get("Authorization", "")[7:].strip())
    if token is None or not token.user.has_perm("jobs.view_job"):
        return HttpResponse(status=401)
    jobs = Job.objects.all()
    statuses = request.GET.getlist("status")
    if statuses:
        jobs = jobs.filter(status__in=statuses)
    if request.GET.get("q"):
        jobs = search.apply(jobs, search.parse(request.GET["q"]))
    parts = [Q(status=status) for status in statuses] if len(statuses) > 1 else []
    cursor = request.GET.get("cursor")
    page = paginate(jobs.only("id", "updated_at"), sort="-updated", cursor=cursor, parts=parts)
    body = {"items": job_rows([job.pk for job in page.items]), "next_cursor": page.next_cursor}
    return HttpResponse(json.dumps(body, cls=DjangoJSONEncoder), content_type="application/json")


router = routers.SimpleRouter(trailing_slash=False)
router.register("drf/jobs", JobViewSet)
urlpatterns = [path("floor/jobs", floor), *router.urls, *site_patterns]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    options = parser.parse_args()
    if options.rows < CURSOR_DEPTH + 100:
        parser.error(f"--rows must be at least {CURSOR_DEPTH + 100} (a cursor page past 10,000)")
    try:
        import rest_framework  # noqa: F401
    except ImportError:
        sys.exit("Install the bench extra first: .venv/bin/pip install -e '.[bench]'")
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    try:
        env = _environment(workdir, options.db)
        _run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env)
        # The measurements run in a child with the bench settings, so Django is set up once.
        _run([sys.executable, __file__, "--child", str(options.rows), str(options.repeat),
              str(options.seconds), str(workdir)], env)  # fmt: skip
    finally:
        if options.db == "postgres":
            _drop_postgres()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def _environment(workdir: Path, db: str) -> dict[str, str]:
    (workdir / "bench_api_settings.py").write_text(SETTINGS_MODULE)
    (workdir / "bench_api_urls.py").write_text(URLS_MODULE)
    if db == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {PG_NAME}")
            connection.execute(f"CREATE DATABASE {PG_NAME}")
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_NAME}"
    else:
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(workdir), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "bench_api_settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DATABASE_URL": url,
        "MEDIA_ROOT": str(workdir / "media"),
        "LOG_LEVEL": "ERROR",
    }


def _drop_postgres() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")


def _run(command: list[str], env: dict[str, str]) -> None:
    if subprocess.run(command, cwd=ROOT, env=env).returncode:
        raise SystemExit(f"failed: {' '.join(command[1:3])}")


# --- The child: fill, measure in-process, measure under gunicorn --------------------------


def child(rows: int, repeat: int, seconds: int, workdir: Path) -> None:
    import django

    django.setup()
    secret, cases = _fill(rows)
    headers = {"Authorization": f"Bearer {secret}"}
    print(f"\n{rows:,} jobs. In-process: median server time of {repeat} requests (ms)")
    print(f"{'case':40} {'API':>8} {'DRF':>8} {'floor':>8} {'DRF/API':>8} {'DRF/floor':>9}")
    for label, api_url, drf_url, floor_url in cases["lists"]:
        api_ms, drf_ms, floor_ms = (
            _median_ms("get", url, headers, repeat) for url in (api_url, drf_url, floor_url)
        )
        print(f"{label:40} {api_ms:8.2f} {drf_ms:8.2f} {floor_ms:8.2f} "
              f"{drf_ms / api_ms:7.1f}x {drf_ms / floor_ms:8.1f}x")  # fmt: skip
    for label, method, url, body_for, extra in cases["writes"]:
        api_ms = _median_ms(method, url, headers, repeat, body_for=body_for, extra=extra)
        print(f"{label:40} {api_ms:8.2f} {'':>8} {'':>8}")
    _under_load(cases["load"], headers, seconds, workdir)


def _fill(rows: int) -> tuple[str, dict]:
    from django.contrib.auth.models import Permission, User
    from django.db import connection

    from jobs.models import Job, Printer
    from jobsite.models import ApiToken

    user = User.objects.create_user("bench")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="jobs"))
    printers = Printer.objects.bulk_create(Printer(name=f"Printer {n}") for n in range(20))
    now = datetime.now(UTC)
    started = time.perf_counter()
    batch = []
    for n in range(rows):
        status = STATUSES[n % len(STATUSES)]
        at = now - timedelta(seconds=n * 7)
        batch.append(
            Job(
                name=f"{WORDS[n % len(WORDS)]} {WORDS[(n * 7) % len(WORDS)]} {n}",
                status=status,
                priority=n % 11,
                printer=printers[n % len(printers)],
                customer_name=f"Customer {n % 500}",
                created_at=at,
                updated_at=at,
                created_by=user,
                updated_by=user,
                started_at=at if status in ("running", "completed", "failed") else None,
                completed_at=at if status == "completed" else None,
            )
        )
        if len(batch) == 5000:
            Job.objects.bulk_create(batch)
            batch = []
    Job.objects.bulk_create(batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"filled {rows:,} jobs in {time.perf_counter() - started:.1f} s")
    _, secret = ApiToken.issue(user=user, name="bench")

    deep = Job.objects.order_by("-updated_at", "-id")[CURSOR_DEPTH]
    from jobs.paging import encode_cursor, parse_sort

    api_cursor = encode_cursor(parse_sort("-updated", Job), deep, after=True)
    position = deep.updated_at.isoformat()
    drf_cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
    filtered = "status=pending&status=running&q=gear"
    target = Job.objects.filter(status="pending").order_by("id").first()
    pending = list(Job.objects.filter(status="pending").order_by("id")[:100])
    return secret, {
        "lists": [
            ("list, first page", "/api/v1/jobs", "/drf/jobs", "/floor/jobs"),
            (
                f"list, filtered ({filtered})",
                f"/api/v1/jobs?{filtered}",
                f"/drf/jobs?{filtered}",
                f"/floor/jobs?{filtered}",
            ),
            (
                f"list, cursor page past {CURSOR_DEPTH:,}",
                f"/api/v1/jobs?cursor={api_cursor}",
                f"/drf/jobs?cursor={drf_cursor}",
                f"/floor/jobs?cursor={api_cursor}",
            ),
        ],
        "writes": [
            ("one job", "get", f"/api/v1/jobs/{target.pk}", None, None),
            (
                "PATCH (priority, If-Match)",
                "patch",
                f"/api/v1/jobs/{target.pk}",
                lambda n: {"priority": n % 11},
                target,
            ),
            (
                "bulk status, 100 jobs",
                "post",
                "/api/v1/jobs/bulk-status",
                lambda n: [
                    {"id": job.pk, "status": ("scheduled", "pending")[n % 2]} for job in pending
                ],
                None,
            ),
        ],  # fmt: skip
        "load": [
            ("list, first page", "/api/v1/jobs", "/drf/jobs", "/floor/jobs"),
            (
                "list, filtered",
                f"/api/v1/jobs?{filtered}",
                f"/drf/jobs?{filtered}",
                f"/floor/jobs?{filtered}",
            ),
        ],
    }


def _median_ms(method, url, headers, repeat, *, body_for=None, extra=None) -> float:
    from django.test import Client

    from jobs.models import Job

    client = Client()
    times = []
    for n in range(repeat + 1):
        request_headers = dict(headers)
        if extra is not None:  # a PATCH names the version it read
            job = Job.objects.get(pk=extra.pk)
            request_headers["If-Match"] = f'"{job.pk}.{job.version}"'
        kwargs = {"headers": request_headers}
        if body_for is not None:
            kwargs |= {"data": json.dumps(body_for(n)), "content_type": "application/json"}
        started = time.perf_counter()
        response = getattr(client, method)(url, **kwargs)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"{method.upper()} {url}: {response.status_code} {response.content!r}")
        if n:
            times.append(elapsed * 1000)
    return statistics.median(times)


def _under_load(cases, headers, seconds, workdir: Path) -> None:
    port = 18765
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "jobsite.wsgi", "--workers", str(WORKERS),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=os.environ.copy(),
    )  # fmt: skip
    try:
        _wait_for(port)
        tool = "wrk" if shutil.which("wrk") else "python"
        print(f"\nUnder load: gunicorn, {WORKERS} workers, {seconds} s per case, {tool} "
              "(8 connections)")  # fmt: skip
        print(f"{'case':24} {'':5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for label, *urls in cases:
            rates = {}
            for side, url in zip(("API", "DRF", "floor"), urls, strict=True):
                load = _wrk if tool == "wrk" else _python_load
                load(port, url, headers, WARM_UP_SECONDS, workdir)  # every worker warm
                rate, p50, p99 = load(port, url, headers, seconds, workdir)
                rates[side] = rate
                print(f"{label:24} {side:5} {rate:9.1f} {p50:8.1f} {p99:8.1f}")
            ratio = rates["API"] / rates["DRF"]
            verdict = "meets" if ratio >= GOAL_RATIO else "misses"
            print(f"{label:24} API/DRF {ratio:.2f}x ({verdict} the {GOAL_RATIO:.0f}x goal); "
                  f"floor/DRF {rates['floor'] / rates['DRF']:.2f}x")  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("gunicorn did not start")


def _wrk(port, url, headers, seconds, workdir: Path) -> tuple[float, float, float]:
    command = ["wrk", "-t", "2", "-c", "8", "-d", f"{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{url}"], capture_output=True, text=True, check=True
    ).stdout
    rate = float(next(line for line in output.splitlines() if "Requests/sec" in line).split()[-1])
    percentiles = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            percentiles[parts[0]] = _wrk_ms(parts[1])
    errors = [line for line in output.splitlines() if "Non-2xx" in line]
    if errors:
        raise SystemExit(f"{url}: {errors[0].strip()}")
    return rate, percentiles["50%"], percentiles["99%"]


def _wrk_ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def _python_load(port, url, headers, seconds, workdir: Path) -> tuple[float, float, float]:
    """A bounded client: 8 threads, each one keep-alive connection, for `seconds`."""
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            connection.request("GET", url, headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                failures.append(response.status)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{url}: {len(failures)} answers were not 200 ({failures[0]})")
    latencies.sort()
    return (
        len(latencies) / seconds,
        latencies[len(latencies) // 2],
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()
