from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.db.models import BooleanField, F, Func, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from jobs.runs import RUN_EVENT_MESSAGE_MAX, BackgroundRun, RunEvent, RunStatus, actor_label
from jobs.signals import announce_changes
from jobs.status import (
    InvalidTransition,
    JobStatus,
    apply_status,
    can_cancel,
    creation_side_effects,
)

EDITABLE_FIELDS = (
    "name",
    "status",
    "priority",
    "is_business",
    "customer_name",
    "notes",
    "file_name",
    "printer",
)


class Printer(models.Model):
    name = models.CharField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class VersionConflict(Exception):
    """The job changed since the caller read it; nothing was written."""

    def __init__(self, latest: Job):
        self.latest = latest
        super().__init__(
            f"Job {latest.pk} was changed by someone else (now version {latest.version})."
        )


class NotCancellable(Exception):
    def __init__(self, job: Job):
        self.job = job
        super().__init__(f"A {job.status} job cannot be cancelled.")


# The columns of a jobs list row (JobQuerySet.for_list), the sort columns among them.
LIST_COLUMNS = (
    "name", "status", "priority", "is_business", "customer_name", "printer", "updated_by",
    "created_at", "updated_at", "version",
)  # fmt: skip


class JobQuerySet(models.QuerySet):
    def with_related(self) -> JobQuerySet:
        return self.select_related("printer", "updated_by", "created_by", "cancelled_by")

    def for_list(self) -> JobQuerySet:
        """What a row of the jobs list shows (job_list.html#row), and every column it sorts
        by; with the printer's and the updater's names. Whole rows (with the users' and the
        printer's) are three times the columns: a page of 50 took 2.9 ms on PostgreSQL at a
        million jobs, against 2.0 ms for these."""
        return self.select_related("printer", "updated_by").only(
            *LIST_COLUMNS, "printer__name", f"updated_by__{get_user_model().USERNAME_FIELD}"
        )


def changed_from(origins: Iterable[str], *, refs: Iterable[str] = (), gather: bool = False) -> Q:
    """Jobs with a change (their creation included) from one of `origins`, and given `refs`,
    by one of those runs: with `origins` ["import"] and an import's id, the jobs that import
    created or updated. `id IN (SELECT job_id FROM jobs_jobevent WHERE origin IN … AND
    origin_ref IN …)`, which the (origin, origin_ref, job) index answers alone.

    `gather` when the jobs are likely few among many (one import's): see JobAmong.
    """
    events = JobEvent.objects.filter(origin__in=list(origins))
    refs = list(refs)
    if refs:
        events = events.filter(origin_ref__in=refs)
    job_ids = events.order_by().values("job_id")
    return Q(JobAmong(job_ids)) if gather else Q(pk__in=job_ids)


class JobAmong(Func):
    """`id IN (job ids)` that reads the jobs by key and sorts only them.

    With the plain IN, PostgreSQL may walk the list's sort index instead, probing each row,
    on the guess that the jobs are spread evenly along it; an import's jobs lie together,
    and a walk to an old one passes every newer job (a second at a million jobs).
    `id = ANY(ARRAY(…))` hides the count, so it reads the ids first. Never negate it there:
    `id <> ALL(…)` compares each row with every id; negate the plain IN, which hashes them.
    """

    output_field = BooleanField()

    def __init__(self, job_ids: models.QuerySet):
        super().__init__(F("pk"), Subquery(job_ids))

    def _compiled(self, compiler: Any) -> tuple[str, str, tuple[Any, ...]]:
        (pk, pk_params), (ids, ids_params) = (
            compiler.compile(expression) for expression in self.get_source_expressions()
        )
        return pk, ids, (*pk_params, *ids_params)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        pk, ids, params = self._compiled(compiler)
        return f"{pk} IN {ids}", params

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        pk, ids, params = self._compiled(compiler)
        return f"{pk} = ANY(ARRAY{ids})", params


class Job(models.Model):
    name = models.CharField(max_length=200)
    # No single-column indexes on status, priority, updated_at or printer: the composite
    # indexes in Meta lead with each of them and serve the same queries. Every index more is
    # one more B-tree for each write (an import, a bulk run) and for the planner to weigh.
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.PENDING)
    priority = models.PositiveSmallIntegerField(default=0)
    is_business = models.BooleanField(default=False)
    customer_name = models.CharField(max_length=200, blank=True, default="")
    notes = models.CharField(max_length=1000, blank=True, default="")
    file_name = models.CharField(max_length=255, blank=True, default="")
    printer = models.ForeignKey(
        Printer,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
        db_index=False,  # job_printer_updated_idx leads with it
    )
    reference = models.CharField(max_length=100, null=True, blank=True, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancellation_reason = models.CharField(max_length=255, blank=True, default="")
    version = models.PositiveIntegerField(default=1)
    source_import = models.ForeignKey(
        "imports.ImportJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="job_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=0, priority__lte=10), name="job_priority_0_10"
            ),
            models.CheckConstraint(
                condition=Q(is_business=False) | ~Q(customer_name=""),
                name="job_business_needs_customer",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="job_name_not_empty"),
        ]
        indexes = [
            models.Index(fields=["status", "-updated_at"], name="job_status_updated_idx"),
            models.Index(fields=["-updated_at", "-id"], name="job_updated_id_idx"),
            models.Index(fields=["is_business", "-updated_at"], name="job_business_updated_idx"),
            # The jobs list: each filter with the default sort, and each sortable column.
            models.Index(fields=["printer", "-updated_at", "-id"], name="job_printer_updated_idx"),
            models.Index(
                fields=["priority", "-updated_at", "-id"], name="job_priority_updated_idx"
            ),
            models.Index(fields=["name", "id"], name="job_name_id_idx"),
            models.Index(fields=["customer_name", "id"], name="job_customer_id_idx"),
            models.Index(fields=["status", "id"], name="job_status_id_idx"),
            # Sorting by priority: PostgreSQL needs the id in the index to walk (priority, id)
            # keysets without sorting a whole priority's rows; SQLite has the rowid anyway.
            models.Index(fields=["priority", "id"], name="job_priority_id_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("jobs:detail", args=[self.pk])

    def insert(
        self, *, actor: Any, origin: str, origin_ref: str = "", kind: str = "created"
    ) -> None:
        """Save this new job with its `created` (or `imported`) event, which records where it
        came from: `origin`, a JobEvent.Origin, and for an import which one, `origin_ref`.

        A job created in a later status gets that status's side effects at its creation
        time (docs/jobs.md, "Status rules").
        """
        self.created_by = self.updated_by = actor
        self.updated_at = self.created_at
        for name, value in creation_side_effects(
            self.status, actor=actor, at=self.created_at
        ).items():
            setattr(self, name, value)
        with transaction.atomic():
            self.save(force_insert=True)
            JobEvent.objects.create(
                job=self,
                actor=actor,
                kind=kind,
                changes=creation_diff({name: getattr(self, name) for name in EDITABLE_FIELDS}),
                created_at=self.created_at,
                origin=origin,
                origin_ref=origin_ref,
            )
            announce_changes([("", self.status)], surface=origin)

    @property
    def can_cancel(self) -> bool:
        return can_cancel(self.status)

    def apply_changes(
        self,
        changes: dict[str, Any],
        *,
        actor: Any,
        origin: str,
        origin_ref: str = "",
        expected_version: int | None = None,
        reason: str = "",
        at: datetime | None = None,
    ) -> JobEvent | None:
        """Write `changes` (editable fields only) as one version-checked save with one JobEvent,
        which records the surface the change came from (`origin`, `origin_ref`: see JobEvent).

        A save that changes nothing writes nothing and returns None. Raises VersionConflict when
        the row moved past `expected_version`, InvalidTransition for a forbidden status change.
        """
        unknown = set(changes) - set(EDITABLE_FIELDS)
        if unknown:
            raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
        at = at or timezone.now()
        base_version = self.version if expected_version is None else expected_version
        touched, diff = self.assign_changes(changes, actor=actor, at=at, reason=reason)
        if not diff:
            return None
        kind, diff = self.event_record(diff)
        return self._write(
            touched,
            diff,
            kind=kind,
            actor=actor,
            at=at,
            base_version=base_version,
            origin=origin,
            origin_ref=origin_ref,
        )

    def assign_changes(
        self, changes: dict[str, Any], *, actor: Any, at: datetime, reason: str = ""
    ) -> tuple[list[str], dict[str, list[Any]]]:
        """Set `changes` on this instance (the status through the status rules), unsaved.

        Returns the model fields touched (status side effects included) and the event diff
        `{field: [old, new]}` of the values that really changed.
        """
        before = {name: event_value(getattr(self, name)) for name in changes}
        touched: list[str] = []
        for name, value in changes.items():
            if name == "status":
                touched += apply_status(self, value, actor=actor, at=at, reason=reason)
            elif getattr(self, name) != value:
                setattr(self, name, value)
                touched.append(name)
        diff = {
            name: [before[name], event_value(getattr(self, name))]
            for name in changes
            if before[name] != event_value(getattr(self, name))
        }
        return touched, diff

    def event_kind(self, diff: dict[str, list[Any]]) -> str:
        """The kind of the event recording `diff`, once assigned (`assign_changes`): a status
        change alone is a status change or a cancellation, anything else an update."""
        if set(diff) != {"status"}:
            return JobEvent.Kind.UPDATED
        if self.status == JobStatus.CANCELLED:
            return JobEvent.Kind.CANCELLED
        return JobEvent.Kind.STATUS_CHANGED

    def event_record(self, diff: dict[str, list[Any]]) -> tuple[str, dict[str, list[Any]]]:
        """The kind and the changes of the event recording `diff`, once assigned: a
        cancellation keeps its reason in its event too, since the job's own field is cleared
        when the job is reopened."""
        kind = self.event_kind(diff)
        if kind == JobEvent.Kind.CANCELLED and self.cancellation_reason:
            diff = {**diff, "cancellation_reason": ["", self.cancellation_reason]}
        return kind, diff

    def cancel(
        self,
        *,
        actor: Any,
        origin: str,
        origin_ref: str = "",
        reason: str = "",
        expected_version: int | None = None,
    ) -> JobEvent:
        if not self.can_cancel:
            raise NotCancellable(self)
        event = self.apply_changes(
            {"status": JobStatus.CANCELLED},
            actor=actor,
            origin=origin,
            origin_ref=origin_ref,
            reason=reason.strip()[:255],
            expected_version=expected_version,
        )
        assert event is not None  # cancelling always changes the status
        return event

    def _write(
        self,
        fields: list[str],
        diff: dict[str, list[Any]],
        *,
        kind: str,
        actor: Any,
        at: datetime,
        base_version: int,
        origin: str,
        origin_ref: str,
    ) -> JobEvent:
        values = {name: getattr(self, name) for name in fields}
        old_status = diff.get("status", [self.status])[0]
        with transaction.atomic():
            written = Job.objects.filter(pk=self.pk, version=base_version).update(
                **values, updated_at=at, updated_by=actor, version=F("version") + 1
            )
            if not written:
                latest = Job.objects.with_related().get(pk=self.pk)
                raise VersionConflict(latest)
            event = JobEvent.objects.create(
                job=self,
                actor=actor,
                kind=kind,
                changes=diff,
                created_at=at,
                origin=origin,
                origin_ref=origin_ref,
            )
            announce_changes([(old_status, self.status)], surface=origin)
        self.refresh_from_db()
        return event


def creation_diff(values: dict[str, Any]) -> dict[str, list[Any]]:
    """The `created`/`imported` event diff: each field given a value, from None."""
    return {
        name: [None, event_value(value)]
        for name, value in values.items()
        if value is not None and value != ""
    }


def event_value(value: Any) -> Any:
    """A JSON-safe, human-readable value for a JobEvent diff."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, models.Model):
        return str(value)
    return value


class JobEventKind(models.TextChoices):
    CREATED = "created", "Created"
    UPDATED = "updated", "Updated"
    STATUS_CHANGED = "status_changed", "Status changed"
    CANCELLED = "cancelled", "Cancelled"
    IMPORTED = "imported", "Imported"


class JobEventOrigin(models.TextChoices):
    """The surface a change came from (docs/jobs.md, "History"). Events written before
    origins were recorded have none (""), except imports' `imported` events."""

    UI = "ui", "Web page"
    ADMIN = "admin", "Admin"
    CLI = "cli", "Command line"
    API = "api", "API"
    MCP = "mcp", "MCP"
    IMPORT = "import", "Import"
    BULK = "bulk", "Bulk run"


# An import's UUID as text, or another run's id: `jobs` names no model of another app.
ORIGIN_REF_MAX = 64


class JobEvent(models.Model):
    Kind = JobEventKind
    Origin = JobEventOrigin

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    origin = models.CharField(max_length=10, choices=Origin.choices, blank=True, default="")
    # Which import (its UUID) or bulk change wrote the event; "" for a single change.
    origin_ref = models.CharField(max_length=ORIGIN_REF_MAX, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["job", "-created_at"], name="jobevent_job_created_idx"),
            # "The jobs of this import" and "jobs changed from this surface" (jobs.filters):
            # `job_id IN (SELECT job_id ... WHERE origin = %s [AND origin_ref = %s])` reads
            # this index alone.
            models.Index(fields=["origin", "origin_ref", "job"], name="jobevent_origin_job_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=JobEventKind.values),
                name="jobevent_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(origin__in=["", *JobEventOrigin.values]),
                name="jobevent_origin_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.job_id}"

    @property
    def actor_label(self) -> str:
        return self.actor.get_username() if self.actor else "system"


# --- Bulk runs: one action on every job matching a filter (docs/bulk-runs.md) ------------


class BulkAction(models.TextChoices):
    SET_STATUS = "set_status", "Set status"
    CANCEL = "cancel", "Cancel"
    SET_PRIORITY = "set_priority", "Set priority"
    SET_PRINTER = "set_printer", "Assign printer"
    RETRY_FAILED = "retry_failed", "Retry failed"


class BulkRun(BackgroundRun):
    """One action applied to every job of a selection, in batches on the cluster.

    The selection is the jobs list's query string (`query`), or ticked jobs (`job_ids`).
    The run first notes the selected jobs up to `max_job_id` (the snapshot, as BulkRunBatch
    rows), then changes them batch by batch; the checkpoint is the last job id done. The
    run machinery (claim, lease, steps, cancel) is jobs.runs and jobs.runner; the work is
    jobs.bulk_runs.
    """

    noun = "bulk run"

    query = models.TextField(blank=True, default="", help_text="The jobs list's query string.")
    job_ids = models.JSONField(
        null=True, blank=True, help_text="Ticked jobs, when the selection is not a filter."
    )
    action = models.CharField(max_length=20, choices=BulkAction.choices)
    new_status = models.CharField(max_length=20, choices=JobStatus.choices, blank=True, default="")
    new_priority = models.PositiveSmallIntegerField(null=True, blank=True)
    new_printer = models.ForeignKey(
        Printer, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=255, blank=True, default="")
    origin = models.CharField(
        max_length=10, choices=JobEventOrigin.choices, default=JobEventOrigin.UI
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bulk_runs",
    )
    # The selection: jobs up to the highest id when the run was made, noted by the snapshot.
    max_job_id = models.BigIntegerField(default=0)
    snapshot_through = models.BigIntegerField(default=0, help_text="Job ids looked at so far.")
    snapshot_done = models.BooleanField(default=False)
    total_count = models.PositiveIntegerField(null=True, blank=True)
    processed_count = models.PositiveIntegerField(default=0)
    changed_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    # {reason: count}: the report's "skipped by reason".
    skip_counts = models.JSONField(default=dict, blank=True)
    checkpoint = models.BigIntegerField(default=0, help_text="The last job id done.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="bulkrun_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(action__in=BulkAction.values), name="bulkrun_action_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="bulkrun_status_created_idx"),
        ]

    def __str__(self) -> str:
        return f"Bulk run {self.pk}: {self.action_label}"

    def get_absolute_url(self) -> str:
        return reverse("jobs:bulk-run", args=[self.pk])

    def announcement(self) -> str:
        """`Bulk run 7 (set priority to 5) completed: 1,000 changed, 2 skipped.`"""
        return (
            f"Bulk run {self.pk} ({self.action_label}) {self.get_status_display().lower()}: "
            f"{self.changed_count:,} changed, {self.skipped_count:,} skipped."
        )

    @property
    def log_ids(self) -> dict[str, str]:
        return {"bulk_run_id": str(self.pk)}

    @property
    def action_label(self) -> str:
        """What the run does to each job: "set status to running"."""
        if self.action == BulkAction.SET_STATUS:
            return f"set status to {JobStatus(self.new_status).label.lower()}"
        if self.action == BulkAction.SET_PRIORITY:
            return f"set priority to {self.new_priority}"
        if self.action == BulkAction.SET_PRINTER:
            return f"assign printer {self.new_printer}"
        if self.action == BulkAction.CANCEL:
            return f"cancel (reason: {self.reason})" if self.reason else "cancel"
        return "retry failed jobs (failed → pending)"

    # --- Progress, as the run page, the command and the API show it ---------------------
    @property
    def progress_percent(self) -> int:
        if self.status == RunStatus.COMPLETED:
            return 100
        if not self.total_count:
            return 0
        return max(0, min(self.processed_count * 100 // self.total_count, 99))

    @property
    def elapsed_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.completed_at if self.is_finished and self.completed_at else timezone.now()
        return max((end - self.started_at).total_seconds(), 0.0)

    @property
    def rows_per_second(self) -> float | None:
        elapsed = self.elapsed_seconds
        if not elapsed or not self.processed_count:
            return None
        return self.processed_count / elapsed

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rows_per_second
        if self.status != RunStatus.PROCESSING or not rate or self.total_count is None:
            return None
        return max(self.total_count - self.processed_count, 0) / rate

    # --- What the run machinery asks of a run --------------------------------------------
    @property
    def progress_label(self) -> str:
        return f"{self.processed_count} jobs"

    @property
    def checkpoint_label(self) -> str:
        if not self.snapshot_done:
            return f"noting the selection up to job {self.snapshot_through}"
        return f"job {self.checkpoint}"

    def write_event(
        self, *, old_status: str, new_status: str, actor: Any, message: str, at: datetime
    ) -> None:
        BulkRunEvent.objects.create(
            run=self,
            old_status=old_status,
            new_status=new_status,
            actor=actor,
            message=message[:RUN_EVENT_MESSAGE_MAX],
            created_at=at,
        )

    def status_changed(self, *, old_status: str, new_status: str, actor: Any) -> None:
        fields = {
            "bulk_run_id": str(self.pk),
            "old_status": old_status,
            "new_status": new_status,
            "actor": actor_label(actor),
            "action": self.action,
            "total_count": self.total_count,
            "changed_count": self.changed_count,
            "skipped_count": self.skipped_count,
            "attempts": self.attempts,
        }
        self.logger.info(
            "bulk run status changed: %s",
            " ".join(f"{key}={value}" for key, value in fields.items()),
            extra={"event": "bulk_run_status_changed", **fields},
        )


class BulkRunBatch(models.Model):
    """The jobs of one batch of a run, noted when the run started (its selection, cut in
    batches): the set the run works on. One row holds up to BULK_RUN_BATCH_SIZE job ids, so
    noting a million jobs writes a thousand rows, not a million."""

    pk = models.CompositePrimaryKey("run", "last_job_id")
    run = models.ForeignKey(BulkRun, on_delete=models.CASCADE, related_name="+")
    # The highest id of `job_ids`: a batch is done once the run's checkpoint reaches it.
    last_job_id = models.BigIntegerField()
    # The ids in ascending order. No foreign keys: a job deleted meanwhile is reported, not
    # cascaded or protected.
    job_ids = models.JSONField()
    size = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"Jobs up to #{self.last_job_id} of bulk run {self.run_id}"


class BulkRunSkip(models.Model):
    """A job the run left as it was, and why: the report and its CSV."""

    run = models.ForeignKey(BulkRun, on_delete=models.CASCADE, related_name="skips")
    job_id = models.BigIntegerField()
    reason = models.CharField(max_length=255)

    class Meta:
        ordering = ["job_id"]
        indexes = [models.Index(fields=["run", "job_id"], name="bulkrunskip_run_job_idx")]

    def __str__(self) -> str:
        return f"Job #{self.job_id}: {self.reason}"


class BulkRunEvent(RunEvent):
    """The run's history: who started it, its status changes, cancel requests, resumes."""

    run = models.ForeignKey(BulkRun, on_delete=models.CASCADE, related_name="events")

    class Meta(RunEvent.Meta):
        pass


__all__ = [
    "BulkAction",
    "BulkRun",
    "BulkRunBatch",
    "BulkRunEvent",
    "BulkRunSkip",
    "InvalidTransition",
    "Job",
    "JobEvent",
    "NotCancellable",
    "Printer",
    "VersionConflict",
]
