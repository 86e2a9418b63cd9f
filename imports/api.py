"""The imports part of the JSON API v1 (docs/api.md, "Imports"): upload a CSV with the page's
checks (imports.intake), follow its progress, list, cancel, and read its errors as JSON pages
or CSV. Who may see and cancel an import is the pages' rule (imports.views.may_view and
may_cancel)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import File, Form, Query, Router, Schema
from ninja.files import UploadedFile

from imports.intake import UploadRejected, create_import, find_duplicate, inspect_upload
from imports.models import ImportJob, ImportNotCancellable, ImportStatus, OnError, OnExisting
from imports.views import error_csv_response, may_cancel, may_view
from jobs.api import (
    ApiError,
    Problem,
    cursor_for,
    cursor_position,
    damaged_cursor,
    one_page,
    problems,
    require_perm,
)
from jobs.paging import DEFAULT_LIMIT, MAX_LIMIT

router = Router(tags=["imports"])


class ImportOut(Schema):
    id: UUID
    url: str
    status: ImportStatus
    original_filename: str
    file_size: int
    encoding: str
    delimiter: str
    on_error: OnError
    on_existing: OnExisting
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    progress: float
    estimated_rows: int
    total_rows: int | None
    processed_rows: int
    created_count: int
    updated_count: int
    skipped_count: int
    error_count: int
    rows_per_second: float | None
    eta_seconds: float | None
    warnings: list[str]
    failure_message: str
    waiting_reason: str
    cancel_requested: bool
    cancellation_reason: str
    errors_url: str
    errors_csv_url: str
    jobs_url: str


class ImportPage(Schema):
    items: list[ImportOut]
    next_cursor: str | None


class ImportErrorOut(Schema):
    row: int
    field: str | None
    error_type: str
    message: str
    raw_data: str


class ImportErrorPage(Schema):
    items: list[ImportErrorOut]
    next_cursor: str | None


class CancelIn(Schema):
    reason: str = ""


def import_out(import_job: ImportJob) -> dict[str, Any]:
    pk = import_job.pk
    return {
        "id": pk,
        "url": reverse("api:import_get", args=[pk]),
        **{
            name: getattr(import_job, name)
            for name in (
                "status",
                "original_filename",
                "file_size",
                "encoding",
                "delimiter",
                "on_error",
                "on_existing",
                "created_at",
                "started_at",
                "completed_at",
                "estimated_rows",
                "total_rows",
                "processed_rows",
                "created_count",
                "updated_count",
                "skipped_count",
                "error_count",
                "rows_per_second",
                "eta_seconds",
                "failure_message",
                "waiting_reason",
                "cancellation_reason",
            )
        },  # fmt: skip
        "created_by": import_job.created_by.get_username() if import_job.created_by else None,
        "progress": import_job.progress_percent / 100,
        "warnings": [str(warning) for warning in import_job.warnings or []],
        "cancel_requested": import_job.cancel_requested_at is not None,
        "errors_url": reverse("api:import_errors", args=[pk]),
        "errors_csv_url": reverse("api:import_errors_csv", args=[pk]),
        "jobs_url": reverse("api:job_list") + f"?import={pk}",
    }


def _answer(import_job: ImportJob, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(
        ImportOut(**import_out(import_job)).model_dump_json(),
        status=status,
        content_type="application/json",
    )
    for name, value in headers.items():
        response[name] = value
    return response


def _import_for(request: HttpRequest, import_id: UUID) -> ImportJob:
    import_job = get_object_or_404(
        ImportJob.objects.select_related("created_by", "cancelled_by"), pk=import_id
    )
    if not may_view(request.user, import_job):
        raise ApiError(403, "You need the permission imports.view_importjob for this.")
    return import_job


@router.post(
    "",
    response={201: ImportOut, **problems(400, 409, 413, 422)},
    url_name="import_create",
    summary="Upload a CSV file to import",
)
def import_create(
    request: HttpRequest,
    file: File[UploadedFile],
    on_error: Form[OnError] = OnError.SKIP,
    on_existing: Form[OnExisting] = OnExisting.UPDATE,
    force: Form[bool] = False,
) -> HttpResponse:
    """The upload checks of docs/csv-import.md; a file imported before is refused (409, with
    that import's link) unless `force`. The import runs on the cluster: follow its `url`."""
    require_perm(request, "imports.add_importjob")
    limit_mb = settings.IMPORT_MAX_UPLOAD_MB
    if file.size is not None and file.size > limit_mb * 1024 * 1024:
        raise ApiError(
            413, f"The file is larger than the {limit_mb} MB upload limit.", code="TOO_LARGE"
        )
    try:
        info = inspect_upload(file)
    except UploadRejected as refused:
        status, code = (413, "TOO_LARGE") if "upload limit" in str(refused) else (400, "REJECTED")
        raise ApiError(status, str(refused), code=code, errors={"file": [str(refused)]}) from None
    if not force:
        earlier = find_duplicate(info.file_hash)
        if earlier is not None:
            raise ApiError(
                409,
                "This file was imported before; send force=true to import it again.",
                code="DUPLICATE_FILE",
                duplicate={
                    "id": str(earlier.pk),
                    "url": reverse("api:import_get", args=[earlier.pk]),
                    "status": earlier.status,
                },
            )
    import_job = create_import(
        file, info, user=request.user, on_error=on_error, on_existing=on_existing
    )
    url = reverse("api:import_get", args=[import_job.pk])
    return _answer(ImportJob.objects.select_related("created_by").get(pk=import_job.pk), 201,
                   Location=url)  # fmt: skip


@router.get(
    "",
    response={200: ImportPage, **problems(400, 422)},
    url_name="import_list",
    summary="List imports",
)
def import_list(
    request: HttpRequest,
    status: ImportStatus | None = None,
    mine: bool = False,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
) -> Any:
    """Newest first. Every import for those who may view imports; their own for those who
    may only upload (as the imports page)."""
    sees_all = request.user.has_perm("imports.view_importjob")
    if not sees_all and not request.user.has_perm("imports.add_importjob"):
        raise ApiError(403, "You need the permission imports.view_importjob for this.")
    imports = ImportJob.objects.select_related("created_by").order_by("-created_at", "-id")
    if status:
        imports = imports.filter(status=status)
    if mine or not sees_all:
        imports = imports.filter(created_by=request.user)
    if cursor:
        created_at, pk = _position(cursor)
        imports = imports.filter(created_at__lte=created_at).exclude(
            created_at=created_at, id__gte=pk
        )
    items, more = one_page(imports, limit)
    last = items[-1] if items else None
    return {
        "items": [import_out(import_job) for import_job in items],
        "next_cursor": cursor_for([last.created_at.isoformat(), str(last.pk)]) if more else None,
    }


@router.get(
    "/{uuid:import_id}",
    response={200: ImportOut, **problems(404)},
    url_name="import_get",
    summary="One import: status, progress, counts",
)
def import_get(request: HttpRequest, import_id: UUID) -> HttpResponse:
    return _answer(_import_for(request, import_id))


def _cancel(request: HttpRequest, import_id: UUID, reason: str) -> HttpResponse:
    import_job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=import_id)
    if not may_cancel(request.user, import_job):
        raise ApiError(403, "You need the permission imports.change_importjob for this.")
    try:
        import_job.request_cancel(actor=request.user, reason=reason)
    except ImportNotCancellable as refused:
        raise ApiError(409, str(refused), code="NOT_CANCELLABLE") from None
    import_job = ImportJob.objects.select_related("created_by").get(pk=import_job.pk)
    return _answer(import_job, 200 if import_job.status == ImportStatus.CANCELLED else 202)


CANCEL_RESPONSES = {200: ImportOut, 202: ImportOut, **problems(404, 409)}


@router.delete(
    "/{uuid:import_id}",
    response=CANCEL_RESPONSES,
    url_name="import_delete",
    summary="Cancel an import",
)
def import_delete(request: HttpRequest, import_id: UUID) -> HttpResponse:
    """200 when cancelled at once, 202 when the worker was asked to stop after its batch,
    409 when the import has already finished. The import's record stays."""
    return _cancel(request, import_id, "")


@router.post(
    "/{uuid:import_id}/cancel",
    response={**CANCEL_RESPONSES, 400: Problem, 422: Problem},
    url_name="import_cancel",
    summary="Cancel an import, with a reason",
)
def import_cancel(
    request: HttpRequest, import_id: UUID, payload: CancelIn | None = None
) -> HttpResponse:
    return _cancel(request, import_id, payload.reason if payload else "")


@router.get(
    "/{uuid:import_id}/errors",
    response={200: ImportErrorPage, **problems(400, 404, 422)},
    url_name="import_errors",
    summary="An import's row errors",
)
def import_errors(
    request: HttpRequest,
    import_id: UUID,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
) -> Any:
    """In row order, paged by an opaque cursor."""
    import_job = _import_for(request, import_id)
    errors = import_job.errors.order_by("row", "id")
    if cursor:
        row, pk = _position(cursor, first=int)
        errors = errors.filter(row__gte=row).exclude(row=row, id__lte=pk)
    items, more = one_page(errors, limit)
    return {
        "items": [
            {
                "row": error.row,
                "field": error.field,
                "error_type": error.error_type,
                "message": error.message,
                "raw_data": error.raw_data,
            }
            for error in items
        ],
        "next_cursor": cursor_for([items[-1].row, items[-1].pk]) if more else None,
    }


@router.get(
    "/{uuid:import_id}/errors.csv",
    response={200: str, **problems(404)},
    url_name="import_errors_csv",
    summary="An import's row errors as CSV",
    openapi_extra={
        "responses": {
            200: {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}
        }
    },
)
def import_errors_csv(request: HttpRequest, import_id: UUID) -> StreamingHttpResponse:
    import_job = _import_for(request, import_id)
    return error_csv_response(import_job, f"import-{import_job.pk}-errors.csv")


def _position(cursor: str, first: type = datetime) -> tuple[Any, Any]:
    """A cursor's (created_at, id) of an import, or (row, id) of an error record."""
    damaged = damaged_cursor()
    try:
        head, tail = cursor_position(cursor)
        if first is int:
            if type(head) is not int or type(tail) is not int:
                raise damaged
            return head, tail
        moment = datetime.fromisoformat(head)
        if moment.tzinfo is None:
            raise damaged
        return moment, UUID(tail)
    except (ValueError, TypeError, AttributeError):
        raise damaged from None
