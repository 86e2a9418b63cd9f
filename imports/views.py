import re
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import PurePath
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING, reswap, retarget, trigger_client_event

from imports.forms import ImportCancelForm, ImportListFilterForm, UploadForm
from imports.intake import create_import, hold_upload, release_held_upload
from imports.models import ImportJob, ImportNotCancellable, ImportStatus
from jobs.csv_safety import formula_safe_csv_lines
from jobs.toasts import announcements, mark_seen

LIST_PAGE_SIZE = 25
ERRORS_PAGE_SIZE = 50
LIVE_ERRORS = 10  # row errors the progress section shows while the import runs
RUN_VERSION = re.compile(r"([0-9a-fA-F-]{32,36}):(\d{1,10})")
ERROR_CSV_HEADER = ("row", "field", "error_type", "message", "raw_data")


def may_view(user: Any, import_job: ImportJob) -> bool:
    return user.has_perm("imports.view_importjob") or import_job.created_by_id == user.pk


def may_cancel(user: Any, import_job: ImportJob) -> bool:
    return user.has_perm("imports.change_importjob") or import_job.created_by_id == user.pk


def get_import_for(request: HttpRequest, pk: UUID) -> ImportJob:
    import_job = get_object_or_404(
        ImportJob.objects.select_related("created_by", "cancelled_by"), pk=pk
    )
    if not may_view(request.user, import_job):
        raise PermissionDenied("imports.view_importjob")
    return import_job


def sees_all_imports(user: Any) -> bool:
    """Whether `user` sees every import (else only their own); PermissionDenied for those who
    may neither view nor upload imports."""
    sees_all = user.has_perm("imports.view_importjob")
    if not sees_all and not user.has_perm("imports.add_importjob"):
        raise PermissionDenied("imports.view_importjob")
    return sees_all


@require_GET
@login_required
def import_list(request: HttpRequest) -> TemplateResponse:
    """Every import for those who may view imports; their own for those who may only upload."""
    sees_all = sees_all_imports(request.user)
    filters = ImportListFilterForm(request.GET)
    filters.is_valid()  # an unknown value is shown as a form error and that filter ignored
    imports = ImportJob.objects.select_related("created_by").order_by("-created_at")
    if status := filters.cleaned_data.get("status"):
        imports = imports.filter(status=status)
    if filters.cleaned_data.get("mine") or not sees_all:
        imports = imports.filter(created_by=request.user)
    page = Paginator(imports, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "filters": filters,
        "filter_query": query.urlencode(),
        "is_filtered": bool(filters.cleaned_data.get("status") or filters.cleaned_data.get("mine")),
        "may_upload": request.user.has_perm("imports.add_importjob"),
    }
    return TemplateResponse(request, "imports/import_list.html", context)


@never_cache
@require_GET
@login_required
def imports_poll(request: HttpRequest) -> HttpResponse:
    """The imports list's one poll for all its running imports: `runs=<id>:<version>,…` (the
    rows the page shows running, with the version each shows). One query reads their
    versions; when none moved it answers 204 No Content. Otherwise `{"rows": {id: the row's
    new HTML}, "toasts": [...]}` for the rows that moved (a finished row stops polling)."""
    sees_all = sees_all_imports(request.user)
    try:
        shown = parse_run_versions(request.GET.get("runs", ""))
    except ValueError as error:
        return JsonResponse({"error": str(error)}, status=400)
    imports = ImportJob.objects.filter(pk__in=shown)
    if not sees_all:
        imports = imports.filter(created_by=request.user)
    current = dict(imports.values_list("pk", "version"))
    moved = [pk for pk, version in current.items() if shown[pk] != version]
    if not moved:
        return HttpResponse(status=204)
    rows = {
        str(import_job.pk): render_to_string(
            "imports/import_list.html#row", detail_context(request, import_job), request=request
        )
        for import_job in ImportJob.objects.select_related("created_by").filter(pk__in=moved)
    }
    return JsonResponse({"rows": rows, "toasts": announcements(request)})


def parse_run_versions(raw: str) -> dict[UUID, int]:
    """`<uuid>:<version>,…` as {uuid: version}; ValueError saying what is wrong."""
    versions: dict[UUID, int] = {}
    for part in filter(None, raw.split(",")):
        match = RUN_VERSION.fullmatch(part)
        try:
            if match is None:
                raise ValueError
            versions[UUID(match[1])] = int(match[2])
        except ValueError:
            raise ValueError(
                f"'runs' lists import-id:version pairs separated by commas; {part[:60]!r} is "
                "not one."
            ) from None
    if len(versions) > LIST_PAGE_SIZE:
        raise ValueError(f"'runs' names at most {LIST_PAGE_SIZE} imports, not {len(versions)}.")
    return versions


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The site's 400 handler (jobsite/urls.py): an upload Django could not read gets the
    upload form again with the reason; any other bad request gets Django's page."""
    match = request.resolver_match
    if (
        isinstance(exception, MultiPartParserError)
        and match is not None
        and match.view_name == "imports:new"
        and request.user.has_perm("imports.add_importjob")
    ):
        form = UploadForm.unreadable(exception)
        context = {"form": form, "max_upload_mb": settings.IMPORT_MAX_UPLOAD_MB}
        return TemplateResponse(request, "imports/import_new.html", context, status=400)
    return defaults.bad_request(request, exception)


@require_http_methods(["GET", "POST"])
@login_required
def import_new(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("imports.add_importjob"):
        raise PermissionDenied("imports.add_importjob")
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            assert form.upload_info is not None  # set by a valid clean_file
            file = form.cleaned_data["file"]
            with file:
                import_job = create_import(
                    file,
                    form.upload_info,
                    user=request.user,
                    on_error=form.cleaned_data["on_error"],
                    on_existing=form.cleaned_data["on_existing"],
                )
            if form.held_token:
                release_held_upload(form.held_token)
            return redirect(import_job)
        if form.duplicate is not None and not form.held_token:
            # Keep the checked file, so "Import anyway" need not send it again.
            form.held_token = hold_upload(form.cleaned_data["file"], user=request.user)
    else:
        form = UploadForm(user=request.user)
    context = {"form": form, "max_upload_mb": settings.IMPORT_MAX_UPLOAD_MB}
    return TemplateResponse(request, "imports/import_new.html", context)


def detail_context(request: HttpRequest, import_job: ImportJob, **extra: Any) -> dict[str, Any]:
    return {
        "import_job": import_job,
        "may_cancel": may_cancel(request.user, import_job),
        **extra,
    }


def live_context(request: HttpRequest, import_job: ImportJob, **extra: Any) -> dict[str, Any]:
    """What the progress section shows: while the import runs, its first stored row errors."""
    first_errors: Any = ()
    if not import_job.is_finished and import_job.error_count:
        first_errors = import_job.errors.order_by("row", "id")[:LIVE_ERRORS]
    return detail_context(request, import_job, first_errors=first_errors, **extra)


def error_page(request: HttpRequest, import_job: ImportJob) -> Any:
    errors = import_job.errors.order_by("row", "id")
    return Paginator(errors, ERRORS_PAGE_SIZE).get_page(request.GET.get("page"))


def render_import_body(request: HttpRequest, import_job: ImportJob) -> TemplateResponse:
    """The live section and the error table, to replace #import-body in place."""
    context = live_context(request, import_job, error_page=error_page(request, import_job))
    response = TemplateResponse(request, "imports/import_detail.html#body", context)
    return reswap(retarget(response, "#import-body"), "outerHTML")


def render_list_row(request: HttpRequest, import_job: ImportJob) -> TemplateResponse:
    return TemplateResponse(
        request, "imports/import_list.html#row", detail_context(request, import_job)
    )


@require_GET
@login_required
def import_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    import_job = get_import_for(request, pk)
    mark_seen(request, import_job)
    if request.htmx and not request.htmx.boosted:
        # Polling: the progress page polls #import-live, the list polls each running row.
        if request.GET.get("fragment") == "row":
            response = render_list_row(request, import_job)
        elif import_job.is_finished:
            # The last poll brings the final figures and the complete error table.
            response = render_import_body(request, import_job)
        else:
            response = TemplateResponse(
                request, "imports/import_detail.html#live", live_context(request, import_job)
            )
        if import_job.is_finished:
            response.status_code = HTMX_STOP_POLLING
        return response
    context = live_context(request, import_job, error_page=error_page(request, import_job))
    return TemplateResponse(request, "imports/import_detail.html", context)


def get_cancellable_import(request: HttpRequest, pk: UUID) -> ImportJob:
    import_job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=pk)
    if not may_cancel(request.user, import_job):
        raise PermissionDenied("imports.change_importjob")
    return import_job


def safe_next(request: HttpRequest) -> str:
    next_url = request.POST.get("next") or request.GET.get("next", "")
    if url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return ""


def render_cancel_dialog(
    request: HttpRequest, import_job: ImportJob, form: ImportCancelForm
) -> TemplateResponse:
    """The confirmation: the modal's content for htmx, a page of its own without JavaScript."""
    context = {
        "import_job": import_job,
        "form": form,
        "fragment": request.POST.get("fragment") or request.GET.get("fragment", ""),
        "next": safe_next(request) or import_job.get_absolute_url(),
    }
    if request.htmx:
        response = TemplateResponse(request, "imports/import_cancel.html#modal", context)
        return reswap(retarget(response, "#modal"), "innerHTML")
    return TemplateResponse(request, "imports/import_cancel.html", context)


@require_GET
@login_required
def import_cancel_confirm(request: HttpRequest, pk: UUID) -> TemplateResponse:
    """Asks before cancelling (the app's dialog, like a job's cancel), with an optional reason."""
    import_job = get_cancellable_import(request, pk)
    return render_cancel_dialog(request, import_job, ImportCancelForm())


@require_POST
@login_required
def import_cancel(request: HttpRequest, pk: UUID) -> HttpResponse:
    import_job = get_cancellable_import(request, pk)
    form = ImportCancelForm(request.POST)
    if not form.is_valid():
        return render_cancel_dialog(request, import_job, form)
    try:
        import_job.request_cancel(actor=request.user, reason=form.cleaned_data["reason"])
    except ImportNotCancellable as exc:
        message, level = str(exc), "error"
    else:
        if import_job.status == ImportStatus.CANCELLED:
            message = "Import cancelled."
        else:
            message = "Cancel requested: the import stops after the batch it is working on."
        level = "success"
    if request.htmx:
        if request.POST.get("fragment") == "row":
            response = render_list_row(request, import_job)
            response = reswap(retarget(response, f"#import-row-{import_job.pk}"), "outerHTML")
        else:
            response = render_import_body(request, import_job)
        trigger_client_event(response, "jobsite:close-modal")
        return trigger_client_event(response, "jobsite:toast", {"message": message, "level": level})
    messages.add_message(request, messages.ERROR if level == "error" else messages.SUCCESS, message)
    return redirect(safe_next(request) or import_job)


def error_csv_response(import_job: ImportJob, filename: str) -> StreamingHttpResponse:
    """An import's row errors as a CSV download, in row order."""
    rows = import_job.errors.order_by("row", "id").values_list(*ERROR_CSV_HEADER)
    return StreamingHttpResponse(
        _error_csv_lines(rows.iterator(chunk_size=2000)),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": content_disposition_header(True, filename)},
    )


def _error_csv_lines(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    lines = formula_safe_csv_lines(chain([ERROR_CSV_HEADER], rows))
    # The BOM lets spreadsheet programs recognise UTF-8.
    yield "\ufeff" + next(lines)
    yield from lines


@require_GET
@login_required
def import_errors_csv(request: HttpRequest, pk: UUID) -> StreamingHttpResponse:
    import_job = get_import_for(request, pk)
    stem = PurePath(import_job.original_filename).stem or "import"
    return error_csv_response(import_job, f"{stem}-errors.csv")


@require_GET
@login_required
def import_original(request: HttpRequest, pk: UUID) -> FileResponse:
    """The file as it was uploaded, under its original name, for those who may see the import."""
    import_job = get_import_for(request, pk)
    if not import_job.file or not import_job.file.storage.exists(import_job.file.name):
        raise Http404("The uploaded file is no longer stored.")
    return FileResponse(
        import_job.file.open("rb"),
        as_attachment=True,
        filename=import_job.original_filename,
        content_type="text/csv",
    )
