from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from jobs.bulk import MAX_ITEMS, bulk_update_status
from jobs.forms import JobForm
from jobs.models import BulkRun, BulkRunEvent, Job, JobEvent, Printer
from jobs.paging import CappedPaginator
from jobs.runs import RunNotCancellable
from jobs.search import text_filter
from jobs.status import JobStatus
from jobs.validation import PRIORITY_MAX, PRIORITY_MIN


@admin.register(Printer)
class PrinterAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "job_count", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Printer]:
        return super().get_queryset(request).annotate(job_count=Count("jobs"))

    @admin.display(description="Jobs", ordering="job_count")
    def job_count(self, printer: Printer) -> int:
        return printer.job_count


class JobEventInline(admin.TabularInline):
    model = JobEvent
    fields = ["created_at", "kind", "actor", "origin", "origin_ref", "changes"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class JobAdminForm(JobForm):
    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.instance.pk and data.get("version") is not None:
            stored = Job.objects.filter(pk=self.instance.pk).values_list("version", flat=True)
            if stored and stored[0] != data["version"]:
                raise forms.ValidationError(
                    "This job was changed by someone else while you were editing. "
                    "Reload the page to see the latest values."
                )
        return data


class ChangeStatusForm(forms.Form):
    status = forms.ChoiceField(choices=JobStatus.choices, label="New status")


class PriorityFilter(admin.SimpleListFilter):
    """The priorities as fixed choices: the stock filter asks the table for its DISTINCT
    values, a scan of every job on each changelist view."""

    title = "priority"
    parameter_name = "priority"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(n), str(n)) for n in range(PRIORITY_MIN, PRIORITY_MAX + 1)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        return queryset.filter(priority=self.value()) if self.value() else queryset


class LargeTableAdmin(admin.ModelAdmin):
    """A changelist that stays fast at a million rows, like the jobs list: the count stops
    after COUNT_CAP rows ("10,000+", templates/admin/jobs/), no whole-table COUNT, no facet
    counts, dates filtered by range links instead of a date hierarchy (which reads the
    distinct years of every row), and sorting only by columns with an index."""

    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER


@admin.register(Job)
class JobAdmin(LargeTableAdmin):
    """Saves go through Job.insert / Job.apply_changes, so admin follows the status rules,
    bumps the version and writes the same events as every other surface. The search is the
    jobs list's text search, through its index (jobs/search.py)."""

    form = JobAdminForm
    list_display = [
        "id",
        "name",
        "status",
        "priority",
        "printer",
        "customer_name",
        "is_business",
        "reference",
        "updated_at",
        "updated_by",
    ]
    list_filter = [
        "status",
        "is_business",
        PriorityFilter,
        "printer",
        ("created_at", admin.DateFieldListFilter),
        ("updated_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["printer", "updated_by"]
    # get_search_results searches; the admin shows its box when this is not empty.
    search_fields = ["name", "customer_name", "reference", "file_name"]
    search_help_text = (
        'Every word in the name, customer, reference or file name; "a phrase" as one.'
    )
    # The columns with a (column, id) index; Job.Meta.ordering (-updated_at, -id) by default.
    sortable_by = ["id", "name", "status", "priority", "customer_name", "updated_at"]
    readonly_fields = [
        "reference",
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
        "started_at",
        "completed_at",
        "cancelled_at",
        "cancelled_by",
        "cancellation_reason",
        "source_import",
    ]
    raw_id_fields = ["printer"]
    inlines = [JobEventInline]
    actions = ["change_status"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Job], search_term: str
    ) -> tuple[QuerySet[Job], bool]:
        if not search_term.strip():
            return queryset, False
        return text_filter(queryset, search_term), False

    def save_model(self, request: HttpRequest, obj: Job, form: JobForm, change: bool) -> None:
        if change:
            obj.apply_changes(
                form.changes(),
                actor=request.user,
                origin=JobEvent.Origin.ADMIN,
                expected_version=form.cleaned_data["version"],
            )
        else:
            for name, value in form.changes().items():
                setattr(obj, name, value)
            obj.insert(actor=request.user, origin=JobEvent.Origin.ADMIN)

    @admin.action(permissions=["change"], description="Change status…")
    def change_status(
        self, request: HttpRequest, queryset: QuerySet[Job]
    ) -> TemplateResponse | None:
        """Pick a status on an intermediate page, then set it on every selected job through
        the one bulk update: all of them change, or none and the message says why."""
        jobs = list(queryset.order_by("pk")[: MAX_ITEMS + 1])
        if len(jobs) > MAX_ITEMS:
            self.message_user(
                request,
                f"More than {MAX_ITEMS} jobs are selected. One status change takes at most "
                f"{MAX_ITEMS} jobs, all or nothing: select fewer. Nothing was changed.",
                messages.ERROR,
            )
            return None
        form = ChangeStatusForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": "Change the status of the selected jobs",
                "opts": self.opts,
                "jobs": jobs,
                "form": form,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "max_items": MAX_ITEMS,
            }
            request.current_app = self.admin_site.name
            return TemplateResponse(request, "admin/jobs/job/change_status.html", context)

        status = form.cleaned_data["status"]
        items = [{"id": job.pk, "status": status} for job in jobs]
        response = bulk_update_status(items, actor=request.user, origin=JobEvent.Origin.ADMIN)
        label = JobStatus(status).label
        if "error" in response:
            self.message_user(request, response["error"]["message"], messages.ERROR)
        elif response["failed_count"]:
            self.message_user(request, _failure_message(response, jobs, label), messages.ERROR)
        else:
            count = response["updated_count"]
            noun = "job" if count == 1 else "jobs"
            self.message_user(request, f"Set {count} {noun} to {label}.", messages.SUCCESS)
        return None


def _failure_message(response: dict[str, Any], jobs: list[Job], label: str) -> str:
    """Which jobs stopped the batch and why, one per line (the rolled-back ones are not listed;
    a nested list would pick up the admin's message styling)."""
    by_id = {job.pk: job for job in jobs}
    failures = [
        (result["id"], by_id[result["id"]], result["error"]["message"])
        for result in response["results"]
        if result["error"]["code"] != "ROLLED_BACK"
    ]
    return format_html(
        "Nothing was changed: {} of {} selected jobs cannot be set to {}.{}",
        len(failures),
        len(jobs),
        label,
        format_html_join(
            "",
            "<br>#{} {} ({}): {}",
            ((pk, job.name, job.status, why) for pk, job, why in failures),
        ),
    )


@admin.register(JobEvent)
class JobEventAdmin(LargeTableAdmin):
    """Newest first by id (the primary key's index; events are written in time order, and
    created_at has no index of its own); the search finds the events of matching jobs."""

    list_display = ["created_at", "job", "kind", "actor", "origin"]
    list_filter = ["kind", "origin", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["job", "actor"]
    search_fields = ["job__name", "job__reference"]
    search_help_text = (
        "Events of the jobs with every word in their name, customer, reference or file name."
    )
    ordering = ["-id"]
    sortable_by: list[str] = []
    raw_id_fields = ["job"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[JobEvent], search_term: str
    ) -> tuple[QuerySet[JobEvent], bool]:
        if not search_term.strip():
            return queryset, False
        jobs = text_filter(Job.objects.all(), search_term)
        return queryset.filter(job__in=jobs.values("pk")), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class BulkRunEventInline(admin.TabularInline):
    model = BulkRunEvent
    fields = ["created_at", "old_status", "new_status", "actor", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BulkRun)
class BulkRunAdmin(admin.ModelAdmin):
    """Bulk runs are started from the jobs list, the command or the API (docs/bulk-runs.md):
    here they are read, with their history, and cancelled."""

    list_display = [
        "id",
        "action_label",
        "status",
        "total_count",
        "changed_count",
        "skipped_count",
        "created_by",
        "origin",
        "created_at",
    ]
    list_filter = ["status", "action", "origin"]
    list_select_related = ["created_by", "new_printer"]
    date_hierarchy = "created_at"
    inlines = [BulkRunEventInline]
    actions = ["cancel_runs"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in BulkRun._meta.fields] + ["report"]

    @admin.display(description="Report")
    def report(self, run: BulkRun) -> str:
        return format_html('<a href="{}">The run\'s page</a>', run.get_absolute_url())

    @admin.action(description="Cancel selected bulk runs", permissions=["change"])
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[BulkRun]) -> None:
        done, refused = 0, []
        for run in queryset:
            try:
                run.request_cancel(actor=request.user, reason="Cancelled in the admin")
            except RunNotCancellable as exc:
                refused.append(f"#{run.pk}: {exc}")
            else:
                done += 1
        if done:
            self.message_user(
                request,
                f"Cancelled {done} bulk run(s); a running one stops after its current batch.",
                messages.SUCCESS,
            )
        if refused:
            self.message_user(
                request, f"Could not cancel {len(refused)}: " + " ".join(refused), messages.WARNING
            )
