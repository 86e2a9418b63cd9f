"""The bulk runs part of the JSON API v1 (docs/bulk-runs.md, "API"): start a run on the jobs
a filter (the jobs list's query string) or a list of ids selects, follow it, cancel it. The
runs are jobs.bulk_runs's, the same as the list page's and `manage.py bulk_jobs`'s."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Router, Schema

from jobs.api import ApiError, problems, require_perm
from jobs.bulk_runs import BulkRunRefused, draft_bulk_run, run_as_json, start_bulk_run
from jobs.models import BulkAction, BulkRun, JobEvent
from jobs.runs import RunNotCancellable, RunStatus

router = Router(tags=["bulk runs"])


class BulkRunIn(Schema):
    """`filter` is the jobs list's query string (`status=failed&q=printer:"Prusa 1"`; "" is
    every job); `job_ids` selects those jobs instead. The action's value: `status`
    (set_status), `priority` (set_priority), `printer` (set_printer, an active printer's
    name), `reason` (cancel)."""

    action: BulkAction
    filter: str = ""
    job_ids: list[int] | None = None
    status: str | None = None
    priority: int | None = None
    printer: str | None = None
    reason: str = ""


class BulkRunOut(Schema):
    id: int
    url: str
    page_url: str
    skipped_csv_url: str
    status: RunStatus
    action: BulkAction
    action_label: str
    query: str
    job_ids: list[int] | None
    new_status: str | None
    new_priority: int | None
    new_printer: str | None
    reason: str
    created_by: str | None
    origin: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    max_job_id: int
    total_count: int | None
    processed_count: int
    changed_count: int
    skipped_count: int
    skipped_by_reason: dict[str, int]
    progress: int
    rows_per_second: float | None
    eta_seconds: float | None
    attempts: int
    cancel_requested: bool
    cancellation_reason: str
    failure_message: str


def bulk_run_out(run: BulkRun) -> dict[str, Any]:
    """The run's record (BulkRunOut) as stored now: the API's and the MCP tools'."""
    run = BulkRun.objects.select_related("created_by", "new_printer").get(pk=run.pk)
    return {
        **run_as_json(run),
        # As datetimes, which the schema writes in its own form wherever the record goes.
        "created_at": run.created_at,
        "started_at": run.started_at,
        "completed_at": run.completed_at,
        "url": reverse("api:bulk_run_get", args=[run.pk]),
        "page_url": run.get_absolute_url(),
        "skipped_csv_url": reverse("jobs:bulk-run-skipped", args=[run.pk]),
    }


def _answer(run: BulkRun, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(
        BulkRunOut(**bulk_run_out(run)).model_dump_json(),
        status=status,
        content_type="application/json",
    )
    for name, value in headers.items():
        response[name] = value
    return response


@router.post(
    "",
    response={202: BulkRunOut, **problems(400, 422)},
    url_name="bulk_run_create",
    summary="Start a bulk run",
)
def bulk_run_create(request: HttpRequest, payload: BulkRunIn) -> HttpResponse:
    """202: the run is enqueued on the cluster; follow its `url`. 422 when the filter
    cannot be read or the action's value is wrong (nothing is started)."""
    require_perm(request, "jobs.change_job")
    try:
        run = draft_bulk_run(
            actor=request.user,
            origin=JobEvent.Origin.API,
            action=payload.action,
            query=payload.filter,
            job_ids=payload.job_ids,
            status=payload.status or "",
            priority=payload.priority,
            printer=payload.printer,
            reason=payload.reason,
        )
    except BulkRunRefused as refused:
        raise ApiError(
            422, str(refused), code="INVALID_BULK_RUN", errors={"body": refused.messages}
        ) from None
    start_bulk_run(run)
    url = reverse("api:bulk_run_get", args=[run.pk])
    return _answer(run, 202, Location=url)


@router.get(
    "/{int:run_id}",
    response={200: BulkRunOut, **problems(404)},
    url_name="bulk_run_get",
    summary="A bulk run: progress and report",
)
def bulk_run_get(request: HttpRequest, run_id: int) -> HttpResponse:
    require_perm(request, "jobs.view_job")
    return _answer(get_object_or_404(BulkRun, pk=run_id))


@router.delete(
    "/{int:run_id}",
    response={200: BulkRunOut, 202: BulkRunOut, **problems(404, 409)},
    url_name="bulk_run_delete",
    summary="Cancel a bulk run",
)
def bulk_run_delete(request: HttpRequest, run_id: int) -> HttpResponse:
    """200 when cancelled at once (it had not started), 202 when the worker was asked to
    stop after its batch, 409 when the run has already finished. Changed jobs stay."""
    require_perm(request, "jobs.change_job")
    run = get_object_or_404(BulkRun, pk=run_id)
    try:
        run.request_cancel(actor=request.user)
    except RunNotCancellable as refused:
        raise ApiError(409, str(refused), code="NOT_CANCELLABLE") from None
    return _answer(run, 200 if run.status == RunStatus.CANCELLED else 202)
