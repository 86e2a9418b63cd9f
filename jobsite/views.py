"""The site-wide pages: /healthz for probes, the staff Cluster page and /favicon.ico.

Cluster liveness comes from the status each qcluster publishes through its broker's cache
(django-q2's Stat: the Django cache with the ORM broker, Redis with the Redis broker). A
published status lives 3 seconds, so the last sighting is remembered in the cache too: a
cluster restarting for a few seconds does not flip the health to degraded.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_q.brokers import Broker, get_broker
from django_q.brokers.orm import ORM as OrmBroker
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.humanhash import humanize
from django_q.models import Failure, Schedule, Task
from django_q.signing import SignedPackage
from django_q.status import Stat
from django_q.tasks import async_task

from imports.models import ImportErrorRecord
from imports.retention import SCHEDULE_FUNC, SCHEDULE_NAME, expired_imports
from jobsite.models import ApiToken

logger = logging.getLogger(__name__)

CLUSTER_FRESH_SECONDS = 60
LAST_SEEN_KEY = "jobsite:cluster-last-seen"
LAST_SEEN_REFRESH_SECONDS = 10  # write the remembered sighting at most this often
FAILURES_SHOWN = 20


def _cluster_stats() -> list[Stat]:
    return Stat.get_all(broker=get_broker())


def cluster_seen(stats: list[Stat], now: datetime) -> datetime | None:
    """When a cluster was last seen: now if one is publishing, else the remembered sighting."""
    cache = caches[Conf.CACHE]
    remembered = cache.get(LAST_SEEN_KEY)
    if not stats:
        return remembered
    latest = min(max(stat.timestamp for stat in stats), now)
    if remembered is None or (latest - remembered).total_seconds() > LAST_SEEN_REFRESH_SECONDS:
        cache.set(LAST_SEEN_KEY, latest, timeout=None)
    return latest


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.warning("healthz: database unreachable", exc_info=True)
        return False
    return True


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and monitors: no login, nothing sensitive."""
    database_ok = _database_ok()
    now = timezone.now()
    seen_seconds_ago: int | None = None
    workers = 0
    queue_depth: int | None = None
    try:
        stats = _cluster_stats()
        workers = sum(len(stat.workers) for stat in stats)
        seen = cluster_seen(stats, now)
        if seen is not None:
            seen_seconds_ago = max(0, int((now - seen).total_seconds()))
    except Exception:  # the cache or broker is down: the cluster counts as not seen
        logger.warning("healthz: cluster status unavailable", exc_info=True)
    try:
        queue_depth = get_broker().queue_size()
    except Exception:
        logger.warning("healthz: queue size unavailable", exc_info=True)
    cluster_fresh = seen_seconds_ago is not None and seen_seconds_ago <= CLUSTER_FRESH_SECONDS
    if not database_ok:
        status = "down"
    elif cluster_fresh:
        status = "ok"
    else:
        status = "degraded"
    return JsonResponse(
        {
            "database": "ok" if database_ok else "unreachable",
            "cluster": {"seen_seconds_ago": seen_seconds_ago, "workers": workers},
            "queue_depth": queue_depth,
            "status": status,
        },
        status=200 if database_ok else 503,
    )


def _error_summary(result: object) -> str:
    """The error line of a failed task's result, without django-q2's appended traceback."""
    return str(result).split(" : Traceback", 1)[0].strip()


def _staff_only(request: HttpRequest) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("staff status")


def oldest_queued_seconds(broker: Broker, now: datetime) -> int | None:
    """How long the oldest task waiting in the queue has waited; None when none waits or
    the broker is neither django-q2's ORM nor its Redis broker."""
    if isinstance(broker, OrmBroker):
        oldest = (
            broker.get_connection()
            .filter(key=broker.list_key, lock__lte=now)
            .order_by("pk")
            .values_list("payload", flat=True)
            .first()
        )
    elif isinstance(broker, RedisBroker):
        oldest = broker.connection.lindex(broker.list_key, 0)
    else:
        return None
    if oldest is None:
        return None
    enqueued = SignedPackage.loads(oldest).get("started")
    return max(0, int((now - enqueued).total_seconds())) if enqueued else None


def cluster_health(now: datetime) -> dict[str, Any]:
    """The cluster as the Cluster page and the dashboard show it: each node (a qcluster)
    with its workers, when one was last seen, the broker, queue depth, tasks in progress and
    how long the oldest queued task has waited."""
    broker = get_broker()
    stats = sorted(_cluster_stats(), key=lambda stat: stat.host)
    clusters = [
        {
            "name": humanize(stat.cluster_id.hex),
            "host": stat.host,
            "status": stat.status,
            "workers": len(stat.workers),
            "started": stat.tob,
            "seen_seconds_ago": max(0, int((now - stat.timestamp).total_seconds())),
        }
        for stat in stats
    ]
    return {
        "clusters": clusters,
        "workers": sum(c["workers"] for c in clusters),
        "last_seen": cluster_seen(stats, now),
        "broker": broker.info(),
        "queued": broker.queue_size(),
        "in_progress": broker.lock_size(),
        "oldest_queued_seconds": oldest_queued_seconds(broker, now),
    }


@require_safe
@login_required
def cluster_status(request: HttpRequest) -> TemplateResponse:
    _staff_only(request)
    schedules = list(Schedule.objects.order_by("next_run"))
    last_tasks = Task.objects.in_bulk([s.task for s in schedules if s.task])
    for schedule in schedules:
        schedule.last_task = last_tasks.get(schedule.task)
    return TemplateResponse(
        request,
        "jobsite/cluster.html",
        {
            **cluster_health(timezone.now()),
            "failures": [
                (failure, _error_summary(failure.result))
                for failure in Failure.objects.order_by("-stopped")[:FAILURES_SHOWN]
            ],
            "last_retention": Task.objects.filter(func=SCHEDULE_FUNC).order_by("-stopped").first(),
            "schedules": schedules,
            "retention_schedule": SCHEDULE_NAME,
            "retention_days": settings.IMPORT_RETENTION_DAYS,
            "keep_failed": settings.IMPORT_RETENTION_KEEP_FAILED,
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def run_retention(request: HttpRequest) -> HttpResponse:
    """GET: what retention would delete now, with a confirm button. POST: enqueue it.

    It deletes imports in bulk, so it takes a permission of its own besides staff status."""
    _staff_only(request)
    if not request.user.has_perm("imports.run_retention"):
        raise PermissionDenied("imports.run_retention")
    if request.method == "POST":
        actor = f"user:{request.user.get_username()}"
        task_id = async_task(SCHEDULE_FUNC, actor=actor, group=SCHEDULE_NAME)
        logger.info(
            "import retention enqueued: actor=%s task=%s",
            actor,
            task_id,
            extra={"event": "import_retention_enqueued", "actor": actor, "task_id": task_id},
        )
        messages.success(
            request,
            "Retention cleanup queued: the cluster deletes expired imports in the background. "
            "Reload this page to see its result under Retention.",
        )
        return HttpResponseRedirect(reverse("cluster"))
    expired = expired_imports(
        days=settings.IMPORT_RETENTION_DAYS,
        include_failed=not settings.IMPORT_RETENTION_KEEP_FAILED,
        now=timezone.now(),
    )
    context: dict[str, Any] = {
        "confirming": True,
        "imports": expired.count(),
        "error_records": ImportErrorRecord.objects.filter(import_job__in=expired).count(),
        "retention_days": settings.IMPORT_RETENTION_DAYS,
        "keep_failed": settings.IMPORT_RETENTION_KEEP_FAILED,
    }
    template = "jobsite/cluster.html#confirm" if request.htmx else "jobsite/cluster.html"
    return TemplateResponse(request, template, context)


@require_safe
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico on every page, the admin's too: send them to the icon."""
    return HttpResponseRedirect(static("favicon.svg"))


# --- API tokens (docs/api.md, "Tokens") ---------------------------------------------------


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “nightly sync”.")
    expires_days = forms.IntegerField(
        label="Expires after (days)",
        required=False,
        min_value=1,
        max_value=3650,
        help_text="Leave empty for a token that does not expire.",
    )


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def api_tokens(request: HttpRequest) -> TemplateResponse:
    """One's own API tokens: create one (its secret shown once, on this answer only), see
    when each was used, revoke."""
    secret = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        _, secret = ApiToken.issue(
            user=request.user,
            name=form.cleaned_data["name"],
            expires_days=form.cleaned_data["expires_days"],
        )
        form = ApiTokenForm()
    context = {
        "form": form,
        "secret": secret,
        "tokens": ApiToken.objects.filter(user=request.user),
    }
    response = TemplateResponse(request, "jobsite/api_tokens.html", context)
    if secret:
        response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponseRedirect:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    token.revoke()
    messages.success(request, f"Revoked the token “{token.name}”.")
    return HttpResponseRedirect(reverse("api-tokens"))
