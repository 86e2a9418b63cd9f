"""Bulk runs: one action on every job of a selection, in batches on the cluster
(docs/bulk-runs.md).

A selection is the jobs list's query string (filters and search syntax), or a list of ticked
jobs. `draft_bulk_run` checks a request and returns the unsaved run, `preview` says what it
would do, `start_bulk_run` saves and enqueues it. `run_bulk_run(run_id)` is the task: the
claim, lease, steps and attempts come from jobs.runner; the work is BulkRunner.work:

1. the snapshot: steps that note the selected jobs up to the highest job id at the run's
   making (`BulkRun.max_job_id`), one range of ids per step, cut in batches (BulkRunBatch
   rows of up to BULK_RUN_BATCH_SIZE ids);
2. the batches: each one transaction that locks its jobs, checks each again against the
   selection and the action's rule, changes the rest (version + 1, one JobEvent each, whose
   origin is "bulk" and origin_ref the run's id), records the skipped ones with their reason,
   and saves the counters and the checkpoint (the last job id done). It is set-based: the
   action's decision is made once per distinct state of the jobs (for a priority, per old
   priority), the jobs change in one UPDATE per distinct set of new values, and the events
   are written in one INSERT … SELECT per distinct change, the job ids passed as one
   parameter.

Once a batch commits, `jobs_changed` and `bulk_items_processed` (jobs.signals) are sent.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import BooleanField, Count, F, Func, Max, QuerySet, Sum
from django.http import QueryDict
from django.utils import timezone
from django_q.models import Schedule

from jobs import search
from jobs.csv_safety import formula_safe_csv_lines
from jobs.filters import POSITION_PARAMS, JobFilter
from jobs.models import (
    BulkAction,
    BulkRun,
    BulkRunBatch,
    BulkRunSkip,
    Job,
    JobEvent,
    Printer,
)
from jobs.runner import RunFailed, Runner
from jobs.runs import RunStatus
from jobs.signals import announce_changes, bulk_items_processed, send_when_committed
from jobs.status import InvalidTransition, JobStatus, can_cancel, can_transition
from jobs.validation import PRIORITY_MAX, PRIORITY_MIN

logger = logging.getLogger("jobs")

GONE = "No longer exists."
NO_LONGER_MATCHES = "No longer matches the filter."
# Job ids looked at by one snapshot step.
SNAPSHOT_RANGE = 50_000
# How long a batch's transaction should take: the run sizes its batches by the last one
# (BULK_RUN_BATCH_SIZE jobs at most, MIN_BATCH_SIZE at least).
BATCH_TARGET_MS = 200
MIN_BATCH_SIZE = 50
SAMPLE_SIZE = 10
# Jobs a run may name by id; more are selected by a filter.
MAX_JOB_IDS = 10_000
SKIPPED_CSV_HEADER = ("job_id", "name", "status", "reason")
CHANGED = "changed"
RESUME_SCHEDULE_NAME = "jobs-bulk-runs-resume-stalled"
UNEXPECTED_FAILURE = (
    "The bulk run stopped because of an unexpected error. Jobs changed before it stay "
    "changed; the server log has the details."
)


class Skip(NamedTuple):
    """Why a batch leaves a job as it is: `reason`, the report's sentence, and `code`, what
    `bulk_items_processed` counts it as: "gone", "no_longer_matches", "unchanged" (the job
    is already as the action would make it) or "not_allowed" (the status rules forbid it)."""

    code: str
    reason: str


SKIP_GONE = Skip("gone", GONE)
SKIP_NO_LONGER_MATCHES = Skip("no_longer_matches", NO_LONGER_MATCHES)


class BulkRunRefused(ValueError):
    """The request cannot become a run; `messages` say why, for the user."""

    def __init__(self, *messages: str):
        self.messages = list(messages)
        super().__init__(" ".join(messages))


# --- Making a run ---------------------------------------------------------------------------


def read_filter(query: str) -> JobFilter:
    """The jobs list's filter for `query`, without its sort and paging; BulkRunRefused when
    part of it cannot be read (a bulk change never falls back to "all jobs")."""
    params = QueryDict(query, mutable=True)
    for name in (*POSITION_PARAMS, "sort"):
        params.pop(name, None)
    filterset = JobFilter(params, queryset=Job.objects.all())
    if filterset.error_messages:
        raise BulkRunRefused(*filterset.error_messages)
    return filterset


def selection(run: BulkRun) -> QuerySet[Job]:
    """The jobs `run` selects now, by the filter's terms as of the run's making (an age
    such as `updated:<7d` counts from then), or by the ticked ids."""
    jobs = Job.objects.all()
    if run.job_ids is not None:
        jobs = jobs.filter(pk__in=run.job_ids)
    query = read_filter(run.query).search_query
    return search.apply(jobs, query, now=run.created_at).order_by()


def draft_bulk_run(
    *,
    action: str,
    actor: Any,
    origin: str,
    query: str = "",
    job_ids: Iterable[Any] | None = None,
    status: str = "",
    priority: Any = None,
    printer: str | Printer | None = None,
    reason: str = "",
) -> BulkRun:
    """The run this request asks for, checked and unsaved; BulkRunRefused when it cannot be.

    The selection is `query` (the list's query string; "" is every job), or the jobs
    `job_ids` when given. The action's value: `status` (set_status), `priority`
    (set_priority), `printer`, a name or a Printer (set_printer), `reason` (cancel).
    """
    if action not in BulkAction.values:
        choices = ", ".join(BulkAction.values)
        raise BulkRunRefused(f"The action must be one of: {choices}.")
    run = BulkRun(
        action=action,
        query=query.lstrip("?"),
        created_by=actor if getattr(actor, "pk", None) else None,
        origin=origin,
        created_at=timezone.now(),
        reason=(reason or "").strip()[:255] if action == BulkAction.CANCEL else "",
    )
    if action == BulkAction.SET_STATUS:
        if status not in JobStatus.values:
            raise BulkRunRefused(f"The status must be one of: {', '.join(JobStatus.values)}.")
        run.new_status = status
    elif action == BulkAction.SET_PRIORITY:
        run.new_priority = _priority(priority)
    elif action == BulkAction.SET_PRINTER:
        run.new_printer = _active_printer(printer)
    if job_ids is not None:
        run.job_ids = _ids(job_ids)
        run.query = ""
    read_filter(run.query)
    run.max_job_id = Job.objects.aggregate(last=Max("pk"))["last"] or 0
    return run


def _priority(value: Any) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        number = None
    if number is None or not PRIORITY_MIN <= number <= PRIORITY_MAX:
        raise BulkRunRefused(
            f"The priority must be a whole number from {PRIORITY_MIN} to {PRIORITY_MAX}."
        )
    return number


def _active_printer(printer: str | Printer | None) -> Printer:
    name = printer.name if isinstance(printer, Printer) else (printer or "").strip()
    if not name:
        raise BulkRunRefused("Choose the printer to assign.")
    found = Printer.objects.filter(name=name).first()
    if found is None:
        raise BulkRunRefused(f"No printer is called “{name}”.")
    if not found.is_active:
        raise BulkRunRefused(f"The printer “{name}” is not active; only active ones are assigned.")
    return found


def _ids(values: Iterable[Any]) -> list[int]:
    ids: set[int] = set()
    for value in values:
        text = str(value).strip()
        if not text.isdigit() or len(text) > 18 or int(text) == 0:
            raise BulkRunRefused(f"“{text[:20]}” is not a job id (a positive whole number).")
        ids.add(int(text))
    if not ids:
        raise BulkRunRefused("Select at least one job first.")
    if len(ids) > MAX_JOB_IDS:
        raise BulkRunRefused(
            f"{len(ids):,} jobs named by id; at most {MAX_JOB_IDS:,} are. Select them by a "
            "filter instead (“Select all matching”)."
        )
    return sorted(ids)


def start_bulk_run(run: BulkRun, *, enqueue: bool = True) -> BulkRun:
    """Save the drafted `run` pending, with its first event, and enqueue it once committed."""
    with transaction.atomic():
        run.save(force_insert=True)
        run.write_event(
            old_status="",
            new_status=RunStatus.PENDING,
            actor=run.created_by,
            message=f"Started from {run.get_origin_display()}: {run.action_label}, "
            f"selection {describe_selection(run)}.",
            at=run.created_at,
        )
        if enqueue:
            transaction.on_commit(lambda: enqueue_or_log(run))
    logger.info(
        "bulk run created: bulk_run_id=%s action=%s actor=%s origin=%s",
        run.pk,
        run.action,
        run.created_by,
        run.origin,
        extra={"event": "bulk_run_created", "bulk_run_id": str(run.pk)},
    )
    return run


def describe_selection(run: BulkRun) -> str:
    if run.job_ids is not None:
        return f"{len(run.job_ids)} ticked jobs"
    return f"“{run.query}”" if run.query else "every job"


def enqueue_bulk_run(run: BulkRun) -> str:
    from django_q.tasks import async_task

    task_id = async_task(
        "jobs.tasks.run_bulk_run_task",
        run.pk,
        task_name=f"bulk-run-{run.pk}-{timezone.now():%H%M%S%f}",
        group="bulk-runs",
    )
    BulkRun.objects.filter(pk=run.pk).update(task_id=task_id or "")
    run.task_id = task_id or ""
    return run.task_id


def enqueue_or_log(run: BulkRun) -> None:
    """If the broker is down, the run stays pending without a task id; the stalled-run
    sweep enqueues it later."""
    try:
        enqueue_bulk_run(run)
    except Exception:
        logger.exception("could not enqueue bulk run %s; the sweep will retry", run.pk)


# --- The action's rule --------------------------------------------------------------------


def refusal(run: BulkRun, job: Job) -> Skip | None:
    """Why the run's action leaves `job` as it is (the status rules, or nothing to change),
    or None when it changes the job."""
    status = job.status
    if run.action == BulkAction.SET_STATUS:
        if status == run.new_status:
            return Skip("unchanged", f"Already {JobStatus(status).label.lower()}.")
        if not can_transition(status, run.new_status):
            return Skip("not_allowed", str(InvalidTransition(status, run.new_status)))
    elif run.action == BulkAction.CANCEL:
        if status == JobStatus.CANCELLED:
            return Skip("unchanged", "Already cancelled.")
        if not can_cancel(status):
            return Skip("not_allowed", f"A {status} job cannot be cancelled.")
    elif run.action == BulkAction.RETRY_FAILED:
        if status != JobStatus.FAILED:
            return Skip("not_allowed", f"Not failed (the job is {status}).")
    elif run.action == BulkAction.SET_PRIORITY:
        if job.priority == run.new_priority:
            return Skip("unchanged", f"Already priority {run.new_priority}.")
    elif run.action == BulkAction.SET_PRINTER:
        if job.printer_id == run.new_printer_id:
            return Skip("unchanged", f"Already on printer {run.new_printer}.")
    return None


def changes_for(run: BulkRun) -> dict[str, Any]:
    """The fields the action sets on each job it changes."""
    if run.action == BulkAction.SET_STATUS:
        return {"status": run.new_status}
    if run.action == BulkAction.CANCEL:
        return {"status": JobStatus.CANCELLED}
    if run.action == BulkAction.RETRY_FAILED:
        return {"status": JobStatus.PENDING}
    if run.action == BulkAction.SET_PRIORITY:
        return {"priority": run.new_priority}
    return {"printer": run.new_printer}


# --- The confirmation -------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    count: int
    will_change: int
    skips: list[tuple[str, int]]  # (reason, how many), most first
    sample: list[Job]


def preview(run: BulkRun) -> Preview:
    """What the drafted `run` would do now: how many jobs it selects, a sample of them, and
    which it would skip and why (by the action's rule; the run checks each job again)."""
    jobs = selection(run).filter(pk__lte=run.max_job_id)
    reasons: Counter[str] = Counter()
    count = 0
    groups = jobs.values("status", "priority", "printer").annotate(n=Count("pk"))
    for group in groups.order_by():
        count += group["n"]
        example = Job(
            status=group["status"], priority=group["priority"], printer_id=group["printer"]
        )
        skip = refusal(run, example)
        if skip is not None:
            reasons[skip.reason] += group["n"]
    sample = list(
        jobs.select_related("printer").order_by("pk")[:SAMPLE_SIZE]  # the order of the run
    )
    skipped = sum(reasons.values())
    return Preview(count, count - skipped, reasons.most_common(), sample)


# --- The run -------------------------------------------------------------------------------


def run_bulk_run(run_id: Any) -> None:
    """The bulk run task: claim the run, work it to the end, or leave it to its owner."""
    BulkRunner.run_task(run_id)


class BulkRunner(Runner):
    """One claimed bulk run being worked by this worker."""

    model = BulkRun
    progress_fields = (
        "checkpoint",
        "snapshot_through",
        "snapshot_done",
        "total_count",
        "processed_count",
        "changed_count",
        "skipped_count",
        "skip_counts",
    )
    unexpected_failure = UNEXPECTED_FAILURE
    run: BulkRun

    def __init__(self, run: BulkRun):
        super().__init__(run)
        self.max_batch_size = max(settings.BULK_RUN_BATCH_SIZE, 1)
        self.batch_size = self.max_batch_size

    @classmethod
    def lease_seconds(cls) -> int:
        return settings.BULK_RUN_LEASE_SECONDS

    @classmethod
    def max_attempts(cls) -> int:
        return settings.BULK_RUN_MAX_ATTEMPTS

    def work(self) -> None:
        try:
            read_filter(self.run.query)
        except BulkRunRefused as refused:  # cannot happen to a drafted run; a hand-made one
            raise RunFailed(f"The filter cannot be read: {refused}") from None
        while not self.progress["snapshot_done"]:
            self.snapshot_step()
        while ids := self.next_ids():
            self.write_batch(ids)

    # The snapshot ------------------------------------------------------------------------
    def snapshot_step(self) -> None:
        """Note the selected jobs of the next range of ids, cut in batches; the last step
        counts them all. The jobs are read before the step's transaction, which writes only
        the batches (a few rows) and the progress."""
        low = self.progress["snapshot_through"]
        high = min(low + SNAPSHOT_RANGE, self.run.max_job_id)
        job_ids: list[int] = []
        if high > low:
            jobs = selection(self.run).filter(pk__gt=low, pk__lte=high).order_by("pk")
            job_ids = list(jobs.values_list("pk", flat=True))
        started = time.perf_counter()
        with self.step():
            BulkRunBatch.objects.bulk_create(
                BulkRunBatch(run=self.run, last_job_id=chunk[-1], job_ids=chunk, size=len(chunk))
                for chunk in chunks(job_ids, self.max_batch_size)
            )
            self.progress["snapshot_through"] = high
            if high >= self.run.max_job_id:
                self.progress["snapshot_done"] = True
                noted = BulkRunBatch.objects.filter(run=self.run).aggregate(jobs=Sum("size"))
                self.progress["total_count"] = noted["jobs"] or 0
        logger.debug(
            "bulk run snapshot step: bulk_run_id=%s ids=%s..%s jobs=%s transaction_ms=%.1f",
            self.run.pk,
            low,
            high,
            len(job_ids),
            (time.perf_counter() - started) * 1000,
        )

    # The batches -------------------------------------------------------------------------
    def next_ids(self) -> list[int]:
        """The next batch: up to `batch_size` job ids past the checkpoint, from the first
        noted batch that has any ([] when none is left)."""
        checkpoint = self.progress["checkpoint"]
        noted = BulkRunBatch.objects.filter(run=self.run, last_job_id__gt=checkpoint)
        job_ids = noted.order_by("last_job_id").values_list("job_ids", flat=True).first() or []
        return [job_id for job_id in job_ids if job_id > checkpoint][: self.batch_size]

    def write_batch(self, ids: list[int]) -> None:
        started = time.perf_counter()
        self.change_batch(ids)
        elapsed_ms = (time.perf_counter() - started) * 1000
        # The whole transaction, commit included (bench/bench_bulk_runs.py reads these).
        logger.debug(
            "bulk run batch: bulk_run_id=%s jobs=%s transaction_ms=%.1f",
            self.run.pk,
            len(ids),
            elapsed_ms,
        )
        self.batch_size = next_batch_size(
            self.batch_size, len(ids), elapsed_ms, self.max_batch_size
        )

    def change_batch(self, ids: list[int]) -> None:
        """One batch in one transaction: lock the jobs, check each again, change the rest,
        note the skipped ones, save the counters and the checkpoint; once it commits, send
        `jobs_changed` and `bulk_items_processed`."""
        run = self.run
        with self.step():
            if run.action == BulkAction.SET_PRINTER and not (
                Printer.objects.filter(pk=run.new_printer_id, is_active=True).exists()
            ):
                raise RunFailed(
                    f"The printer “{run.new_printer}” was deactivated during the run; it "
                    f"stopped there. {self.progress['changed_count']} jobs changed before "
                    "that stay changed."
                )
            plan = BatchPlan(run, at=timezone.now())
            locked = Job.objects.filter(AmongIds(ids)).select_for_update().order_by("pk")
            states = {pk: tuple(state) for pk, *state in locked.values_list("pk", *plan.fields)}
            still_selected = set(selection(run).filter(AmongIds(ids)).values_list("pk", flat=True))
            plan.read_related(states.values())
            for job_id in ids:
                state = states.get(job_id)
                if state is None:
                    plan.skip(job_id, SKIP_GONE)
                elif job_id not in still_selected:
                    plan.skip(job_id, SKIP_NO_LONGER_MATCHES)
                else:
                    plan.decide(job_id, state)
            write_changes(plan, actor=run.created_by, at=plan.at, origin_ref=str(run.pk))
            BulkRunSkip.objects.bulk_create(plan.skips)
            progress = self.progress
            progress["checkpoint"] = ids[-1]
            progress["processed_count"] += len(ids)
            progress["changed_count"] += plan.outcomes[CHANGED]
            progress["skipped_count"] += len(plan.skips)
            if plan.skips:
                counts = Counter(progress["skip_counts"])
                counts.update(skip.reason for skip in plan.skips)
                progress["skip_counts"] = dict(counts)  # a new dict: a failed step restores
            announce_changes(plan.transitions.elements(), surface=JobEvent.Origin.BULK)
            send_when_committed(bulk_items_processed, outcomes=plan.outcomes)

    def end(self, status: str, message: str, *, actor: Any = None, **fields: Any) -> bool:
        ended = super().end(status, message, actor=actor, **fields)
        if ended:
            forget_selection(self.run)
        return ended

    def summary(self) -> str:
        p = self.progress
        return (
            f"{p['processed_count']} jobs: {p['changed_count']} changed, "
            f"{p['skipped_count']} skipped."
        )


def next_batch_size(size: int, done: int, elapsed_ms: float, most: int) -> int:
    """The batch size after a batch of `done` jobs (of `size` asked) whose transaction took
    `elapsed_ms`: as many as that pace does in BATCH_TARGET_MS (a database slowed down by
    other work gets smaller transactions, not longer ones), growing at most twofold, between
    MIN_BATCH_SIZE and `most` (BULK_RUN_BATCH_SIZE)."""
    paced = int(done * BATCH_TARGET_MS / max(elapsed_ms, 1.0))
    return max(min(paced, size * 2, most), min(MIN_BATCH_SIZE, most))


def chunks(values: list[int], size: int) -> Iterator[list[int]]:
    for first in range(0, len(values), size):
        yield values[first : first + size]


def forget_selection(run: BulkRun) -> None:
    """Delete the noted selection of a run that ended (the report keeps the counts and the
    skipped jobs): a thousand rows for a million jobs, one statement."""
    BulkRunBatch.objects.filter(run=run).delete()


class AmongIds(Func):
    """`id IN (ids)` with the ids bound as one parameter: a PostgreSQL array, a JSON array
    read by SQLite's json_each. A batch's thousand ids cost one bind, not a thousand.

    On PostgreSQL the array is read through `ARRAY(SELECT unnest(…))`, which hides its
    length from the planner (as models.JobAmong does): with the ids in sight, and statistics
    that think a filter's status rare (after a large import, before ANALYZE), it preferred
    that status's index and filtered a million rows for two hundred ids (0.75 s)."""

    output_field = BooleanField()

    def __init__(self, ids: list[int]):
        super().__init__(F("pk"))
        self.ids = ids

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        pk, params = compiler.compile(self.get_source_expressions()[0])
        return f"{pk} IN (SELECT value FROM json_each(%s))", (*params, json.dumps(self.ids))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        pk, params = compiler.compile(self.get_source_expressions()[0])
        return f"{pk} = ANY(ARRAY(SELECT unnest(%s::bigint[])))", (*params, self.ids)


def rule_fields(action: str) -> tuple[str, ...]:
    """What the action's rule and changes read of a job (its status always: the signal's
    transitions), besides its id."""
    if action in (BulkAction.SET_STATUS, BulkAction.CANCEL, BulkAction.RETRY_FAILED):
        return ("status", *STATUS_SIDE_EFFECT_COLUMNS)
    if action == BulkAction.SET_PRINTER:
        return ("status", "printer_id")
    return ("status", "priority")


STATUS_SIDE_EFFECT_COLUMNS = (
    "started_at",
    "completed_at",
    "cancelled_at",
    "cancelled_by_id",
    "cancellation_reason",
)


class Decision(NamedTuple):
    """What the action does to a job in a given state: skip it, or set `new_values` and
    record the event (`kind`, `changes` as JSON text) of the (old, new) status `transition`."""

    skip: Skip | None
    new_values: tuple[tuple[str, Any], ...] = ()
    kind: str = ""
    changes: str = ""
    transition: tuple[str, str] = ("", "")


class BatchPlan:
    """A batch's jobs sorted into changes and skips. Jobs in the same state (the values of
    `rule_fields`) get the same decision, made once with the status rules and
    Job.assign_changes on a stand-in job: a priority change decides once per old priority."""

    def __init__(self, run: BulkRun, *, at: datetime):
        self.run = run
        self.at = at
        self.fields = rule_fields(run.action)
        self.decisions: dict[tuple[Any, ...], Decision] = {}
        self.printers: dict[int, Printer] = {}
        self.users: dict[int, Any] = {}
        # {new values: job ids} for the UPDATEs, {(kind, changes): job ids} for the events.
        self.updates: dict[tuple[tuple[str, Any], ...], list[int]] = defaultdict(list)
        self.events: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.skips: list[BulkRunSkip] = []
        self.outcomes: Counter[str] = Counter()
        self.transitions: Counter[tuple[str, str]] = Counter()

    def read_related(self, states: Iterable[tuple[Any, ...]]) -> None:
        """Read the printers and users the jobs' states name, once for the batch."""
        fields = self.fields
        if "printer_id" in fields:
            at = fields.index("printer_id")
            self.printers = Printer.objects.in_bulk({state[at] for state in states} - {None})
        if "cancelled_by_id" in fields:
            at = fields.index("cancelled_by_id")
            ids = {state[at] for state in states} - {None}
            self.users = {pk: get_user_model()(pk=pk) for pk in ids}

    def skip(self, job_id: int, skip: Skip) -> None:
        self.skips.append(BulkRunSkip(run=self.run, job_id=job_id, reason=skip.reason))
        self.outcomes[skip.code] += 1

    def decide(self, job_id: int, state: tuple[Any, ...]) -> None:
        decision = self.decisions.get(state)
        if decision is None:
            decision = self.decisions[state] = self.decision(state)
        if decision.skip is not None:
            self.skip(job_id, decision.skip)
            return
        self.updates[decision.new_values].append(job_id)
        self.events[decision.kind, decision.changes].append(job_id)
        self.outcomes[CHANGED] += 1
        self.transitions[decision.transition] += 1

    def decision(self, state: tuple[Any, ...]) -> Decision:
        job = Job(**dict(zip(self.fields, state, strict=True)))
        if job.printer_id in self.printers:
            job.printer = self.printers[job.printer_id]
        if job.cancelled_by_id in self.users:
            job.cancelled_by = self.users[job.cancelled_by_id]
        skip = refusal(self.run, job)
        if skip is not None:
            return Decision(skip)
        old_status = job.status
        touched, diff = job.assign_changes(
            changes_for(self.run), actor=self.run.created_by, at=self.at, reason=self.run.reason
        )
        kind, diff = job.event_record(diff)
        return Decision(
            None,
            new_values=tuple((name, getattr(job, name)) for name in sorted(touched)),
            kind=kind,
            changes=json.dumps(diff),
            transition=(old_status, job.status),
        )


def write_changes(plan: BatchPlan, *, actor: Any, at: datetime, origin_ref: str) -> None:
    """Write the batch's changes: one UPDATE per distinct set of new values (version + 1,
    `updated_at`, `updated_by`), and one JobEvent per changed job, one INSERT … SELECT per
    distinct change. The rows are locked (or SQLite's write lock is held)."""
    for new_values, job_ids in plan.updates.items():
        Job.objects.filter(AmongIds(job_ids)).update(
            **dict(new_values), updated_at=at, updated_by=actor, version=F("version") + 1
        )
    stamp = connection.ops.adapt_datetimefield_value(at)
    actor_id = getattr(actor, "pk", None)
    if connection.vendor == "postgresql":
        changes, ids = "%s::jsonb", "unnest(%s::bigint[]) AS ids(value)"
    else:
        changes, ids = "%s", "json_each(%s)"
    with connection.cursor() as cursor:
        for (kind, diff), job_ids in plan.events.items():
            cursor.execute(
                f"INSERT INTO {JobEvent._meta.db_table} (job_id, actor_id, kind, changes, "
                f"created_at, origin, origin_ref) SELECT value, %s, %s, {changes}, %s, %s, %s "
                f"FROM {ids}",
                (
                    actor_id,
                    kind,
                    diff,
                    stamp,
                    JobEvent.Origin.BULK,
                    origin_ref,
                    job_ids if connection.vendor == "postgresql" else json.dumps(job_ids),
                ),
            )


# --- The report -----------------------------------------------------------------------------


def skip_reasons(run: BulkRun) -> list[tuple[str, int]]:
    """The run's skipped jobs by reason, most first."""
    return Counter(run.skip_counts).most_common()


def skipped_csv_lines(run: BulkRun) -> Iterator[str]:
    """The skipped jobs with their reasons as CSV lines (formula-safe), in job id order."""
    return formula_safe_csv_lines(chain([SKIPPED_CSV_HEADER], _skipped_rows(run)))


def _skipped_rows(run: BulkRun) -> Iterator[tuple[Any, ...]]:
    skips = run.skips.order_by("job_id").values_list("job_id", "reason")
    chunk: list[tuple[int, str]] = []
    for skip in skips.iterator(chunk_size=2000):
        chunk.append(skip)
        if len(chunk) == 2000:
            yield from _with_jobs(chunk)
            chunk = []
    yield from _with_jobs(chunk)


def _with_jobs(chunk: list[tuple[int, str]]) -> Iterator[tuple[Any, ...]]:
    jobs = Job.objects.in_bulk([job_id for job_id, _ in chunk])
    for job_id, reason in chunk:
        job = jobs.get(job_id)
        yield (job_id, job.name if job else "", job.status if job else "", reason)


# --- Runs whose worker died -------------------------------------------------------------


def resume_stalled_bulk_runs() -> list[int]:
    """Re-enqueue runs left without a live task (the worker died, or the broker was down at
    their start); a schedule runs this every minute. The claim lets one worker run a run."""
    resumed = []
    for run in BulkRun.objects.stalled():
        enqueue_bulk_run(run)
        resumed.append(run.pk)
        logger.info(
            "stalled bulk run re-enqueued: bulk_run_id=%s status=%s",
            run.pk,
            run.status,
            extra={"bulk_run_id": str(run.pk)},
        )
    return resumed


def ensure_resume_schedule(schedule_model: type = Schedule, *, using: str = "default") -> None:
    """Keep one `jobs-bulk-runs-resume-stalled` schedule, every minute."""
    schedule_model.objects.using(using).update_or_create(
        name=RESUME_SCHEDULE_NAME,
        defaults={
            "func": "jobs.tasks.resume_stalled_bulk_runs_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
        create_defaults={
            "func": "jobs.tasks.resume_stalled_bulk_runs_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


# --- A run as the command, the API and MCP tools show it ------------------------------------


def run_as_json(run: BulkRun) -> dict[str, Any]:
    """The run's state, progress and report, as plain JSON data."""
    return {
        "id": run.pk,
        "status": run.status,
        "action": run.action,
        "action_label": run.action_label,
        "query": run.query,
        "job_ids": run.job_ids,
        "new_status": run.new_status or None,
        "new_priority": run.new_priority,
        "new_printer": run.new_printer.name if run.new_printer_id else None,
        "reason": run.reason,
        "created_by": run.created_by.get_username() if run.created_by_id else None,
        "origin": run.origin,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "completed_at": run.completed_at.isoformat() if run.completed_at else None,
        "max_job_id": run.max_job_id,
        "total_count": run.total_count,
        "processed_count": run.processed_count,
        "changed_count": run.changed_count,
        "skipped_count": run.skipped_count,
        "skipped_by_reason": dict(skip_reasons(run)),
        "progress": run.progress_percent,
        "rows_per_second": run.rows_per_second,
        "eta_seconds": run.eta_seconds,
        "attempts": run.attempts,
        "cancel_requested": run.cancel_requested_at is not None,
        "cancellation_reason": run.cancellation_reason,
        "failure_message": run.failure_message,
    }
