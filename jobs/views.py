from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, user_passes_test
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING, reswap, retarget, trigger_client_event

from jobs import export
from jobs.bulk import MAX_ITEMS, ROLLED_BACK, bulk_update_status
from jobs.bulk_runs import (
    BulkRunRefused,
    draft_bulk_run,
    preview,
    skip_reasons,
    skipped_csv_lines,
    start_bulk_run,
)
from jobs.filters import SORT_FIELDS, JobFilter
from jobs.forms import KEEP_PREFIX, VERSION_MISSING, CancelForm, JobForm
from jobs.merge import merge
from jobs.models import (
    EDITABLE_FIELDS,
    BulkAction,
    BulkRun,
    Job,
    JobEvent,
    NotCancellable,
    Printer,
    VersionConflict,
    event_value,
)
from jobs.paging import (
    COUNT_CAP,
    DEFAULT_SORT,
    InvalidCursor,
    last_page_cursor,
    paginate,
    sorted_by,
)
from jobs.runs import RunNotCancellable, RunStatus
from jobs.status import ALLOWED_TRANSITIONS, InvalidTransition, JobStatus
from jobs.templatetags.jobs_tags import can_reopen, change_value
from jobs.toasts import mark_seen

View = Callable[..., HttpResponse]
MESSAGE_LEVELS = {"success": messages.SUCCESS, "info": messages.INFO, "error": messages.ERROR}
PAGE_SIZE = 50
HISTORY_IN_MODAL = 5
HISTORY_ON_PAGE = 50

# Table columns: (label, sort key or None). The first click sorts in the usual direction.
COLUMNS = [
    ("Name", "name"),
    ("Status", "status"),
    ("Priority", "priority"),
    ("Printer", None),
    ("Customer", "customer"),
    ("Business", None),
    ("Updated", "updated"),
    ("Updated by", None),
]
DESCENDING_FIRST = {"priority", "updated"}
# Paging position: not a filter, and not carried into links that change filters or sort.
POSITION_PARAMS = ("cursor", "page")


def permission_required(perm: str) -> Callable[[View], View]:
    """Django's permission_required(raise_exception=True), naming the missing permission in
    the PermissionDenied so the one-line 403 log (jobsite/log_filters.py) can say which."""

    def check(user: Any) -> bool:
        if not user.has_perm(perm):
            raise PermissionDenied(perm)
        return True

    return user_passes_test(check)


def _wants_partial(request: HttpRequest) -> bool:
    """HTMX swaps a part of the page, except when it restores history and needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def current_sort(params: QueryDict) -> str:
    """The list's sort: the query string's if it is one of SORT_FIELDS, else the default."""
    sort = params.get("sort") or DEFAULT_SORT
    return sort if sort.removeprefix("-") in SORT_FIELDS else DEFAULT_SORT


def filter_params(params: QueryDict) -> QueryDict:
    """The query string without the paging position: the filters and the sort."""
    filters = params.copy()
    for name in POSITION_PARAMS:
        filters.pop(name, None)
    return filters


def _sort_headers(params: QueryDict) -> list[dict[str, Any]]:
    current = current_sort(params)
    active_key = current.lstrip("-")
    descending = current.startswith("-")
    headers = []
    for label, key in COLUMNS:
        header: dict[str, Any] = {"label": label, "key": key, "url": None, "aria_sort": None}
        if key:
            if key == active_key:
                header["aria_sort"] = "descending" if descending else "ascending"
                next_sort = key if descending else f"-{key}"
            else:
                next_sort = f"-{key}" if key in DESCENDING_FIRST else key
            link = filter_params(params)
            link["sort"] = next_sort
            header["url"] = f"?{link.urlencode()}"
        headers.append(header)
    return headers


def list_context(params: QueryDict) -> dict[str, Any]:
    """The jobs table for the filters, sort and cursor in `params` (a query string)."""
    filterset = JobFilter(filter_params(params), queryset=Job.objects.for_list())
    return {
        "filter": filterset,
        **_page_context(
            filterset.qs,
            params,
            count=filterset.count,
            parts=filterset.parts,
            count_later=filterset.counts_slowly,
        ),
        "headers": _sort_headers(params),
        "params": params,
        "sort": params.get("sort", ""),
        "statuses": _status_choices(),
        "bulk_max": MAX_ITEMS,
        "bulk_actions": BulkAction.choices,
        "active_printers": [printer for printer in filterset.printers if printer.is_active],
    }


def _status_choices() -> list[dict[str, str]]:
    """The statuses of the selection bar, each with the statuses a job may take it from
    (app.js offers only those some selected job may take)."""
    return [
        {
            "value": value,
            "label": label,
            "from": " ".join(
                old for old, new in ALLOWED_TRANSITIONS.items() if value in new or old == value
            ),
        }
        for value, label in JobStatus.choices
    ]


def _page_context(
    jobs: QuerySet[Job],
    params: QueryDict,
    *,
    count: Callable[[int], int],
    parts: Sequence[Q] = (),
    count_later: bool = False,
) -> dict[str, Any]:
    """The page the cursor points at (the first page without one, or with one that is not
    valid, saying so), the capped count (`count(cap)`: JobFilter.count, which counts a text
    search in its index), and the links' query strings. An old bookmark's `page` number
    shows the first page. With `count_later`, a count the first page does not give is left
    out (None): the page fetches it from job_count once shown."""
    sort = current_sort(params)
    cursor = params.get("cursor") or None
    cursor_error = ""
    try:
        page = paginate(jobs, sort=sort, cursor=cursor, limit=PAGE_SIZE, parts=parts)
    except InvalidCursor as error:
        cursor, cursor_error = None, str(error)
        page = paginate(jobs, sort=sort, limit=PAGE_SIZE, parts=parts)
    matches: int | None
    if cursor is None and not page.has_next:
        matches = len(page.items)  # the first page holds every match: no COUNT needed
    elif count_later:
        matches = None
    else:
        matches = count(COUNT_CAP)
    filters = filter_params(params)
    return {
        "page": page,
        "cursor": cursor,
        "cursor_error": cursor_error,
        "count": matches,
        "count_is_capped": matches is not None and matches > COUNT_CAP,
        "filter_query": filters.urlencode(),
        "last_cursor": last_page_cursor(sort),
    }


@require_GET
@login_required
@permission_required("jobs.view_job")
def job_list(request: HttpRequest) -> TemplateResponse:
    partial = _wants_partial(request)
    template = "jobs/job_list.html#table" if partial else "jobs/job_list.html"
    response = TemplateResponse(request, template, list_context(request.GET))
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@login_required
@permission_required("jobs.view_job")
def job_count(request: HttpRequest) -> TemplateResponse:
    """The capped count of the jobs the list's query string selects: what a list page that
    left its count out (a text search) fetches once it is shown."""
    filterset = JobFilter(filter_params(request.GET), queryset=Job.objects.all())
    context = {"filter": filterset, "count": filterset.count(COUNT_CAP)}
    context["count_is_capped"] = context["count"] > COUNT_CAP
    return TemplateResponse(request, "jobs/job_list.html#count", context)


@require_GET
@login_required
@permission_required("jobs.view_job")
def job_export(request: HttpRequest, export_format: str) -> StreamingHttpResponse:
    """Every job the list shows for this query string (filters, search and sort; not just
    a page), streamed as CSV in the import's columns or as JSON lines."""
    filterset = JobFilter(filter_params(request.GET), queryset=Job.objects.all())
    jobs = sorted_by(filterset.qs, current_sort(request.GET))
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    if export_format == "csv":
        # The BOM lets spreadsheet programs recognise UTF-8; the import skips it.
        chunks = export.csv_chunks(jobs, bom=True)
        content_type = "text/csv; charset=utf-8"
    else:
        chunks = export.jsonl_chunks(jobs)
        content_type = "application/jsonl; charset=utf-8"
    filename = f"jobs-{stamp}.{export_format}"
    return StreamingHttpResponse(
        chunks,
        content_type=content_type,
        headers={"Content-Disposition": content_disposition_header(True, filename)},
    )


@require_GET
@login_required
@permission_required("jobs.view_job")
def job_detail(request: HttpRequest, pk: int) -> TemplateResponse:
    job = get_object_or_404(Job.objects.with_related(), pk=pk)
    return TemplateResponse(request, "jobs/job_detail.html", _detail_context(job))


def _detail_context(job: Job) -> dict[str, Any]:
    return {"job": job, "events": job.events.select_related("actor")[:HISTORY_ON_PAGE]}


@login_required
@permission_required("jobs.change_job")
@require_http_methods(["GET", "POST"])
def job_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The edit dialog. A save based on an older version is merged with what was saved
    meanwhile (jobs/merge.py): fields only one side changed are kept from that side; fields
    both changed differently are shown side by side, each for the editor to choose."""
    job = get_object_or_404(Job.objects.with_related(), pk=pk)
    if request.method == "GET":
        return _render_edit(request, job, JobForm(instance=job))
    if "reopen" in request.POST:
        return _reopen(request, job)
    waiting = JobForm.awaiting_choice(request.POST)
    if waiting:
        form = JobForm(request.POST, instance=job)
        return _render_edit(request, job, form, conflicts=waiting, choose_error=True)
    form = JobForm(JobForm.apply_choices(request.POST, job), instance=job)
    based_on = _posted_version(request)
    merged = False
    if based_on is not None and based_on != job.version:
        outcome = merge(form.base_values(), form.posted_values(), _stored(job), EDITABLE_FIELDS)
        form = JobForm(form.rebased_data(job, outcome.theirs), instance=job)
        if not outcome.clean:
            return _render_edit(request, job, form, conflicts=sorted(outcome.conflicts))
        merged = True
    if not form.is_valid():
        return _render_edit(request, job, form)
    try:
        event = job.apply_changes(
            form.changes(),
            actor=request.user,
            origin=JobEvent.Origin.UI,
            expected_version=form.cleaned_data["version"],
        )
    except VersionConflict as conflict:
        return _render_edit(request, conflict.latest, form, raced=True)
    except InvalidTransition as error:
        form.add_error("status", str(error))
        return _render_edit(request, job, form)
    also = " Kept the changes saved meanwhile by others." if merged else ""
    if event is None:
        return _saved(request, job, f"No changes to save.{also}", level="info")
    return _saved(request, job, f"Saved “{job.name}”: {describe_changes(event)}.{also}")


def _reopen(request: HttpRequest, job: Job) -> HttpResponse:
    """The job page's Reopen: a cancelled or failed job back to pending, behind the version
    the page showed."""
    based_on = _posted_version(request)
    if not can_reopen(job):
        refusal = f"A {job.get_status_display().lower()} job cannot be reopened. Nothing changed."
        return _saved(request, job, refusal, level="error")
    if based_on is None:
        return _saved(request, job, VERSION_MISSING, level="error")
    try:
        job.apply_changes(
            {"status": JobStatus.PENDING},
            actor=request.user,
            origin=JobEvent.Origin.UI,
            expected_version=based_on,
        )
    except VersionConflict as conflict:
        message = "This job changed since the page showed it; nothing was reopened. Check it now."
        return _saved(request, conflict.latest, message, level="error")
    return _saved(request, job, f"Reopened “{job.name}”: it is pending again.")


def _stored(job: Job) -> dict[str, Any]:
    return {name: getattr(job, name) for name in EDITABLE_FIELDS}


@login_required
@permission_required("jobs.change_job")
@require_http_methods(["GET", "POST"])
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job.objects.with_related(), pk=pk)
    if request.method == "GET":
        return _render_cancel(request, job, CancelForm(initial={"version": job.version}))
    form = CancelForm(request.POST)
    if not job.can_cancel:
        return _render_cancel(request, job, form, refused=True)
    if not form.is_valid():
        return _render_cancel(request, job, form)
    try:
        job.cancel(
            actor=request.user,
            origin=JobEvent.Origin.UI,
            reason=form.cleaned_data["reason"],
            expected_version=form.cleaned_data["version"],
        )
    except VersionConflict as conflict:
        fresh = CancelForm(
            initial={"reason": form.cleaned_data["reason"], "version": conflict.latest.version}
        )
        return _render_cancel(request, conflict.latest, fresh, conflict=True)
    except NotCancellable:
        return _render_cancel(request, job, form, refused=True)
    return _saved(request, job, f"Cancelled “{job.name}”.")


@login_required
@permission_required("jobs.change_job")
@require_POST
def job_bulk_status(request: HttpRequest) -> HttpResponse:
    """The selection bar's Apply. A status change of up to MAX_ITEMS ticked jobs goes
    through the one atomic bulk function; every other action, a larger selection and
    "every job matching" become a bulk run, confirmed first (docs/bulk-runs.md)."""
    params = QueryDict(request.POST.get("query", ""))
    action = request.POST.get("action") or BulkAction.SET_STATUS
    status = request.POST.get("status", "")
    matching = request.POST.get("scope") == "matching"
    ids: list[Any] = [_as_id(raw) for raw in request.POST.getlist("ids")]
    if not matching and not ids:
        return _bulk_refused(request, params, "Select at least one job first.")
    if matching or action != BulkAction.SET_STATUS or len(ids) > MAX_ITEMS:
        return bulk_run_confirm(request)
    if not status:
        return _bulk_refused(request, params, "Choose the status to apply.")
    result = bulk_update_status(
        [{"id": id_, "status": status} for id_ in ids],
        actor=request.user,
        origin=JobEvent.Origin.UI,
    )
    if "error" in result:
        return _bulk_refused(request, params, result["error"]["message"])
    if result["failed_count"]:
        return _bulk_failed(request, params, result, status=status)
    label = JobStatus(status).label.lower()
    count = result["updated_count"]
    message = f"Set {count} job{pluralize(count)} to {label}."
    if not request.htmx:
        messages.success(request, message)
        return redirect(_list_url(params))
    response = TemplateResponse(request, "jobs/job_list.html#table", list_context(params))
    retarget(response, "#job-table")
    reswap(response, "outerHTML")
    trigger_client_event(response, "jobsite:toast", {"message": message, "level": "success"})
    trigger_client_event(response, "jobsite:selection-done")
    return response


def _bulk_request(data: QueryDict) -> dict[str, Any]:
    """The bulk run a selection bar's (or confirmation's) form asks for, as
    draft_bulk_run's keyword arguments."""
    request: dict[str, Any] = {
        "action": data.get("action") or BulkAction.SET_STATUS,
        "status": data.get("status", ""),
        "priority": data.get("priority", ""),
        "printer": data.get("printer", ""),
        "reason": data.get("reason", ""),
    }
    if data.get("scope") == "matching":
        request["query"] = data.get("query", "")
    else:
        request["job_ids"] = data.getlist("ids")
    return request


def _hidden_fields(data: QueryDict) -> list[tuple[str, str]]:
    """The request's fields, carried by the confirmation's form."""
    names = ("action", "status", "priority", "printer", "reason", "scope", "query")
    fields = [(name, data.get(name, "")) for name in names if data.get(name, "")]
    if data.get("scope") != "matching":
        fields += [("ids", value) for value in data.getlist("ids")]
    return fields


@login_required
@permission_required("jobs.change_job")
@require_POST
def bulk_run_confirm(request: HttpRequest) -> HttpResponse:
    """Before a bulk run: how many jobs, the action, a sample, and what will be skipped and
    why. With `confirm`, start it and go to its page."""
    params = QueryDict(request.POST.get("query", ""))
    try:
        run = draft_bulk_run(
            actor=request.user, origin=JobEvent.Origin.UI, **_bulk_request(request.POST)
        )
    except BulkRunRefused as refused:
        return _bulk_refused(request, params, " ".join(refused.messages))
    if request.POST.get("confirm"):
        start_bulk_run(run)
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = run.get_absolute_url()
            return response
        return redirect(run)
    context = {
        "run": run,
        "preview": preview(run),
        "fields": _hidden_fields(request.POST),
        "list_url": _list_url(params),
    }
    if _wants_partial(request):
        response = TemplateResponse(request, "jobs/bulk_run_confirm.html#confirm", context)
        retarget(response, "#bulk-result")
        return reswap(response, "innerHTML")
    return TemplateResponse(request, "jobs/bulk_run_confirm.html", context)


def _run_for(pk: int) -> BulkRun:
    return get_object_or_404(
        BulkRun.objects.select_related("created_by", "cancelled_by", "new_printer"), pk=pk
    )


@require_GET
@login_required
@permission_required("jobs.view_job")
def bulk_run_list(request: HttpRequest) -> TemplateResponse:
    runs = BulkRun.objects.select_related("created_by", "new_printer").order_by("-created_at")
    page = Paginator(runs, 25).get_page(request.GET.get("page"))
    return TemplateResponse(request, "jobs/bulk_run_list.html", {"page": page})


@require_GET
@login_required
@permission_required("jobs.view_job")
def bulk_run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The run's page: progress while it runs (polled), the report at the end."""
    run = _run_for(pk)
    mark_seen(request, run)  # seen finishing here: no toast for it elsewhere
    context = {"run": run, "skip_reasons": skip_reasons(run)}
    if request.htmx and not request.htmx.boosted:
        response = TemplateResponse(request, "jobs/bulk_run_detail.html#live", context)
        if run.is_finished:
            response.status_code = HTMX_STOP_POLLING
        return response
    return TemplateResponse(request, "jobs/bulk_run_detail.html", context)


@require_POST
@login_required
@permission_required("jobs.change_job")
def bulk_run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run_for(pk)
    try:
        run.request_cancel(actor=request.user, reason=request.POST.get("reason", ""))
    except RunNotCancellable as refused:
        message, level = str(refused), "error"
    else:
        message, level = (
            ("Bulk run cancelled.", "success")
            if run.status == RunStatus.CANCELLED
            else ("Cancel requested: the run stops after the batch it is working on.", "success")
        )
    if request.htmx:
        context = {"run": _run_for(pk), "skip_reasons": skip_reasons(run)}
        response = TemplateResponse(request, "jobs/bulk_run_detail.html#live", context)
        reswap(retarget(response, "#bulk-run-live"), "outerHTML")
        return trigger_client_event(response, "jobsite:toast", {"message": message, "level": level})
    messages.add_message(request, messages.ERROR if level == "error" else messages.SUCCESS, message)
    return redirect(run)


@require_GET
@login_required
@permission_required("jobs.view_job")
def bulk_run_skipped_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The skipped jobs with their reasons, formula-safe CSV."""
    run = _run_for(pk)
    lines = skipped_csv_lines(run)
    return StreamingHttpResponse(
        chain(["\ufeff"], lines),
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": content_disposition_header(
                True, f"bulk-run-{run.pk}-skipped.csv"
            )
        },
    )


def _as_id(raw: str) -> int | str:
    """Digits become an id; anything else goes through as it is, for the bulk function to
    report as an invalid id."""
    return int(raw) if raw.isdigit() and len(raw) < 19 else raw


def _list_url(params: QueryDict) -> str:
    query = params.urlencode()
    return reverse("jobs:list") + (f"?{query}" if query else "")


def _bulk_refused(request: HttpRequest, params: QueryDict, message: str) -> HttpResponse:
    return _bulk_failed(request, params, {"error": {"message": message}})


def _bulk_failed(
    request: HttpRequest, params: QueryDict, result: dict[str, Any], *, status: str = ""
) -> HttpResponse:
    """Nothing was changed: say why, naming each failing job and its reason, and offer to
    apply the status to the jobs that could change (those only rolled back)."""
    failures = [
        item
        for item in result.get("results", [])
        if not item["success"] and item["error"]["code"] != ROLLED_BACK
    ]
    known = Job.objects.in_bulk([item["id"] for item in failures if isinstance(item["id"], int)])
    for item in failures:
        item["job"] = known.get(item["id"])
    rolled_back = result.get("failed_count", 0) - len(failures)
    summary = result["error"]["message"] if "error" in result else "Nothing was changed."
    if not request.htmx:
        messages.error(request, summary)
        for item in failures:
            name = f"“{item['job'].name}”" if item["job"] else f"#{item['id']}"
            messages.error(request, f"Job {name}: {item['error']['message']}")
        return redirect(_list_url(params))
    can_change = [
        item["id"]
        for item in result.get("results", [])
        if not item["success"] and item["error"]["code"] == ROLLED_BACK
    ]
    context = {
        "summary": summary,
        "failures": failures,
        "rolled_back": rolled_back,
        "can_change": can_change,
        "blocked": " ".join(str(item["id"]) for item in failures),
        "status": status,
        "query": params.urlencode(),
    }
    response = TemplateResponse(request, "jobs/_bulk_result.html", context)
    retarget(response, "#bulk-result")
    reswap(response, "innerHTML")
    trigger_client_event(response, "jobsite:toast", {"message": summary, "level": "error"})
    return response


def _posted_version(request: HttpRequest) -> int | None:
    try:
        return int(request.POST.get("version", ""))
    except ValueError:
        return None


def _latest_event(job: Job) -> JobEvent | None:
    return job.events.select_related("actor").first()


def _render_edit(
    request: HttpRequest,
    job: Job,
    form: JobForm,
    *,
    conflicts: Sequence[str] = (),
    choose_error: bool = False,
    raced: bool = False,
) -> TemplateResponse:
    """The edit dialog (or page). `conflicts`: the fields both this edit and a change saved
    meanwhile changed, each shown with both values to choose from; `raced`: the job changed
    between the check and the write, so nothing was saved."""
    events = list(job.events.select_related("actor")[:HISTORY_IN_MODAL])
    context = {
        "job": job,
        "form": form,
        "events": events,
        "conflicts": [_conflict(job, form, name) for name in conflicts],
        "choose_error": choose_error,
        "raced": raced,
        "latest_event": events[0] if events else None,
    }
    template = "jobs/job_edit.html#modal" if _wants_partial(request) else "jobs/job_edit.html"
    return TemplateResponse(request, template, context)


def _conflict(job: Job, form: JobForm, name: str) -> dict[str, Any]:
    """One field both sides changed: its label, my value, theirs, and who set theirs when."""
    mine = form.posted_values()[name]
    if name == "printer":
        mine = Printer.objects.filter(pk=mine).first() if str(mine or "").isdigit() else mine
    theirs = getattr(job, name)
    return {
        "name": name,
        "label": form.fields[name].label,
        "mine": _shown(name, mine),
        "theirs": _shown(name, theirs),
        "event": job.events.filter(changes__has_key=name).select_related("actor").first(),
        "kept": form.data.get(f"{KEEP_PREFIX}{name}", ""),
    }


def _shown(name: str, value: Any) -> str:
    if name == "status" and value in JobStatus.values:
        return JobStatus(value).label
    if name == "printer" and not value:
        return "No printer"
    return change_value(event_value(value))


def _render_cancel(
    request: HttpRequest,
    job: Job,
    form: CancelForm,
    *,
    refused: bool = False,
    conflict: bool = False,
) -> TemplateResponse:
    context = {
        "job": job,
        "form": form,
        "refused": refused or not job.can_cancel,
        "conflict": conflict,
        "latest_event": _latest_event(job) if conflict else None,
    }
    template = "jobs/job_cancel.html#modal" if _wants_partial(request) else "jobs/job_cancel.html"
    return TemplateResponse(request, template, context)


def _saved(request: HttpRequest, job: Job, message: str, *, level: str = "success") -> HttpResponse:
    """After a write (or a refusal, at `level` "error"): HTMX gets the job in place (its
    list row, or on the job's own page its facts, actions and history), a closed modal and
    a toast; a plain request goes to the job's page with the message."""
    if not request.htmx:
        messages.add_message(request, MESSAGE_LEVELS[level], message)
        return redirect(job)
    if request.htmx.current_url_abs_path == job.get_absolute_url():
        job = Job.objects.with_related().get(pk=job.pk)
        response = TemplateResponse(request, "jobs/job_detail.html#live", _detail_context(job))
        retarget(response, "#job-live")
    else:
        job = Job.objects.for_list().get(pk=job.pk)
        response = TemplateResponse(request, "jobs/job_list.html#row", {"job": job})
        retarget(response, f"#job-{job.pk}")
    reswap(response, "outerHTML")
    # After settle, so focus returns to the Edit button of the row that replaced the old one.
    trigger_client_event(response, "jobsite:close-modal", after="settle")
    trigger_client_event(
        response, "jobsite:toast", {"message": message, "level": level}, after="settle"
    )
    return response


def describe_changes(event: JobEvent) -> str:
    """`status: pending → running; priority: 0 → 5` for a toast."""
    return "; ".join(
        f"{field.replace('_', ' ')}: {change_value(old)} → {change_value(new)}"
        for field, (old, new) in event.changes.items()
    )
