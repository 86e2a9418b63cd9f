"""The jobs part of the JSON API v1 (docs/api.md, "Jobs"): the list with the page's filters,
search syntax and cursor paging, one job with its ETag, create, full and partial edits behind
If-Match, cancel, history, and the atomic bulk status change. Every write goes through
Job.insert / apply_changes / cancel or jobs.bulk, with the origin "api"; every field rule is
the edit form's (jobs.forms.JobForm).

The API's error type lives here too, since `jobs` imports no other app: jobsite/api.py and
imports/api.py answer with the same problem documents.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from functools import cache
from typing import Annotated, Any

import orjson
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Body, Query, Router, Schema
from ninja.errors import HttpError
from pydantic import ConfigDict

from jobs import bulk
from jobs.filters import SORT_FIELDS, JobFilter
from jobs.forms import CANCELLATION_REASON_MAX, JobForm
from jobs.models import EDITABLE_FIELDS, Job, JobEvent, NotCancellable, VersionConflict
from jobs.paging import (
    DEFAULT_LIMIT,
    DEFAULT_SORT,
    MAX_LIMIT,
    InvalidCursor,
    paginate,
    parse_sort,
)
from jobs.status import InvalidTransition, JobStatus
from jobs.validation import clean_reference, clean_text

PROBLEM_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    422: "Unprocessable content",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
DEFAULT_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    412: "VERSION_CONFLICT",
    413: "TOO_LARGE",
    422: "VALIDATION_ERROR",
    428: "PRECONDITION_REQUIRED",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "DB_ERROR",
}
# Errors any operation may answer: no or a bad token, a missing permission, the rate limit.
COMMON_PROBLEMS = (401, 403, 429)


class Problem(Schema):
    """An error (RFC 9457) with a machine-readable `code` and `errors` per field. Some carry
    more members: `current`, `changed_by`, `changed_at` (412), the bulk contract's
    `updated_count`, `failed_count` and `results` (422 of bulk-status), `retryable` (503),
    `duplicate` (409 of an upload)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: dict[str, list[str]] | None = None


class ApiError(Exception):
    """An error answer: `raise ApiError(404, "No job with id 5.")`."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or DEFAULT_CODES.get(status, "ERROR")
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


def problem(error: ApiError) -> HttpResponse:
    """The application/problem+json answer of `error`."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": TITLES.get(error.status, "Error"),
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
    }
    if error.errors is not None:
        body["errors"] = error.errors
    body.update(error.extra)
    response = JsonResponse(body, status=error.status, content_type=PROBLEM_TYPE)
    for name, value in error.headers.items():
        response[name] = value
    return response


def problems(*statuses: int) -> dict[int, type[Problem]]:
    """The `response=` entries of the errors an operation may answer."""
    return {status: Problem for status in (*COMMON_PROBLEMS, *statuses)}


def require_perm(request: HttpRequest, perm: str) -> None:
    """The token's (or the session's) user must hold `perm`, a Django permission."""
    if not request.user.has_perm(perm):
        raise ApiError(403, f"You need the permission {perm} for this.")


def form_errors(form: Any) -> dict[str, list[str]]:
    """A Django form's errors by field ("body" for the form as a whole)."""
    return {
        ("body" if name == "__all__" else name): [str(message) for message in messages]
        for name, messages in form.errors.items()
    }


def invalid(errors: dict[str, list[str]]) -> ApiError:
    return ApiError(422, f"Invalid value in: {', '.join(errors)}.", errors=errors)


# --- Schemas ---------------------------------------------------------------------------


class JobOut(Schema):
    id: int
    url: str
    name: str
    status: str
    priority: int
    is_business: bool
    customer_name: str
    notes: str
    file_name: str
    printer_id: int | None
    printer: str | None
    reference: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancellation_reason: str
    created_by: str | None
    updated_by: str | None
    cancelled_by: str | None


class JobPage(Schema):
    items: list[JobOut]
    next_cursor: str | None


class JobCreate(Schema):
    """The editable fields (docs/jobs.md, "Fields"), `printer` by its id, and an optional
    reference; the others take their defaults."""

    model_config = ConfigDict(extra="forbid")

    name: str
    status: JobStatus = JobStatus.PENDING
    priority: int = 0
    is_business: bool = False
    customer_name: str = ""
    notes: str = ""
    file_name: str = ""
    printer: int | None = None
    reference: str | None = None


class JobPut(Schema):
    """Every editable field; `printer` is a printer's id or null."""

    model_config = ConfigDict(extra="forbid")

    name: str
    status: JobStatus
    priority: int
    is_business: bool
    customer_name: str
    notes: str
    file_name: str
    printer: int | None


class JobPatch(Schema):
    """Some of the editable fields; the others keep their values."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    status: JobStatus | None = None
    priority: int | None = None
    is_business: bool | None = None
    customer_name: str | None = None
    notes: str | None = None
    file_name: str | None = None
    printer: int | None = None


class CancelIn(Schema):
    reason: str = ""


class EventOut(Schema):
    id: int
    kind: str
    changes: dict[str, Any]
    actor: str | None
    origin: str
    origin_ref: str
    created_at: datetime


class EventPage(Schema):
    items: list[EventOut]
    next_cursor: str | None


class BulkResultError(Schema):
    code: str
    message: str


class BulkResult(Schema):
    id: Any = None
    success: bool
    error: BulkResultError | None = None


class BulkOut(Schema):
    updated_count: int
    failed_count: int
    results: list[BulkResult]


# A page of jobs is read as plain rows, with the users' names and the printer's joined in:
# building model instances of a job and its four related rows cost more than the query.
ROW_COLUMNS = (
    "id", "name", "status", "priority", "is_business", "customer_name", "notes", "file_name",
    "printer_id", "reference", "version", "created_at", "updated_at", "started_at",
    "completed_at", "cancelled_at", "cancellation_reason",
)  # fmt: skip
ROW_RELATED = {"printer": "printer__name"} | {
    name: f"{name}__{get_user_model().USERNAME_FIELD}"
    for name in ("created_by", "updated_by", "cancelled_by")
}


def job_rows(ids: list[int]) -> list[dict[str, Any]]:
    """The JobOut records of the jobs `ids`, in that order."""
    rows = Job.objects.filter(pk__in=ids).values(*ROW_COLUMNS, *ROW_RELATED.values())
    by_id = {row["id"]: row for row in rows}
    prefix = _jobs_url()
    records = []
    for pk in ids:
        row = by_id.get(pk)
        if row is None:  # deleted since the page was read
            continue
        for name, column in ROW_RELATED.items():
            row[name] = row.pop(column)
        row["url"] = f"{prefix}/{pk}"
        records.append(row)
    return records


# Times are written as Django's encoder writes them everywhere else (milliseconds, "Z").
_DJANGO_JSON = DjangoJSONEncoder()


def fast_json(body: Any) -> bytes:
    """`body` as JSON, by orjson: a page of jobs in a fifth of json.dumps' time."""
    return orjson.dumps(body, default=_DJANGO_JSON.default, option=orjson.OPT_PASSTHROUGH_DATETIME)


@cache
def _jobs_url() -> str:
    return reverse("api:job_list")


def job_out(job: Job) -> dict[str, Any]:
    def username(user: Any) -> str | None:
        return user.get_username() if user is not None else None

    return {
        "id": job.pk,
        "url": f"{_jobs_url()}/{job.pk}",
        **{name: getattr(job, name) for name in EDITABLE_FIELDS if name != "printer"},
        "printer_id": job.printer_id,
        "printer": job.printer.name if job.printer_id else None,
        "reference": job.reference,
        "version": job.version,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "cancelled_at": job.cancelled_at,
        "cancellation_reason": job.cancellation_reason,
        "created_by": username(job.created_by),
        "updated_by": username(job.updated_by),
        "cancelled_by": username(job.cancelled_by),
    }


# --- Versions: ETag, If-Match, If-None-Match ---------------------------------------------


def etag(job: Job) -> str:
    return f'"{job.pk}.{job.version}"'


def _tags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def expected_version(request: HttpRequest, job: Job) -> int | None:
    """The version `If-Match` names (None for `*`): 428 without the header, 412 when it names
    no version of this job."""
    header = request.headers.get("If-Match")
    if not header:
        raise ApiError(
            428,
            "Send If-Match with the job's ETag (from GET), so a change cannot overwrite "
            "someone else's.",
            code="PRECONDITION_REQUIRED",
        )
    tags = _tags(header)
    if "*" in tags:
        return None
    for tag in tags:
        pk, _, version = tag.strip('"').partition(".")
        if pk == str(job.pk) and version.isdigit() and len(version) < 10:
            return int(version)
    raise version_conflict(job)


def version_conflict(job: Job) -> ApiError:
    latest = Job.objects.with_related().get(pk=job.pk)
    changed_by = latest.updated_by.get_username() if latest.updated_by else None
    return ApiError(
        412,
        f"Job {latest.pk} was changed by {changed_by or 'the system'} (now version "
        f"{latest.version}); nothing was written. Apply your change to the current job.",
        code="VERSION_CONFLICT",
        headers={"ETag": etag(latest)},
        current=json.loads(JobOut(**job_out(latest)).model_dump_json()),
        changed_by=changed_by,
        changed_at=latest.updated_at.isoformat(),
    )


def _answer(job: Job, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(
        JobOut(**job_out(job)).model_dump_json(), status=status, content_type="application/json"
    )
    response["ETag"] = etag(job)
    for name, value in headers.items():
        response[name] = value
    return response


# --- Operations --------------------------------------------------------------------------


def _header(name: str, description: str) -> dict[str, Any]:
    """An optional request header, documented for client generators."""
    parameter = {"in": "header", "name": name, "required": False, "schema": {"type": "string"}}
    return {"parameters": [parameter | {"description": description}]}


IF_MATCH = _header(
    "If-Match", "The job's ETag from GET; PUT and PATCH need it (428 without, 412 when stale)."
)
IF_NONE_MATCH = _header("If-None-Match", "An ETag you hold: 304 while the job still has it.")

router = Router(tags=["jobs"])


@router.get(
    "",
    response={200: JobPage, **problems(400, 422)},
    url_name="job_list",
    summary="List jobs",
)
def job_list(
    request: HttpRequest,
    q: str = Query("", description="The search syntax of docs/search.md."),
    status: Annotated[list[JobStatus] | None, Query()] = None,
    printer: int | None = None,
    is_business: bool | None = None,
    priority: int | None = None,
    sort: str = Query(
        DEFAULT_SORT, description=f"One of {', '.join(SORT_FIELDS)}; - for descending."
    ),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
) -> Any:
    """The jobs list's filters (every parameter of the list page, among them `created_after`,
    `updated_before`, `created_by`, `has_reference`, `origin`, `import`), the search syntax
    in `q`, a sort and cursor paging."""
    require_perm(request, "jobs.view_job")
    params = request.GET.copy()
    for name in ("cursor", "limit", "page"):
        params.pop(name, None)
    if sort.removeprefix("-") not in SORT_FIELDS:
        valid = ", ".join(SORT_FIELDS)
        raise ApiError(
            400,
            f"Unknown sort {sort!r}: use one of {valid}, with - for descending.",
            errors={"sort": [f"Use one of {valid}, with - for descending."]},
        )
    jobs, parts = _filtered(params)
    try:
        # The page walks the sort's index reading two columns; its rows are read by id.
        key_only = jobs.only("id", parse_sort(sort, Job).name)
        page = paginate(key_only, sort=sort, cursor=cursor, limit=limit, parts=parts)
    except InvalidCursor as error:
        raise ApiError(400, str(error), errors={"cursor": [str(error)]}) from None
    body = {"items": job_rows([job.pk for job in page.items]), "next_cursor": page.next_cursor}
    return HttpResponse(fast_json(body), content_type="application/json")


@router.post(
    "",
    response={201: JobOut, **problems(400, 409, 422)},
    url_name="job_create",
    summary="Create a job",
)
def job_create(request: HttpRequest, payload: JobCreate) -> HttpResponse:
    require_perm(request, "jobs.add_job")
    form = JobForm(_form_data(payload.model_dump(exclude={"reference"})), instance=Job())
    errors = {} if form.is_valid() else form_errors(form)
    reference = None
    try:
        reference = clean_reference(payload.reference) or None
    except Exception as error:  # a django.core.exceptions.ValidationError
        errors["reference"] = list(getattr(error, "messages", [str(error)]))
    if errors:
        raise invalid(errors)
    if reference and Job.objects.filter(reference=reference).exists():
        raise ApiError(409, f"A job with the reference {reference!r} exists.", code="DUPLICATE")
    job = Job(**form.changes(), reference=reference)
    try:
        job.insert(actor=request.user, origin=JobEvent.Origin.API)
    except IntegrityError:
        raise ApiError(
            409, f"A job with the reference {reference!r} exists.", code="DUPLICATE"
        ) from None
    job = Job.objects.with_related().get(pk=job.pk)
    return _answer(job, 201, Location=reverse("api:job_get", args=[job.pk]))


@router.get(
    "/{int:job_id}",
    response={200: JobOut, 304: None, **problems(404)},
    url_name="job_get",
    summary="One job",
    openapi_extra=IF_NONE_MATCH,
)
def job_get(request: HttpRequest, job_id: int) -> HttpResponse:
    """`ETag` is the job's version; `If-None-Match` with it answers 304."""
    require_perm(request, "jobs.view_job")
    job = _job(job_id)
    if etag(job) in _tags(request.headers.get("If-None-Match", "")):
        response = HttpResponse(status=304)
        response["ETag"] = etag(job)
        return response
    return _answer(job)


@router.put(
    "/{int:job_id}",
    response={200: JobOut, **problems(400, 404, 412, 422, 428)},
    url_name="job_put",
    summary="Replace a job's editable fields",
    openapi_extra=IF_MATCH,
)
def job_put(request: HttpRequest, job_id: int, payload: JobPut) -> HttpResponse:
    """Every editable field; `If-Match` required. A change that changes nothing writes
    nothing (the version stays)."""
    return _edit(request, job_id, payload.model_dump())


@router.patch(
    "/{int:job_id}",
    response={200: JobOut, **problems(400, 404, 412, 422, 428)},
    url_name="job_patch",
    summary="Change some of a job's editable fields",
    openapi_extra=IF_MATCH,
)
def job_patch(request: HttpRequest, job_id: int, payload: JobPatch) -> HttpResponse:
    return _edit(request, job_id, payload.model_dump(exclude_unset=True))


@router.post(
    "/{int:job_id}/cancel",
    response={200: JobOut, **problems(400, 404, 409, 412, 422)},
    url_name="job_cancel",
    summary="Cancel a job",
    openapi_extra=IF_MATCH,
)
def job_cancel(
    request: HttpRequest, job_id: int, payload: Annotated[CancelIn | None, Body()] = None
) -> HttpResponse:
    """An optional reason; an optional `If-Match` refuses a cancel of a changed job."""
    require_perm(request, "jobs.change_job")
    job = _job(job_id)
    version = expected_version(request, job) if request.headers.get("If-Match") else None
    try:
        reason = clean_text(
            payload.reason if payload else "",
            label="Reason",
            max_length=CANCELLATION_REASON_MAX,
            multiline=True,
        )
    except Exception as error:  # a django.core.exceptions.ValidationError
        raise invalid({"reason": list(getattr(error, "messages", [str(error)]))}) from None
    try:
        job.cancel(
            actor=request.user, origin=JobEvent.Origin.API, reason=reason, expected_version=version
        )
    except NotCancellable as refused:
        raise ApiError(409, str(refused), code="NOT_CANCELLABLE") from None
    except VersionConflict:
        raise version_conflict(job) from None
    return _answer(Job.objects.with_related().get(pk=job.pk))


@router.get(
    "/{int:job_id}/events",
    response={200: EventPage, **problems(400, 404, 422)},
    url_name="job_events",
    summary="A job's history",
)
def job_events(
    request: HttpRequest,
    job_id: int,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
) -> Any:
    """Newest first, paged by an opaque cursor."""
    require_perm(request, "jobs.view_job")
    job = _job(job_id)
    events = job.events.select_related("actor").order_by("-id")
    if cursor:
        events = events.filter(pk__lt=_event_position(cursor))
    items, more = one_page(events, limit)
    return {
        "items": [
            {
                "id": event.pk,
                "kind": event.kind,
                "changes": event.changes,
                "actor": event.actor.get_username() if event.actor else None,
                "origin": event.origin,
                "origin_ref": event.origin_ref,
                "created_at": event.created_at,
            }
            for event in items
        ],
        "next_cursor": cursor_for({"before": items[-1].pk}) if more else None,
    }


BULK_BODY = {
    "content": {"application/json": {"schema": bulk.ITEMS_SCHEMA}},
    "required": True,
}


@router.post(
    "/bulk-status",
    response={200: BulkOut, **problems(400, 422, 503)},
    url_name="job_bulk_status",
    summary="Set the status of up to 100 jobs, all or nothing",
    openapi_extra={"requestBody": BULK_BODY},
)
def job_bulk_status(request: HttpRequest) -> Any:
    """The atomic contract of docs/bulk-status.md. The body is read leniently: an item's
    wrong id or status gets its per-item code (422 with every item's result, nothing
    written), a body that is not a list of objects a top-level VALIDATION_ERROR (400)."""
    require_perm(request, "jobs.change_job")
    try:
        items = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(
            400, "The body is not JSON.", code=bulk.VALIDATION_ERROR, retryable=False
        ) from None
    result = bulk.bulk_update_status(items, actor=request.user, origin=JobEvent.Origin.API)
    if "error" in result:
        error = result["error"]
        status = 503 if error["retryable"] else 400
        if error["code"] in (bulk.INTERNAL_ERROR, bulk.DB_ERROR) and not error["retryable"]:
            status = 500
        raise ApiError(status, error["message"], code=error["code"], retryable=error["retryable"])
    if result["failed_count"]:
        raise ApiError(
            422,
            "Nothing was changed: every item's result says why.",
            code="BULK_FAILED",
            **result,
        )
    return result


# --- Helpers -----------------------------------------------------------------------------


def _filtered(params: QueryDict) -> tuple[QuerySet, list[Q]]:
    """The jobs the list's filters select, and the pieces a page of several statuses is
    found in (JobFilter.parts); a 400 naming every filter that cannot be read."""
    if not params.keys() - {"sort"}:  # the whole list: nothing to read or check
        return Job.objects.all(), []
    filterset = JobFilter(params, queryset=Job.objects.all())
    if filterset.error_messages:
        errors = filterset.errors_by_parameter()
        raise ApiError(400, " ".join(filterset.error_messages), errors=errors)
    return filterset.qs, filterset.parts


def _job(job_id: int) -> Job:
    if not 0 < job_id <= bulk.MAX_ID:
        raise ApiError(404, f"No job with id {job_id}.")
    return get_object_or_404(Job.objects.with_related(), pk=job_id)


def _form_data(values: dict[str, Any]) -> dict[str, Any]:
    """Values for JobForm, which reads a query-string-like mapping."""
    data = {name: value for name, value in values.items() if value is not None}
    if "status" in data:
        data["status"] = str(data["status"])
    return data


def _edit(request: HttpRequest, job_id: int, changes: dict[str, Any]) -> HttpResponse:
    require_perm(request, "jobs.change_job")
    job = _job(job_id)
    version = expected_version(request, job)
    values = {name: getattr(job, name) for name in EDITABLE_FIELDS}
    values["printer"] = job.printer_id
    values.update(changes)
    form = JobForm(_form_data(values) | {"version": job.version}, instance=job)
    if not form.is_valid():
        raise invalid(form_errors(form))
    try:
        job.apply_changes(
            form.changes(),
            actor=request.user,
            origin=JobEvent.Origin.API,
            expected_version=job.version if version is None else version,
        )
    except VersionConflict:
        raise version_conflict(job) from None
    except InvalidTransition as error:
        raise invalid({"status": [str(error)]}) from None
    return _answer(Job.objects.with_related().get(pk=job.pk))


CURSOR_DAMAGED = "The page cursor is not valid: start from the first page."


def cursor_for(position: Any) -> str:
    """An opaque page cursor: the position as JSON in unpadded URL-safe base64."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def damaged_cursor() -> ApiError:
    return ApiError(400, CURSOR_DAMAGED, errors={"cursor": [CURSOR_DAMAGED]})


def cursor_position(cursor: str) -> Any:
    """The position a `cursor_for` cursor holds; a 400 for a cursor that holds none."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise damaged_cursor() from None


def one_page(queryset: QuerySet, limit: int) -> tuple[list[Any], bool]:
    """Up to `limit` items, and whether more follow them."""
    items = list(queryset[: limit + 1])
    return items[:limit], len(items) > limit


def _event_position(cursor: str) -> int:
    position = cursor_position(cursor)
    before = position.get("before") if isinstance(position, dict) else None
    if not isinstance(before, int) or isinstance(before, bool) or before < 1:
        raise damaged_cursor()
    return before


__all__ = [
    "ApiError",
    "HttpError",
    "Problem",
    "cursor_for",
    "cursor_position",
    "damaged_cursor",
    "one_page",
    "problem",
    "problems",
    "require_perm",
    "router",
]
