from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from jobs.forms import JobForm
from jobs.models import Job, JobEvent, Printer


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
    fields = ["created_at", "kind", "actor", "changes"]
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


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Saves go through Job.insert / Job.apply_changes, so admin follows the status rules,
    bumps the version and writes the same events as every other surface."""

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
    list_filter = ["status", "is_business", "priority", "printer"]
    list_select_related = ["printer", "updated_by"]
    search_fields = ["name", "customer_name", "reference"]
    date_hierarchy = "created_at"
    show_full_result_count = False
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

    def save_model(self, request: HttpRequest, obj: Job, form: JobForm, change: bool) -> None:
        if change:
            obj.apply_changes(
                form.changes(), actor=request.user, expected_version=form.cleaned_data["version"]
            )
        else:
            for name, value in form.changes().items():
                setattr(obj, name, value)
            obj.insert(actor=request.user)


@admin.register(JobEvent)
class JobEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "job", "kind", "actor"]
    list_filter = ["kind"]
    list_select_related = ["job", "actor"]
    search_fields = ["job__name", "job__reference"]
    date_hierarchy = "created_at"
    raw_id_fields = ["job"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
