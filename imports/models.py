import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class OnError(models.TextChoices):
    SKIP = "skip", "Skip bad rows, import the rest"
    ABORT = "abort", "All or nothing: import nothing if any row is bad"


class OnExisting(models.TextChoices):
    UPDATE = "update", "Update the existing job"
    SKIP = "skip", "Skip the row"
    ERROR = "error", "Report the row as an error"


class ErrorType(models.TextChoices):
    VALIDATION = "validation", "Validation"
    PARSE = "parse", "Parse"
    DUPLICATE = "duplicate", "Duplicate"
    SYSTEM = "system", "System"


TERMINAL_STATUSES = (ImportStatus.COMPLETED, ImportStatus.FAILED, ImportStatus.CANCELLED)


def import_upload_path(instance: "ImportJob", filename: str) -> str:
    return f"imports/{instance.created_at:%Y/%m}/{instance.pk}.csv"


class ImportJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    file = models.FileField(upload_to=import_upload_path, max_length=255)
    original_filename = models.CharField(max_length=255)
    file_size = models.BigIntegerField(default=0)
    file_hash = models.CharField(max_length=64, db_index=True)
    encoding = models.CharField(max_length=40, blank=True, default="")
    delimiter = models.CharField(max_length=4, blank=True, default="")
    status = models.CharField(
        max_length=20, choices=ImportStatus.choices, default=ImportStatus.PENDING, db_index=True
    )
    on_error = models.CharField(max_length=10, choices=OnError.choices, default=OnError.SKIP)
    on_existing = models.CharField(
        max_length=10, choices=OnExisting.choices, default=OnExisting.UPDATE
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="imports",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    estimated_rows = models.PositiveIntegerField(default=0)
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    checkpoint = models.PositiveIntegerField(default=0, help_text="Data rows durably done.")
    attempts = models.PositiveSmallIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancellation_reason = models.CharField(max_length=255, blank=True, default="")
    failure_message = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ImportStatus.values), name="import_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(on_error__in=OnError.values), name="import_on_error_valid"
            ),
            models.CheckConstraint(
                condition=Q(on_existing__in=OnExisting.values), name="import_on_existing_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="import_status_created_idx"),
            models.Index(fields=["created_by", "-created_at"], name="import_owner_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.original_filename} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("imports:detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


class ImportErrorRecord(models.Model):
    import_job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="errors")
    row = models.PositiveIntegerField()
    field = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 - null: the whole row
    error_type = models.CharField(max_length=20, choices=ErrorType.choices)
    message = models.CharField(max_length=500)
    raw_data = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["row", "id"]
        indexes = [models.Index(fields=["import_job", "row"], name="importerror_job_row_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(error_type__in=ErrorType.values), name="importerror_type_valid"
            )
        ]

    def __str__(self) -> str:
        return f"Row {self.row}: {self.message}"


class ImportEvent(models.Model):
    import_job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="events")
    old_status = models.CharField(max_length=20, blank=True, default="")
    new_status = models.CharField(max_length=20, choices=ImportStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.old_status or '∅'} → {self.new_status}"
