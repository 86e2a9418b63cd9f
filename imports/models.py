import logging
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone

from imports.signals import import_status_changed
from jobs.runs import (
    FINISHED_STATUSES,
    RUN_EVENT_MESSAGE_MAX,
    BackgroundRun,
    RunEvent,
    RunNotCancellable,
    RunStatus,
    actor_label,
)

logger = logging.getLogger("imports")


# An import's statuses are those of every background run.
ImportStatus = RunStatus


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


# Views, admin and commands name these for imports; they are the same for every run.
TERMINAL_STATUSES = FINISHED_STATUSES
ImportNotCancellable = RunNotCancellable


def import_upload_path(instance: "ImportJob", filename: str) -> str:
    return f"imports/{instance.created_at:%Y/%m}/{instance.pk}.csv"


class ImportJob(BackgroundRun):
    """One CSV import: the stored file, its options, and its run (status, lease, progress).

    The run machinery (claim, lease, checkpoint, cancel) is jobs.runs and jobs.runner;
    docs/csv-import.md, "Processing, resume and cancel" describes it as users see it.
    """

    noun = "import"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    file = models.FileField(upload_to=import_upload_path, max_length=255)
    original_filename = models.CharField(max_length=255)
    file_size = models.BigIntegerField(default=0)
    file_hash = models.CharField(max_length=64, db_index=True)
    encoding = models.CharField(max_length=40, blank=True, default="")
    delimiter = models.CharField(max_length=4, blank=True, default="")
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
    estimated_rows = models.PositiveIntegerField(default=0)
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    checkpoint = models.PositiveIntegerField(default=0, help_text="Data rows durably done.")
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            # Staff status alone does not let anyone delete imports in bulk (the Cluster page).
            ("run_retention", "Can run the import retention cleanup now"),
        ]
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

    def announcement(self) -> str:
        """`Import “jobs.csv” completed: 180 created, 20 updated, 3 errors.`"""
        return (
            f"Import “{self.original_filename}” {self.get_status_display().lower()}: "
            f"{self.created_count:,} created, {self.updated_count:,} updated, "
            f"{self.error_count:,} error{pluralize(self.error_count)}."
        )

    # --- Progress, as the progress page and the CLI show it ---------------------------
    @property
    def expected_rows(self) -> int:
        """The exact row count once known, else the upload-time estimate."""
        return self.total_rows if self.total_rows is not None else self.estimated_rows

    @property
    def progress_percent(self) -> int:
        if self.status == ImportStatus.COMPLETED:
            return 100
        expected = self.expected_rows
        if not expected:
            return 0
        percent = self.processed_rows * 100 // expected
        # An estimate can be short (quoted newlines); never show 100 % before the end.
        return max(0, min(percent, 100 if self.is_finished else 99))

    @property
    def elapsed_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.completed_at if self.is_finished and self.completed_at else timezone.now()
        return max((end - self.started_at).total_seconds(), 0.0)

    @property
    def rows_per_second(self) -> float | None:
        elapsed = self.elapsed_seconds
        if not elapsed or not self.processed_rows:
            return None
        return self.processed_rows / elapsed

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rows_per_second
        if self.status != ImportStatus.PROCESSING or not rate:
            return None
        return max(self.expected_rows - self.processed_rows, 0) / rate

    # --- What the run machinery asks of an import --------------------------------------
    @property
    def progress_label(self) -> str:
        return f"{self.processed_rows} rows"

    @property
    def checkpoint_label(self) -> str:
        # The checkpoint counts data records; the header is row 1 (docs/csv-import.md,
        # "Row numbers").
        return f"row {self.checkpoint + 1}"

    def write_event(
        self, *, old_status: str, new_status: str, actor: Any, message: str, at: datetime
    ) -> None:
        ImportEvent.objects.create(
            import_job=self,
            old_status=old_status,
            new_status=new_status,
            actor=actor,
            message=message[:RUN_EVENT_MESSAGE_MAX],
            created_at=at,
        )

    def status_changed(self, *, old_status: str, new_status: str, actor: Any) -> None:
        """Every status change sends `import_status_changed` (which, among others, makes an
        import that stops running make way for its user's next waiting one: imports.apps) and
        logs one line."""
        import_status_changed.send(
            sender=ImportJob,
            import_job=self,
            old_status=old_status,
            new_status=new_status,
            actor=actor,
        )
        fields = {
            "import_id": str(self.pk),
            "old_status": old_status,
            "new_status": new_status,
            "actor": actor_label(actor),
            "processed_rows": self.processed_rows,
            "created_count": self.created_count,
            "updated_count": self.updated_count,
            "skipped_count": self.skipped_count,
            "error_count": self.error_count,
            "attempts": self.attempts,
        }
        logger.info(
            "import status changed: %s",
            " ".join(f"{key}={value}" for key, value in fields.items()),
            extra={"event": "import_status_changed", **fields},
        )


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


class ImportEvent(RunEvent):
    import_job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="events")

    class Meta(RunEvent.Meta):
        pass
