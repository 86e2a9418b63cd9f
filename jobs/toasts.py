"""Toasts: a user's runs (the kinds jobs.runs.follow_runs registers: bulk runs, imports) that
finished after the moment kept in their session (`ANNOUNCED_KEY`; at first their login) are
announced once, on their next page (base.html, `{% run_toasts %}`) or on a poll of the live
pages that found a change (jobs.live), and the moment moves past them. A run seen finished on
its own page (`mark_seen`) is not announced again, and no page announces its own run.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Model
from django.http import HttpRequest

from jobs.runs import FOLLOWED_RUNS, RunStatus

ANNOUNCED_KEY = "live_announced_at"
SEEN_KEY = "live_seen_runs"


@dataclass(frozen=True)
class Toast:
    message: str
    url: str
    level: str

    def as_dict(self) -> dict[str, str]:
        return {"message": self.message, "url": self.url, "level": self.level}


def run_key(run: Model) -> str:
    return f"{run._meta.label_lower}:{run.pk}"


def mark_seen(request: HttpRequest, run: Any) -> None:
    """`run`, finished, was shown on its own page: announce it nowhere else."""
    since = _announced_at(request)
    if since is None or not run.is_finished or run.completed_at is None:
        return
    seen = request.session.get(SEEN_KEY, [])
    if run.completed_at > since and run_key(run) not in seen:
        request.session[SEEN_KEY] = [*seen, run_key(run)]


def _announced_at(request: HttpRequest) -> datetime | None:
    """The moment runs finished after are still to be announced: the session's, or at first
    the login's (nothing from before the session)."""
    raw = request.session.get(ANNOUNCED_KEY)
    try:
        return datetime.fromisoformat(raw) if raw else request.user.last_login
    except ValueError:
        return request.user.last_login


def announcements(request: HttpRequest) -> list[dict[str, str]]:
    """The toasts of the user's runs that finished since the last announcement, oldest first,
    as dicts (message, url, level); each is announced once. One query when there are none."""
    user = request.user
    since = _announced_at(request) if user.is_authenticated else None
    if since is None:
        return []
    mine = [
        kind.model.objects.filter(created_by=user, completed_at__gt=since) for kind in FOLLOWED_RUNS
    ]
    if not mine:
        return []
    moments = [runs.order_by().values("completed_at") for runs in mine]
    if not moments[0].union(*moments[1:])[:1]:
        return []
    runs: list[Any] = sorted(
        (run for finished in mine for run in finished), key=lambda run: run.completed_at
    )
    if not runs:
        return []
    seen = set(request.session.get(SEEN_KEY, []))
    own = _own_run_key(request)
    toasts = [
        toast_for(run).as_dict() for run in runs if run_key(run) not in seen and run_key(run) != own
    ]
    request.session[ANNOUNCED_KEY] = runs[-1].completed_at.isoformat()
    request.session.pop(SEEN_KEY, None)
    return toasts


def _own_run_key(request: HttpRequest) -> str:
    """The run whose page this request is, if it is one."""
    match = request.resolver_match
    if match is None or "pk" not in match.kwargs:
        return ""
    labels = {kind.page: kind.model._meta.label_lower for kind in FOLLOWED_RUNS}
    label = labels.get(match.view_name)
    return f"{label}:{match.kwargs['pk']}" if label else ""


def toast_for(run: Any) -> Toast:
    """The run's own announcement (`Import “jobs.csv” completed: …`), linking to the run."""
    level = "success" if run.status == RunStatus.COMPLETED else "error"
    return Toast(run.announcement(), run.get_absolute_url(), level)
