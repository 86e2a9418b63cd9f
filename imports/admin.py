from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.html import format_html

from imports.models import (
    ImportErrorRecord,
    ImportEvent,
    ImportJob,
    ImportNotCancellable,
    ImportStatus,
)


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ImportEventInline(ReadOnlyMixin, admin.TabularInline):
    model = ImportEvent
    fields = ["created_at", "old_status", "new_status", "actor", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    """Imports are created by uploading a file, never edited by hand."""

    list_display = [
        "original_filename",
        "status",
        "processed_rows",
        "total_rows",
        "created_count",
        "updated_count",
        "error_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "on_error", "on_existing"]
    list_select_related = ["created_by"]
    search_fields = ["original_filename", "file_hash", "id"]
    date_hierarchy = "created_at"
    # An import may hold thousands of error records: its page links to their paged list
    # instead of showing them inline.
    inlines = [ImportEventInline]
    actions = ["cancel_imports"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in ImportJob._meta.fields] + ["error_records"]

    @admin.display(description="Error records")
    def error_records(self, import_job: ImportJob) -> str:
        if not import_job.error_count:
            return "None"
        changelist = reverse("admin:imports_importerrorrecord_changelist")
        return format_html(
            '<a href="{}?import_job__id__exact={}">{} row error{}, {} a page</a>'
            ' (also on <a href="{}">the import\'s page</a>)',
            changelist,
            import_job.pk,
            import_job.error_count,
            pluralize(import_job.error_count),
            ImportErrorRecordAdmin.list_per_page,
            import_job.get_absolute_url(),
        )

    @admin.action(description="Cancel selected imports", permissions=["change"])
    def cancel_imports(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        cancelled, requested, refused = 0, 0, []
        for import_job in queryset:
            try:
                import_job.request_cancel(actor=request.user, reason="Cancelled in the admin")
            except ImportNotCancellable as exc:
                refused.append(f"{import_job.original_filename}: {exc}")
            else:
                if import_job.status == ImportStatus.CANCELLED:
                    cancelled += 1
                else:
                    requested += 1
        if cancelled:
            self.message_user(request, f"Cancelled {cancelled} import(s).", messages.SUCCESS)
        if requested:
            self.message_user(
                request,
                f"Asked {requested} running import(s) to stop; each stops after its current batch.",
                messages.SUCCESS,
            )
        if refused:
            self.message_user(
                request,
                f"Could not cancel {len(refused)} import(s): " + " ".join(refused),
                messages.WARNING,
            )


@admin.register(ImportErrorRecord)
class ImportErrorRecordAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["import_job", "row", "field", "error_type", "message"]
    list_filter = ["error_type"]
    list_select_related = ["import_job"]
    search_fields = ["message", "raw_data"]
    raw_id_fields = ["import_job"]
    show_full_result_count = False


@admin.register(ImportEvent)
class ImportEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "import_job", "old_status", "new_status", "actor", "message"]
    list_filter = ["new_status"]
    list_select_related = ["import_job", "actor"]
    date_hierarchy = "created_at"
    raw_id_fields = ["import_job"]
