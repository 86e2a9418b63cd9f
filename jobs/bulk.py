"""Atomic bulk status update (docs/bulk-status.md): the one implementation behind the list page,
the Django admin action and `manage.py bulk_update_status`.

Whatever `items` holds, `bulk_update_status` does not raise: it returns the JSON-serialisable
response, either `{"updated_count", "failed_count", "results"}` or a top-level
`{"error": {...}}`. Each event of a written batch records the caller's surface (`origin`) and
the batch's own id (`origin_ref`, the same for every job of the batch).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from jobs.models import Job, JobEvent
from jobs.signals import announce_changes
from jobs.status import STATUS_SIDE_EFFECT_FIELDS, InvalidTransition, JobStatus, apply_status

logger = logging.getLogger(__name__)

MAX_ITEMS = 100
# A request's JSON Schema, as the API and the MCP tool advertise it (docs/bulk-status.md).
# Advertised only: bulk_update_status checks requests itself, with the contract's own codes.
ITEMS_SCHEMA = {
    "type": "array",
    "maxItems": MAX_ITEMS,
    "items": {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "minimum": 1},
            "status": {"type": "string", "enum": JobStatus.values},
        },
        "required": ["id", "status"],
    },
}
# Larger ids cannot exist (BigAutoField) and would overflow the database driver.
MAX_ID = 2**63 - 1
# How long PostgreSQL waits for a row another transaction holds before answering DB_ERROR
# (retryable); SQLite's busy timeout plays the same part there.
POSTGRES_LOCK_TIMEOUT = "5s"

VALIDATION_ERROR = "VALIDATION_ERROR"
DB_ERROR = "DB_ERROR"
INTERNAL_ERROR = "INTERNAL_ERROR"
INVALID_ID = "INVALID_ID"
NOT_FOUND = "NOT_FOUND"
INVALID_STATUS = "INVALID_STATUS"
INVALID_TRANSITION = "INVALID_TRANSITION"
ROLLED_BACK = "ROLLED_BACK"

STATUS_LIST = ", ".join(JobStatus.values)
MESSAGES = {
    INVALID_ID: "The id must be a positive whole number.",
    INVALID_STATUS: f"The status must be exactly one of: {STATUS_LIST}.",
    ROLLED_BACK: "Not changed, because another item in this batch failed.",
    DB_ERROR: "The database is busy. Nothing was changed; please try again.",
    INTERNAL_ERROR: "Something went wrong on the server. Nothing was changed.",
}


def bulk_update_status(items: object, *, actor: Any, origin: str) -> dict[str, Any]:
    """Set the status of up to MAX_ITEMS jobs, all or nothing. `items` is a list of
    `{"id": int, "status": str}`; `actor` (a user or None for the system) and `origin` (the
    JobEvent.Origin of the caller's surface) are recorded."""
    if origin not in JobEvent.Origin.values:
        raise ValueError(f"Unknown origin {origin!r}.")  # a caller's mistake, not the user's
    request_error = _request_error(items)
    if request_error:
        _log("rejected", actor, origin, items, error=VALIDATION_ERROR)
        return _top_level_error(VALIDATION_ERROR, request_error, retryable=False)
    assert isinstance(items, list)
    if not items:
        _log("updated", actor, origin, items, failed_count=0)
        return {"updated_count": 0, "failed_count": 0, "results": []}
    ids = [_valid_id(item.get("id")) for item in items]
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{POSTGRES_LOCK_TIMEOUT}'")
            results, updated = _apply(items, ids, actor=actor, at=timezone.now(), origin=origin)
    except OperationalError as busy:
        # Busy/locked database, lost connection, lock timeout: the same call may succeed later.
        # An expected condition, so no traceback (it would reach the CLI's stderr).
        logger.warning("bulk status update: database busy: %s", busy)
        _log("failed", actor, origin, items, error=DB_ERROR)
        return _top_level_error(DB_ERROR, MESSAGES[DB_ERROR], retryable=True)
    except DatabaseError:
        logger.exception("bulk status update: database error")
        _log("failed", actor, origin, items, error=DB_ERROR)
        message = "The database refused the update. Nothing was changed."
        return _top_level_error(DB_ERROR, message, retryable=False)
    except Exception:
        logger.exception("bulk status update: unexpected error")
        _log("failed", actor, origin, items, error=INTERNAL_ERROR)
        return _top_level_error(INTERNAL_ERROR, MESSAGES[INTERNAL_ERROR], retryable=False)
    failed_count = 0 if updated else len(items)
    _log("updated" if updated else "rolled_back", actor, origin, items, failed_count=failed_count)
    return {
        "updated_count": len(items) if updated else 0,
        "failed_count": failed_count,
        "results": results,
    }


def _request_error(items: object) -> str:
    """The reason the request as a whole is refused, or "" when its items can be checked."""
    if not isinstance(items, list):
        return 'Send a list of {"id", "status"} objects.'
    if len(items) > MAX_ITEMS:
        return f"Too many items ({len(items)}): one batch takes at most {MAX_ITEMS} jobs."
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            return f'Item {position} is not an object with "id" and "status".'
    counts = Counter(_integer(item.get("id")) for item in items)
    repeated = sorted(id_ for id_, count in counts.items() if id_ is not None and count > 1)
    if repeated:
        listed = ", ".join(str(id_) for id_ in repeated)
        return f"Repeated ids: {listed}. Each job may appear only once in a batch."
    return ""


def _integer(value: object) -> int | None:
    """`value` as an int when it is one (booleans are not), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return None


def _valid_id(value: object) -> int | None:
    number = _integer(value)
    return number if number is not None and number > 0 else None


def _apply(
    items: list[dict[str, Any]], ids: list[int | None], *, actor: Any, at: datetime, origin: str
) -> tuple[list[dict[str, Any]], bool]:
    """Check every item against the locked rows; write them all only if every item passes.

    Returns the per-item results in input order and whether the batch was written.
    """
    wanted = [id_ for id_ in ids if id_ is not None and id_ <= MAX_ID]
    jobs: dict[int, Job] = {}
    if wanted:
        # Lock in id order so two concurrent batches cannot deadlock (PostgreSQL); on SQLite
        # the IMMEDIATE transaction already holds the write lock.
        locked = (
            Job.objects.select_related("cancelled_by")
            .select_for_update(of=("self",))
            .filter(pk__in=wanted)
            .order_by("pk")
        )
        jobs = {job.pk: job for job in locked}

    errors: list[tuple[str, str] | None] = []
    changed: list[tuple[Job, str, list[str]]] = []
    for item, id_ in zip(items, ids, strict=True):
        status = item.get("status")
        job = jobs.get(id_) if id_ is not None else None
        if id_ is None:
            errors.append((INVALID_ID, MESSAGES[INVALID_ID]))
        elif job is None:
            errors.append((NOT_FOUND, f"No job with id {id_}."))
        elif not isinstance(status, str) or status not in JobStatus.values:
            errors.append((INVALID_STATUS, MESSAGES[INVALID_STATUS]))
        else:
            old_status = job.status
            try:
                fields = apply_status(job, status, actor=actor, at=at)
            except InvalidTransition as refused:
                errors.append((INVALID_TRANSITION, str(refused)))
            else:
                errors.append(None)
                changed.append((job, old_status, fields))

    if any(errors):
        results = [
            _result(item, error or (ROLLED_BACK, MESSAGES[ROLLED_BACK]))
            for item, error in zip(items, errors, strict=True)
        ]
        return results, False

    _write(changed, actor=actor, at=at, origin=origin)
    return [_result(item, None) for item in items], True


def _write(
    changed: list[tuple[Job, str, list[str]]], *, actor: Any, at: datetime, origin: str
) -> None:
    """Write the batch stamped `at` and named by a new id: one INSERT for the events and one
    UPDATE per distinct set of new values. A batch usually needs one or two UPDATEs (say
    "running, started_at set" and "running, started_at kept"), never one per job; the
    CASE-per-row statement of QuerySet.bulk_update costs far more to build."""
    groups: dict[tuple[tuple[str, Any], ...], list[int]] = defaultdict(list)
    batch = str(uuid.uuid4())
    events = []
    for job, old_status, touched in changed:
        assert set(touched) <= {"status", *STATUS_SIDE_EFFECT_FIELDS}
        new_values = tuple((name, getattr(job, name)) for name in sorted({"status", *touched}))
        groups[new_values].append(job.pk)
        job.updated_at = at
        job.updated_by = actor
        job.version += 1
        is_cancel = job.status == JobStatus.CANCELLED and old_status != JobStatus.CANCELLED
        events.append(
            JobEvent(
                job=job,
                actor=actor,
                kind=JobEvent.Kind.CANCELLED if is_cancel else JobEvent.Kind.STATUS_CHANGED,
                changes={"status": [old_status, job.status]},
                created_at=at,
                origin=origin,
                origin_ref=batch,
            )
        )
    for new_values, pks in groups.items():
        # The rows are locked (or the SQLite write lock is held) since they were read.
        Job.objects.filter(pk__in=pks).update(
            **dict(new_values), updated_at=at, updated_by=actor, version=F("version") + 1
        )
    JobEvent.objects.bulk_create(events)
    announce_changes(((old_status, job.status) for job, old_status, _ in changed), surface=origin)


def _result(item: dict[str, Any], error: tuple[str, str] | None) -> dict[str, Any]:
    result: dict[str, Any] = {"id": _echo(item.get("id")), "success": error is None}
    if error is not None:
        result["error"] = {"code": error[0], "message": error[1]}
    return result


def _echo(value: object) -> Any:
    """The caller's id as given when it is plain JSON data, else None: the response must
    always serialise as standard JSON."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def _top_level_error(code: str, message: str, *, retryable: bool) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "retryable": retryable}}


def _log(outcome: str, actor: Any, origin: str, items: object, **fields: Any) -> None:
    """One structured line per call: who, from where, which ids, what happened."""
    size = len(items) if isinstance(items, list) else None
    shown = items[: MAX_ITEMS + 1] if isinstance(items, list) else []
    ids = [_echo(item.get("id")) for item in shown if isinstance(item, dict)]
    actor_name = actor.get_username() if actor is not None else "system"
    details = " ".join(f"{key}={value}" for key, value in fields.items())
    logger.info(
        "bulk status update %s: actor=%s origin=%s items=%s ids=%s %s",
        outcome,
        actor_name,
        origin,
        size,
        ids,
        details,
        extra={
            "event": "bulk_status_update",
            "outcome": outcome,
            "actor": actor_name,
            "origin": origin,
            "items": size,
            "ids": ids,
            **fields,
        },
    )
