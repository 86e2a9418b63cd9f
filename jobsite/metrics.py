"""Prometheus metrics at `/metrics` (docs/metrics.md).

prometheus_client runs in multiprocess mode: every process (web workers, cluster workers)
writes its counters and histograms to files in PROMETHEUS_MULTIPROC_DIR, which the settings
set before the library is imported, and a scrape adds up the files of all of them. The
counters move on the apps' signals (`connect_receivers`, called by jobsite.apps) once the
change they count has committed; the request histogram is observed by
`RequestMetricsMiddleware`. The gauges (jobs by status, the queue, stale leases) are read
from the database and the broker at scrape time (`LiveStateCollector`), so they are right
whichever process changed what they count.

Metrics never get in the way of the work they count: a failure to record one is logged.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cache, partial, wraps
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_q.brokers import Broker, get_broker
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.signing import SignedPackage
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from imports.models import ImportJob
from imports.signals import import_rows_processed, import_status_changed, imports_deleted
from jobs.models import BulkRun, Job
from jobs.runs import FINISHED_STATUSES, RunStatus
from jobs.signals import bulk_items_processed, jobs_changed
from jobs.status import JobStatus
from jobsite.models import ApiToken

logger = logging.getLogger(__name__)

SCRAPE_PERMISSION = "jobs.view_job"
# Request methods get a label of their own; any other is "other" (labels must stay few).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_VIEW = "unmatched"  # a request no URL pattern took (a 404, a slash redirect)

# registry=None: a scrape reads every process's files (MultiProcessCollector), not a registry.
JOB_TRANSITIONS = Counter(
    "jobsite_job_transitions",
    "Jobs written, by status before and after (equal: the status stayed; from empty: a new "
    "job) and the surface the change came from.",
    ["from", "to", "surface"],
    registry=None,
)
BULK_ITEMS = Counter(
    "jobsite_bulk_items",
    "Jobs that bulk runs' batches went through, by outcome: changed, or the skip reason.",
    ["outcome"],
    registry=None,
)
IMPORT_ROWS = Counter(
    "jobsite_import_rows",
    "CSV rows imports went through, by outcome: created, updated, unchanged, skipped, failed.",
    ["outcome"],
    registry=None,
)
IMPORT_DURATION = Histogram(
    "jobsite_import_duration_seconds",
    "Time from an import's start to its end, by how it ended.",
    ["status"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf")),
    registry=None,
)
REQUEST_DURATION = Histogram(
    "jobsite_http_request_duration_seconds",
    "Time the app took to answer a request (until its response started), by method, view "
    "name and status class.",
    ["method", "view", "status"],
    registry=None,
)


@cache
def retention_deleted() -> Counter:
    """Made at the first deletion: a metric without labels opens its process's file as soon
    as it is made, and every short `manage.py` command would leave an empty one behind."""
    return Counter(
        "jobsite_retention_deleted", "Expired imports deleted by retention.", registry=None
    )


def never_fails(record: Callable[..., None]) -> Callable[..., None]:
    """A metric that cannot be recorded is logged; the request or task goes on."""

    @wraps(record)
    def recorded(*args: Any, **kwargs: Any) -> None:
        try:
            record(*args, **kwargs)
        except Exception:
            logger.warning("metric not recorded: %s", record.__name__, exc_info=True)

    return recorded


# --- Counters, moved by the apps' signals -------------------------------------------------


@never_fails
def count_job_changes(sender: Any, *, transitions: Tally, surface: str, **kwargs: Any) -> None:
    for (old, new), jobs in transitions.items():
        JOB_TRANSITIONS.labels(old, new, surface).inc(jobs)


@never_fails
def count_bulk_items(sender: Any, *, outcomes: Tally, **kwargs: Any) -> None:
    for outcome, jobs in outcomes.items():
        BULK_ITEMS.labels(outcome).inc(jobs)


@never_fails
def count_import_rows(sender: Any, *, outcomes: Tally, **kwargs: Any) -> None:
    for outcome, rows in outcomes.items():
        IMPORT_ROWS.labels(outcome).inc(rows)


@never_fails
def count_deleted_imports(sender: Any, *, count: int, **kwargs: Any) -> None:
    retention_deleted().inc(count)


@never_fails
def time_finished_import(
    sender: Any, *, import_job: ImportJob, new_status: str, **kwargs: Any
) -> None:
    """An import that had started and now ended: its duration, once the ending commits."""
    if new_status in FINISHED_STATUSES and import_job.started_at and import_job.completed_at:
        seconds = (import_job.completed_at - import_job.started_at).total_seconds()
        transaction.on_commit(partial(observe_import, new_status, seconds), robust=True)


@never_fails
def observe_import(status: str, seconds: float) -> None:
    IMPORT_DURATION.labels(status).observe(max(seconds, 0.0))


def connect_receivers() -> None:
    jobs_changed.connect(count_job_changes, dispatch_uid="metrics_job_changes")
    bulk_items_processed.connect(count_bulk_items, dispatch_uid="metrics_bulk_items")
    import_rows_processed.connect(count_import_rows, dispatch_uid="metrics_import_rows")
    imports_deleted.connect(count_deleted_imports, dispatch_uid="metrics_retention_deleted")
    import_status_changed.connect(time_finished_import, dispatch_uid="metrics_import_duration")


# --- Request latency ----------------------------------------------------------------------


class RequestMetricsMiddleware:
    """Times every request the app answers, labelled by its URL pattern's name (never the
    path: one label value per URL would be unbounded)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        observe_request(request, response.status_code, time.perf_counter() - started)
        return response


@never_fails
def observe_request(request: HttpRequest, status_code: int, seconds: float) -> None:
    method = request.method if request.method in KNOWN_METHODS else "other"
    match = request.resolver_match
    view = match.view_name if match is not None and match.view_name else UNMATCHED_VIEW
    REQUEST_DURATION.labels(method, view, f"{status_code // 100}xx").observe(seconds)


# --- Gauges, read at scrape time ----------------------------------------------------------


class LiveStateCollector(Collector):
    """Jobs by status, the cluster's queue and runs whose worker died, as they are now.

    Each group is read on its own: one that cannot be read (the broker is down) is left out
    of the scrape and logged, and the others are still served."""

    def collect(self) -> Iterator[Metric]:
        for read in (jobs_by_status, queue, stale_leases):
            try:
                yield from read()
            except Exception:
                logger.warning("metrics: %s not read", read.__name__, exc_info=True)


def jobs_by_status() -> list[Metric]:
    counts = dict(Job.objects.order_by().values_list("status").annotate(Count("pk")))
    gauge = GaugeMetricFamily("jobsite_jobs", "Jobs by status.", labels=["status"])
    for status in JobStatus.values:
        gauge.add_metric([status], counts.get(status, 0))
    return [gauge]


def queue() -> list[Metric]:
    broker = get_broker()
    metrics: list[Metric] = [
        GaugeMetricFamily(
            "jobsite_queue_depth",
            "Tasks waiting in the cluster's queue for a worker.",
            value=broker.queue_size(),
        )
    ]
    enqueued_at = oldest_enqueued_at(broker)
    if enqueued_at is not NotImplemented:
        age = (timezone.now() - enqueued_at).total_seconds() if enqueued_at else 0.0
        metrics.append(
            GaugeMetricFamily(
                "jobsite_oldest_queued_seconds",
                "How long the oldest task waiting in the queue has waited (0: none waits).",
                value=max(age, 0.0),
            )
        )
    return metrics


def oldest_enqueued_at(broker: Broker) -> datetime | None:
    """When the oldest task waiting in `broker`'s queue was enqueued (None: none waits, or
    it cannot be read); NotImplemented for a broker this does not know how to look into."""
    if isinstance(broker, ORM):
        oldest = (
            broker.get_connection()
            .filter(key=broker.list_key, lock__lte=timezone.now())
            .order_by("pk")
            .first()
        )
        return oldest.task.get("started") if oldest is not None else None
    if isinstance(broker, Redis):
        payload = broker.connection.lindex(broker.list_key, 0)  # pushed right, taken left
        return SignedPackage.loads(payload).get("started") if payload is not None else None
    return NotImplemented


def stale_leases() -> list[Metric]:
    gauge = GaugeMetricFamily(
        "jobsite_stale_leases",
        "Runs still processing whose worker's lease expired: the worker died, and another "
        "takes the run over (re-delivery or the stalled-run sweep).",
        labels=["run"],
    )
    for run, model in (("import", ImportJob), ("bulk_run", BulkRun)):
        gauge.add_metric([run], model.objects.stalled().filter(status=RunStatus.PROCESSING).count())
    return [gauge]


# --- The scrape ---------------------------------------------------------------------------


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Every process's metrics and the live state, for a scraper holding an API token of a
    user with jobs.view_job, or for staff in their browser session."""
    refusal = refuse_scrape(request)
    if refusal is not None:
        return refusal
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(LiveStateCollector())
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(registry), content_type=content_type)


def refuse_scrape(request: HttpRequest) -> HttpResponse | None:
    """The 401 or 403 answer to a request that may not scrape; None when it may.

    A token that is sent must be good, even beside a session (as in the JSON API)."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer":
            return unauthorized("Send the token as: Authorization: Bearer <token>.")
        token = ApiToken.authenticate(secret.strip())
        if token is None:
            return unauthorized("The token is unknown, expired or revoked.", "invalid_token")
        user = token.user
    elif not request.user.is_authenticated:
        return unauthorized("Metrics need an API token: Authorization: Bearer <token>.")
    elif not request.user.is_staff:
        return forbidden("Metrics need an API token or a staff login.")
    else:
        return None  # staff in their browser session, as the operators look
    if not user.has_perm(SCRAPE_PERMISSION):
        return forbidden(f"Metrics need the {SCRAPE_PERMISSION} permission.")
    return None


def unauthorized(message: str, error: str = "") -> HttpResponse:
    response = HttpResponse(message, status=401, content_type="text/plain; charset=utf-8")
    response["WWW-Authenticate"] = f'Bearer error="{error}"' if error else "Bearer"
    return response


def forbidden(message: str) -> HttpResponse:
    return HttpResponse(message, status=403, content_type="text/plain; charset=utf-8")
