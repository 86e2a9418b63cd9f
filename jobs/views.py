import math
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, user_passes_test
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.functional import cached_property
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget, trigger_client_event

from jobs.bulk import MAX_ITEMS, ROLLED_BACK, bulk_update_status
from jobs.filters import SORT_FIELDS, JobFilter
from jobs.forms import CancelForm, JobForm
from jobs.models import Job, JobEvent, NotCancellable, VersionConflict
from jobs.status import InvalidTransition, JobStatus
from jobs.templatetags.jobs_tags import change_value

View = Callable[..., HttpResponse]
PAGE_SIZE = 50
# Counting stops here: COUNT(*) reads every matching row (on PostgreSQL, every row of a big
# filtered table) on every page view, and nobody pages through 10,000 jobs. Pages beyond the
# cap are not offered either, which also bounds the OFFSET a page can ask for; narrowing the
# filters is the way further in.
COUNT_CAP = 10_000
HISTORY_IN_MODAL = 5

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
DEFAULT_SORT = "-updated"


class CappedPaginator(Paginator):
    """A paginator whose COUNT reads at most `cap` + 1 rows and that offers `cap` rows of pages."""

    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        rows = self.object_list.select_related(None).order_by().values("pk")
        return rows[: self.cap + 1].count()

    def __init__(self, object_list: QuerySet, per_page: int, *, sparse_filter: bool = False):
        super().__init__(object_list, per_page)
        self.sparse_filter = sparse_filter

    def page(self, number: int | str) -> Page:
        """A deferred join: the page's ids come from an id-only query (so OFFSET and sorting
        walk index entries, not rows, and joins cannot steer the planner off the sort index);
        then one query by primary key loads those rows with their related objects."""
        rows = self.object_list
        ids = None
        if self.sparse_filter and (str(number) != "1" or not self.is_capped):
            # No index serves this filter (a text search). Walking the sort index and testing
            # row after row finds a first page of dense matches at once, but visits most of
            # the table when matches are few or the page is deep: then one scan finds the
            # matches and only they are sorted.
            rows = rows.filter(pk__in=rows.order_by().values("pk"))
        elif str(number) == "1":
            ids = list(rows.values_list("pk", flat=True)[: self.per_page])
            if len(ids) < self.per_page:
                # A short first page is the whole result: no COUNT needed.
                self.__dict__["count"] = len(ids)
        number = self.validate_number(number)
        if ids is None:
            bottom = (number - 1) * self.per_page
            ids = list(rows.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        found = self.object_list.in_bulk(ids)
        return self._get_page([found[pk] for pk in ids if pk in found], number, self)

    @property
    def is_capped(self) -> bool:
        return self.count > self.cap

    @cached_property
    def num_pages(self) -> int:
        hits = min(self.count, self.cap)
        if hits == 0 and not self.allow_empty_first_page:
            return 0
        return max(1, math.ceil(hits / self.per_page))


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


def _sort_headers(params: QueryDict) -> list[dict[str, Any]]:
    current = params.get("sort") or DEFAULT_SORT
    if current.lstrip("-") not in SORT_FIELDS:
        current = DEFAULT_SORT  # what the list falls back to
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
            link = params.copy()
            link["sort"] = next_sort
            link.pop("page", None)
            header["url"] = f"?{link.urlencode()}"
        headers.append(header)
    return headers


def list_context(params: QueryDict) -> dict[str, Any]:
    """The jobs table for the filters, sort and page in `params` (a query string)."""
    filterset = JobFilter(params, queryset=Job.objects.select_related("printer", "updated_by"))
    paginator = CappedPaginator(filterset.qs, PAGE_SIZE, sparse_filter=filterset.has_text_search)
    return {
        "filter": filterset,
        "page": paginator.get_page(params.get("page")),
        "headers": _sort_headers(params),
        "params": params,
        "sort": params.get("sort", ""),
        "statuses": JobStatus.choices,
        "bulk_max": MAX_ITEMS,
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
def job_detail(request: HttpRequest, pk: int) -> TemplateResponse:
    job = get_object_or_404(Job.objects.with_related(), pk=pk)
    events = job.events.select_related("actor")[:50]
    return TemplateResponse(request, "jobs/job_detail.html", {"job": job, "events": events})


@login_required
@permission_required("jobs.change_job")
@require_http_methods(["GET", "POST"])
def job_edit(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job.objects.with_related(), pk=pk)
    if request.method == "GET":
        return _render_edit(request, job, JobForm(instance=job))
    form = JobForm(request.POST, instance=job)
    based_on = _posted_version(request)
    if based_on is not None and based_on != job.version:
        return _render_edit(request, job, form, conflict=True)
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
        return _render_edit(request, conflict.latest, form, conflict=True)
    except InvalidTransition as error:
        form.add_error("status", str(error))
        return _render_edit(request, job, form)
    if event is None:
        return _saved(request, job, "No changes to save.", level="info")
    return _saved(request, job, f"Saved “{job.name}”: {describe_changes(event)}.")


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
    """Apply one status to the selected jobs, or to every job matching the list's filters
    (at most MAX_ITEMS), through the one atomic bulk function."""
    params = QueryDict(request.POST.get("query", ""))
    status = request.POST.get("status", "")
    if request.POST.get("scope") == "matching":
        matching = JobFilter(params, queryset=Job.objects.all()).qs.order_by("id")
        ids: list[Any] = list(matching.values_list("pk", flat=True)[: MAX_ITEMS + 1])
        if len(ids) > MAX_ITEMS:
            return _bulk_refused(
                request,
                params,
                f"More than {MAX_ITEMS} jobs match these filters, and one atomic batch changes "
                f"at most {MAX_ITEMS}. Narrow the filters or select jobs on the page.",
            )
    else:
        ids = [_as_id(raw) for raw in request.POST.getlist("ids")]
    if not ids:
        return _bulk_refused(request, params, "Select at least one job first.")
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
        return _bulk_failed(request, params, result)
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
    return response


def _as_id(raw: str) -> int | str:
    """Digits become an id; anything else goes through as it is, for the bulk function to
    report as an invalid id."""
    return int(raw) if raw.isdigit() and len(raw) < 19 else raw


def _list_url(params: QueryDict) -> str:
    query = params.urlencode()
    return reverse("jobs:list") + (f"?{query}" if query else "")


def _bulk_refused(request: HttpRequest, params: QueryDict, message: str) -> HttpResponse:
    return _bulk_failed(request, params, {"error": {"message": message}})


def _bulk_failed(request: HttpRequest, params: QueryDict, result: dict[str, Any]) -> HttpResponse:
    """Nothing was changed: say why, naming each failing job and its reason."""
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
    context = {"summary": summary, "failures": failures, "rolled_back": rolled_back}
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
    request: HttpRequest, job: Job, form: JobForm, *, conflict: bool = False
) -> TemplateResponse:
    events = list(job.events.select_related("actor")[:HISTORY_IN_MODAL])
    context = {
        "job": job,
        "form": form,
        "events": events,
        "conflict": conflict,
        "latest_event": events[0] if events else None,
    }
    template = "jobs/job_edit.html#modal" if _wants_partial(request) else "jobs/job_edit.html"
    return TemplateResponse(request, template, context)


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
    """After a write: HTMX gets the job's row in place, a closed modal and a toast."""
    if not request.htmx:
        messages.add_message(
            request, messages.SUCCESS if level == "success" else messages.INFO, message
        )
        return redirect(job)
    job = Job.objects.select_related("printer", "updated_by").get(pk=job.pk)
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
