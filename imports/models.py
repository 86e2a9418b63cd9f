import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from imports.signals import import_status_changed

logger = logging.getLogger("imports")


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


class ImportNotCancellable(Exception):
    def __init__(self, import_job: "ImportJob"):
        self.import_job = import_job
        super().__init__(
            f"This import is already {import_job.status} and can no longer be cancelled."
        )


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
    # The worker holding the import ("host:pid:token") and until when; a worker renews the
    # lease with every batch, so an expired lease means the worker died and another may resume.
    lease_owner = models.CharField(max_length=100, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)

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

    @property
    def lease_is_live(self) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > timezone.now()

    # --- Cancelling -----------------------------------------------------------------
    @property
    def can_cancel(self) -> bool:
        if self.status == ImportStatus.PENDING:
            return True
        return self.status == ImportStatus.PROCESSING and self.cancel_requested_at is None

    def request_cancel(self, *, actor: Any, reason: str = "") -> None:
        """Cancel a pending import at once; ask the worker to stop a processing one.

        The worker checks between batches and marks the import cancelled (committed batches
        stay). A processing import whose worker is gone (lease expired) is cancelled at once.
        Asking again while a cancel is pending is a no-op. Raises ImportNotCancellable when
        the import has already finished.
        """
        reason = reason.strip()[:255]
        for _ in range(5):  # the row may move under us (claimed, finished); re-read and retry
            self.refresh_from_db()
            if self.is_finished:
                raise ImportNotCancellable(self)
            if self.status == ImportStatus.PENDING or not self.lease_is_live:
                if self.transition(
                    ImportStatus.CANCELLED,
                    actor=actor,
                    message=_cancel_message(reason),
                    from_statuses=[self.status],
                    expected_version=self.version,
                    cancelled_at=timezone.now(),
                    cancelled_by=actor,
                    cancellation_reason=reason,
                    cancel_requested_at=self.cancel_requested_at or timezone.now(),
                    lease_owner="",
                    lease_expires_at=None,
                ):
                    return
                continue
            if self.cancel_requested_at is not None:
                return
            with transaction.atomic():
                # No version bump: the version fences the worker's writes, and a cancel
                # request must not make the batch in flight fail.
                requested = ImportJob.objects.filter(
                    pk=self.pk, status=ImportStatus.PROCESSING, cancel_requested_at__isnull=True
                ).update(
                    cancel_requested_at=timezone.now(),
                    cancelled_by=actor,
                    cancellation_reason=reason,
                )
                if requested:
                    ImportEvent.objects.create(
                        import_job=self,
                        old_status=ImportStatus.PROCESSING,
                        new_status=ImportStatus.PROCESSING,
                        actor=actor,
                        message=_cancel_message(reason, requested=True),
                    )
            if requested:
                self.refresh_from_db()
                logger.info(
                    "import cancel requested: import_id=%s actor=%s",
                    self.pk,
                    _actor_label(actor),
                    extra={"event": "import_cancel_requested", "import_id": str(self.pk)},
                )
                return
        raise ImportNotCancellable(self)

    # --- Status changes -------------------------------------------------------------
    def transition(
        self,
        new_status: str,
        *,
        actor: Any = None,
        message: str = "",
        from_statuses: Iterable[str] | None = None,
        expected_version: int | None = None,
        **fields: Any,
    ) -> bool:
        """Move the import to `new_status` with a conditional UPDATE; the one path for changes.

        Writes only if the row is still in one of `from_statuses` (and at `expected_version`
        when given), bumps the version, writes an ImportEvent, sends `import_status_changed`
        and logs one line. Returns False (nothing written) when the row moved meanwhile.
        """
        conditions: dict[str, Any] = {"pk": self.pk}
        if from_statuses is not None:
            conditions["status__in"] = list(from_statuses)
        if expected_version is not None:
            conditions["version"] = expected_version
        now = timezone.now()
        if new_status in TERMINAL_STATUSES:
            fields.setdefault("completed_at", now)
        with transaction.atomic():
            old_status = (
                ImportJob.objects.filter(**conditions).values_list("status", flat=True).first()
            )
            if old_status is None:
                return False
            conditions["status"] = old_status
            written = ImportJob.objects.filter(**conditions).update(
                status=new_status, version=F("version") + 1, updated_at=now, **fields
            )
            if not written:
                return False
            ImportEvent.objects.create(
                import_job=self,
                old_status=old_status,
                new_status=new_status,
                actor=actor,
                message=message[:500],
                created_at=now,
            )
            self.refresh_from_db()
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
            "actor": _actor_label(actor),
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
        return True

    def lease_until(self) -> Any:
        return timezone.now() + timedelta(seconds=settings.IMPORT_LEASE_SECONDS)


def _actor_label(actor: Any) -> str:
    return actor.get_username() if actor is not None else "system"


def _cancel_message(reason: str, *, requested: bool = False) -> str:
    text = (
        "Cancel requested; the worker stops after the current batch."
        if requested
        else ("Cancelled.")
    )
    return f"{text} Reason: {reason}" if reason else text


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
