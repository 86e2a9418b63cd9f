"""The worker's side of a background run (jobs.runs): claim, steps behind the fence, endings.

`Runner.run_task(run_id)` is a whole task: claim the run (or leave it to the worker that
holds it), `work()` through it in steps, and end it completed, cancelled or failed.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs.runs import LEASE_OWNER_MAX, BackgroundRun, RunStatus


class LeaseLost(Exception):
    """Another worker took the run over (this one was presumed dead); stop quietly."""


class CancelRequested(Exception):
    """Someone asked to cancel the run; stop at this step boundary."""


class RunFailed(Exception):
    """The run cannot go on; str(exc) is the failure message users see."""


def worker_name() -> str:
    """A lease owner unique to this process and call: "host:pid:token"."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:LEASE_OWNER_MAX]


class Runner:
    """A worker's hold on one claimed run; a subclass says what the work is.

    The subclass sets `model` and `progress_fields` (the counters it keeps, the checkpoint
    among them), and implements `lease_seconds`, `max_attempts`, `work` and `summary`.
    `work()` goes through the run in steps (`with self.step(): ...`), keeping its counters
    in `self.progress`; it raises RunFailed(message) to fail the run with that message.
    Anything else escaping `work()` fails the run with `unexpected_failure` (the details go
    to the log), and CancelRequested or LeaseLost end it as they say.
    """

    model: ClassVar[type[BackgroundRun]]
    progress_fields: ClassVar[tuple[str, ...]] = ("checkpoint",)
    unexpected_failure: ClassVar[str] = (
        "The run stopped because of an unexpected error; the server log has the details."
    )

    def __init__(self, run: BackgroundRun):
        self.run = run
        self.version = run.version  # the version this worker last wrote
        self.progress = {name: getattr(run, name) for name in self.progress_fields}

    # --- What a subclass says -----------------------------------------------------------
    @classmethod
    def lease_seconds(cls) -> int:
        raise NotImplementedError

    @classmethod
    def max_attempts(cls) -> int:
        raise NotImplementedError

    def work(self) -> None:
        raise NotImplementedError

    def summary(self) -> str:
        """The message of the completed (or cancelled) run."""
        raise NotImplementedError

    @classmethod
    def reason_to_wait(cls, run: BackgroundRun) -> str | None:
        """Why the pending `run` must not start yet, for its page; None to start it.

        Asked inside the claim's transaction, with the run's row locked: a subclass that
        counts other runs locks what those have in common too, or two workers could both
        count the same free place."""
        return None

    def close(self) -> None:
        """Release what the work holds open (files); called before the run ends."""

    # --- The task -----------------------------------------------------------------------
    @classmethod
    def run_task(cls, run_id: Any) -> None:
        """The whole task: claim the run, work it to the end, or leave it to its owner."""
        run = cls.claim(run_id, worker_name())
        if run is not None:
            cls(run).execute()

    @classmethod
    def lease_until(cls) -> datetime:
        return timezone.now() + timedelta(seconds=cls.lease_seconds())

    @classmethod
    def claim(cls, run_id: Any, owner: str) -> BackgroundRun | None:
        """Take the run for this worker, or return None when it must not run here.

        Atomic (a locked read and conditional writes in one transaction), so two workers
        never hold one run: a live lease means its worker is still going. Every pickup
        counts an attempt; past `max_attempts()` the run fails instead of running again.
        A pending run with a `reason_to_wait()` stays pending with that reason and no
        attempt counted, and loses its task id (used up), so `stalled()` lists it again.
        """
        noun = cls.model.noun
        logger = logging.getLogger(cls.model._meta.app_label)
        with transaction.atomic():
            run = cls.model._default_manager.select_for_update().filter(pk=run_id).first()
            if run is None:
                logger.warning(f"{noun} not found", extra={f"{noun}_id": str(run_id)})
                return None
            if run.is_finished:
                return None
            if run.status == RunStatus.PROCESSING and run.lease_is_live:
                logger.info(
                    f"{noun} already being processed",
                    extra={**run.log_ids, "owner": run.lease_owner},
                )
                return None
            if run.cancel_requested_at is not None:
                run.transition(
                    RunStatus.CANCELLED,
                    actor=run.cancelled_by,
                    message=f"Cancelled after {run.progress_label}.",
                    expected_version=run.version,
                    cancelled_at=timezone.now(),
                    lease_owner="",
                    lease_expires_at=None,
                )
                return None
            if run.attempts >= cls.max_attempts():
                run.transition(
                    RunStatus.FAILED,
                    message=f"Gave up after {run.attempts} attempts.",
                    expected_version=run.version,
                    failure_message=(
                        f"The {noun} was stopped after {run.attempts} attempts: the worker "
                        "running it stopped unexpectedly each time (for example it ran out of "
                        f"memory or was restarted). {run.progress_label} were processed before "
                        "that and were kept."
                    ),
                    lease_owner="",
                    lease_expires_at=None,
                )
                return None
            if run.status == RunStatus.PENDING:
                reason = cls.reason_to_wait(run)
                if reason is not None:
                    cls.defer(run, reason)
                    return None
            attempt = run.attempts + 1
            fields = {
                "attempts": attempt,
                "lease_owner": owner,
                "lease_expires_at": cls.lease_until(),
                "started_at": run.started_at or timezone.now(),
                "waiting_reason": "",
            }
            if run.status == RunStatus.PENDING:
                run.transition(
                    RunStatus.PROCESSING,
                    message=f"Started (attempt {attempt}).",
                    expected_version=run.version,
                    **fields,
                )
            else:
                # Resuming after a dead worker is not a status change, but worth an event.
                now = timezone.now()
                cls.model._default_manager.filter(pk=run.pk).update(
                    version=F("version") + 1, updated_at=now, **fields
                )
                run.write_event(
                    old_status=RunStatus.PROCESSING,
                    new_status=RunStatus.PROCESSING,
                    actor=None,
                    message=(
                        f"Resumed after {run.checkpoint_label} (attempt {attempt}); "
                        "the previous worker stopped."
                    ),
                    at=now,
                )
                logger.info(
                    f"{noun} resumed",
                    extra={**run.log_ids, "checkpoint": run.checkpoint, "attempts": attempt},
                )
            run.refresh_from_db()
        return run

    @classmethod
    def defer(cls, run: BackgroundRun, reason: str) -> None:
        """Leave the pending run waiting with `reason`; its task is used up."""
        reason = reason[: cls.model._meta.get_field("waiting_reason").max_length]
        cls.model._default_manager.filter(pk=run.pk).update(
            waiting_reason=reason, task_id="", updated_at=timezone.now()
        )
        if reason != run.waiting_reason:  # not again at every pickup while it waits
            run.logger.info(
                f"{run.noun} waiting to start: {run.noun}_id={run.pk} reason={reason}",
                extra={**run.log_ids, "reason": reason},
            )

    def execute(self) -> None:
        """Work the claimed run and end it: completed, cancelled, failed, or left to the
        worker that took it over."""
        logger = self.run.logger
        try:
            try:
                self.work()
            except CancelRequested:
                self.finish_cancelled()
            else:
                self.complete()
        except LeaseLost:
            logger.warning(f"{self.run.noun} taken over by another worker", extra=self.run.log_ids)
        except RunFailed as exc:
            self.fail(str(exc))
        except Exception:
            logger.exception(f"{self.run.noun} crashed", extra=self.run.log_ids)
            self.fail(self.unexpected_failure)
        finally:
            self.close()

    # --- Steps ------------------------------------------------------------------------
    def fence(self) -> None:
        """Renew the lease, iff this worker still holds the run and no cancel is pending.

        Raises CancelRequested or LeaseLost otherwise.
        """
        rows = self.model._default_manager
        renewed = rows.filter(
            pk=self.run.pk,
            version=self.version,
            status=RunStatus.PROCESSING,
            cancel_requested_at__isnull=True,
        ).update(lease_expires_at=self.lease_until())
        if not renewed:
            current = rows.filter(pk=self.run.pk).values(
                "version", "status", "cancel_requested_at"
            )[0]
            if (
                current["version"] == self.version
                and current["status"] == RunStatus.PROCESSING
                and current["cancel_requested_at"] is not None
            ):
                raise CancelRequested
            raise LeaseLost

    @contextmanager
    def step(self, **fields: Any) -> Iterator[None]:
        """One step of the work, in one transaction: the fence first, and last the progress
        (with `fields`) saved with a version bump. When the step fails, nothing of it stays:
        not in the database, not in `self.progress`."""
        progress = dict(self.progress)
        try:
            with transaction.atomic():
                self.fence()
                yield
                self.model._default_manager.filter(pk=self.run.pk).update(
                    **self.progress, **fields, version=self.version + 1, updated_at=timezone.now()
                )
        except BaseException:
            self.progress = progress
            raise
        self.version += 1

    # --- Endings ----------------------------------------------------------------------
    def end(self, status: str, message: str, *, actor: Any = None, **fields: Any) -> bool:
        """Move the run to a finished `status` and release the lease, iff this worker
        still holds it; False when another worker took it over."""
        self.close()
        return self.run.transition(
            status,
            actor=actor,
            message=message,
            from_statuses=[RunStatus.PROCESSING],
            expected_version=self.version,
            lease_owner="",
            lease_expires_at=None,
            **fields,
        )

    def complete(self, **fields: Any) -> None:
        if not self.end(RunStatus.COMPLETED, self.summary(), **fields):
            raise LeaseLost

    def finish_cancelled(self) -> None:
        self.close()
        self.run.refresh_from_db()
        cancelled = self.end(
            RunStatus.CANCELLED,
            f"Cancelled at a batch boundary. {self.summary()}",
            actor=self.run.cancelled_by,
            cancelled_at=timezone.now(),
        )
        if not cancelled:
            raise LeaseLost

    def fail(self, message: str) -> None:
        if not self.end(RunStatus.FAILED, message, failure_message=message):
            self.run.logger.warning(
                f"{self.run.noun} could not be marked failed: another worker holds it",
                extra=self.run.log_ids,
            )
