"""Background runs: long work on the cluster that a worker claims, checkpoints and finishes.

A run is a row (a model inheriting `BackgroundRun`) that holds the state and progress; the
task queue only says "run this id". jobs.runner.Runner is the worker's side:

- claim: one worker at a time holds a run, through a lease (owner + expiry) it renews with
  every step; an expired lease means the worker died and another one may resume.
- attempts: every pickup counts one; past the cap the run fails instead of running again.
- waiting: a run may be told to wait before it starts (Runner.reason_to_wait, say a limit on
  runs at once); it stays pending with the reason, no attempt counted, until picked up again.
- steps: each is one transaction that first checks the lease (the fence: the row must still
  be at this worker's version, processing, with no cancel request) and last saves the
  progress counters and checkpoint with a version bump. A resumed run starts after the
  checkpoint; a cancel request is honoured at the next step boundary.
- status changes: one conditional UPDATE with an event each (`BackgroundRun.transition`).

What a run does (an import reads a CSV file) is the subclasses' business: this module knows
only the row and its lease. docs/csv-import.md, "Processing, resume and cancel" describes
what users see of it for imports.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

# A lease owner is "host:pid:token" (jobs.runner.worker_name).
LEASE_OWNER_MAX = 100
# A pending run with no task id is given this long for its task to be enqueued.
ENQUEUE_GRACE = timedelta(minutes=1)


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


class RunNotCancellable(Exception):
    def __init__(self, run: BackgroundRun):
        self.run = run
        super().__init__(f"This {run.noun} is already {run.status} and can no longer be cancelled.")


def actor_label(actor: Any) -> str:
    return actor.get_username() if actor is not None else "system"


class RunQuerySet(models.QuerySet):
    def stalled(self) -> RunQuerySet:
        """Runs left without a live task: processing ones whose worker died (lease expired),
        and pending ones without a task id (the broker was down when they were made, or a
        worker used their task up telling them to wait)."""
        now = timezone.now()
        return self.filter(
            Q(status=RunStatus.PROCESSING, lease_expires_at__lt=now)
            | Q(status=RunStatus.PENDING, task_id="", created_at__lt=now - ENQUEUE_GRACE)
        )


class BackgroundRun(models.Model):
    """The state of a run: status, lease, attempts, checkpoint, version, cancel request.

    A concrete run model sets `noun` (how messages name it) and implements `write_event`,
    `progress_label`, `checkpoint_label` and `announcement`; it may extend `status_changed`.
    """

    noun: ClassVar[str] = "run"

    status = models.CharField(
        max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING, db_index=True
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    checkpoint = models.PositiveIntegerField(default=0, help_text="Units of work durably done.")
    attempts = models.PositiveSmallIntegerField(default=0)
    # Bumped by every write of the run's worker and every status change: the fence.
    version = models.PositiveIntegerField(default=1)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancellation_reason = models.CharField(max_length=255, blank=True, default="")
    failure_message = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    # The worker holding the run ("host:pid:token") and until when; a worker renews the
    # lease with every step, so an expired lease means the worker died and another may resume.
    lease_owner = models.CharField(max_length=LEASE_OWNER_MAX, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Why the last worker to pick the pending run up did not start it; cleared when it starts.
    waiting_reason = models.CharField(max_length=255, blank=True, default="")

    objects = RunQuerySet.as_manager()

    class Meta:
        abstract = True

    # --- What a concrete run says about itself --------------------------------------
    def write_event(
        self, *, old_status: str, new_status: str, actor: Any, message: str, at: datetime
    ) -> None:
        """Record a status change (or a resume, or a cancel request) in the run's history."""
        raise NotImplementedError

    @property
    def progress_label(self) -> str:
        """How much is done, for messages: "120 rows"."""
        raise NotImplementedError

    @property
    def checkpoint_label(self) -> str:
        """Where the checkpoint stands, for messages: "row 121"."""
        raise NotImplementedError

    def announcement(self) -> str:
        """How a toast announces the finished run to the user who started it."""
        raise NotImplementedError

    def status_changed(self, *, old_status: str, new_status: str, actor: Any) -> None:
        """Called after a status change was committed: for signals and log lines."""

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(self._meta.app_label)

    @property
    def log_ids(self) -> dict[str, str]:
        return {f"{self.noun}_id": str(self.pk)}

    # --- State ------------------------------------------------------------------------
    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def lease_is_live(self) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > timezone.now()

    @property
    def can_cancel(self) -> bool:
        if self.status == RunStatus.PENDING:
            return True
        return self.status == RunStatus.PROCESSING and self.cancel_requested_at is None

    # --- Cancelling -----------------------------------------------------------------
    def request_cancel(self, *, actor: Any, reason: str = "") -> None:
        """Cancel a pending run at once; ask the worker to stop a processing one.

        The worker checks at every step and marks the run cancelled (committed steps stay).
        A processing run whose worker is gone (lease expired) is cancelled at once. Asking
        again while a cancel is pending is a no-op. Raises RunNotCancellable when the run
        has already finished.
        """
        reason = reason.strip()[: self._meta.get_field("cancellation_reason").max_length]
        for _ in range(5):  # the row may move under us (claimed, finished); re-read and retry
            self.refresh_from_db()
            if self.is_finished:
                raise RunNotCancellable(self)
            if self.status == RunStatus.PENDING or not self.lease_is_live:
                if self.transition(
                    RunStatus.CANCELLED,
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
                # request must not make the step in flight fail.
                now = timezone.now()
                requested = (
                    type(self)
                    ._default_manager.filter(
                        pk=self.pk, status=RunStatus.PROCESSING, cancel_requested_at__isnull=True
                    )
                    .update(cancel_requested_at=now, cancelled_by=actor, cancellation_reason=reason)
                )
                if requested:
                    self.write_event(
                        old_status=RunStatus.PROCESSING,
                        new_status=RunStatus.PROCESSING,
                        actor=actor,
                        message=_cancel_message(reason, requested=True),
                        at=now,
                    )
            if requested:
                self.refresh_from_db()
                self.logger.info(
                    "%s cancel requested: %s_id=%s actor=%s",
                    self.noun,
                    self.noun,
                    self.pk,
                    actor_label(actor),
                    extra={"event": f"{self.noun}_cancel_requested", **self.log_ids},
                )
                return
        raise RunNotCancellable(self)

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
        """Move the run to `new_status` with a conditional UPDATE; the one path for changes.

        Writes only if the row is still in one of `from_statuses` (and at `expected_version`
        when given), bumps the version, writes an event, then calls `status_changed`.
        Returns False (nothing written) when the row moved meanwhile.
        """
        rows = type(self)._default_manager
        conditions: dict[str, Any] = {"pk": self.pk}
        if from_statuses is not None:
            conditions["status__in"] = list(from_statuses)
        if expected_version is not None:
            conditions["version"] = expected_version
        now = timezone.now()
        if new_status in FINISHED_STATUSES:
            fields.setdefault("completed_at", now)
        with transaction.atomic():
            old_status = rows.filter(**conditions).values_list("status", flat=True).first()
            if old_status is None:
                return False
            conditions["status"] = old_status
            written = rows.filter(**conditions).update(
                status=new_status, version=F("version") + 1, updated_at=now, **fields
            )
            if not written:
                return False
            self.write_event(
                old_status=old_status, new_status=new_status, actor=actor, message=message, at=now
            )
            self.refresh_from_db()
        self.status_changed(old_status=old_status, new_status=new_status, actor=actor)
        return True


# How much of a message a run's history keeps.
RUN_EVENT_MESSAGE_MAX = 500


class RunEvent(models.Model):
    """One entry of a run's history (`BackgroundRun.write_event`): a status change, a
    resume, a cancel request. A concrete history adds the foreign key to its run."""

    old_status = models.CharField(max_length=20, blank=True, default="")
    new_status = models.CharField(max_length=20, choices=RunStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.CharField(max_length=RUN_EVENT_MESSAGE_MAX, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.old_status or '∅'} → {self.new_status}"


def _cancel_message(reason: str, *, requested: bool = False) -> str:
    text = (
        "Cancel requested; the worker stops after the current batch." if requested else "Cancelled."
    )
    return f"{text} Reason: {reason}" if reason else text


# --- Runs the live pages follow ---------------------------------------------------------


@dataclass(frozen=True)
class FollowedRuns:
    """A kind of background run the live pages follow (jobs.live): the run model, its run
    event model (a new event moves the change token) and the URL name of a run's page."""

    model: type[BackgroundRun]
    event_model: type[models.Model]
    page: str


FOLLOWED_RUNS: list[FollowedRuns] = []


def follow_runs(model: type[BackgroundRun], event_model: type[models.Model], page: str) -> None:
    """Let the live pages follow a kind of run: its status changes move their change token,
    and a user's finished run is announced to them. Each app registers its own in its
    AppConfig.ready (jobs: bulk runs; imports: imports), so that jobs knows nothing of imports."""
    kind = FollowedRuns(model, event_model, page)
    if kind not in FOLLOWED_RUNS:
        FOLLOWED_RUNS.append(kind)
