"""The job status rules (docs/jobs.md, "Status rules"): which moves are allowed, what each sets.

Every surface (edit form, bulk update, CSV import, admin, commands) goes through this module.
"""

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from jobs.models import Job


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


S = JobStatus
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.SCHEDULED, S.RUNNING, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.PENDING, S.RUNNING, S.CANCELLED}),
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.FAILED: frozenset({S.PENDING, S.CANCELLED}),
    S.CANCELLED: frozenset({S.PENDING}),
    S.COMPLETED: frozenset({S.PENDING}),
}

# The fields a status change may set; nothing else is touched by one.
STATUS_SIDE_EFFECT_FIELDS = (
    "started_at",
    "completed_at",
    "cancelled_at",
    "cancelled_by",
    "cancellation_reason",
)


class InvalidTransition(ValueError):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new
        super().__init__(f"A {old} job cannot be moved to {new}.")


def can_transition(old: str, new: str) -> bool:
    """Setting the current status again is allowed: it is idempotent."""
    return old == new or new in ALLOWED_TRANSITIONS.get(old, frozenset())


def next_statuses(current: str) -> list[str]:
    """The statuses a job in `current` may be set to, the current one first, in display order."""
    return [current] + [s for s in JobStatus.values if s in ALLOWED_TRANSITIONS[current]]


def can_cancel(current: str) -> bool:
    return S.CANCELLED in ALLOWED_TRANSITIONS.get(current, frozenset())


def creation_side_effects(
    status: str, *, actor: "AbstractBaseUser | None", at: datetime
) -> dict[str, object]:
    """The fields a job created in `status` gets besides it, as if it had just moved there.

    Every surface that creates jobs (Job.insert, so the admin too, and the CSV import) uses
    this, so a job created as running has started_at == created_at wherever it was made.
    """
    if status == S.RUNNING:
        return {"started_at": at}
    if status in (S.COMPLETED, S.FAILED):
        return {"completed_at": at}
    if status == S.CANCELLED:
        return {"cancelled_at": at, "cancelled_by": actor}
    return {}


def apply_status(
    job: "Job",
    new_status: str,
    *,
    actor: "AbstractBaseUser | None",
    at: datetime,
    reason: str = "",
) -> list[str]:
    """Move `job` to `new_status` in memory with its side effects; return the fields changed.

    Raises InvalidTransition when the table does not allow the move. Saving is the caller's job.
    """
    old_status = job.status
    if not can_transition(old_status, new_status):
        raise InvalidTransition(old_status, new_status)
    before = {name: getattr(job, name) for name in ("status", *STATUS_SIDE_EFFECT_FIELDS)}
    job.status = new_status
    if new_status != old_status:
        if new_status == S.RUNNING and job.started_at is None:
            job.started_at = at
        elif new_status in (S.COMPLETED, S.FAILED):
            job.completed_at = at
        elif new_status == S.CANCELLED:
            job.cancelled_at = at
            job.cancelled_by = actor
            job.cancellation_reason = reason
        elif new_status == S.PENDING:
            job.completed_at = None
            job.cancelled_at = None
            job.cancelled_by = None
            job.cancellation_reason = ""
    return [name for name, value in before.items() if getattr(job, name) != value]
