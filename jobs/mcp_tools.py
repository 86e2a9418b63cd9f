"""The jobs tools of the MCP server (docs/agents.md): find jobs with the list's search syntax and
cursor pages, read one with its history, edit and cancel it behind its version, and the atomic
bulk status change of docs/bulk-status.md. Every write goes through the domain code
(Job.apply_changes / cancel, jobs.bulk) with the origin "mcp"; the records are the JSON API's
(jobs.api), so an agent and a program see the same fields.

What every app's tools share lives here too, as the API's shared parts live in jobs/api.py:
`Toolbox` (an app's tools, with the guard every call runs in), `acting_user` (whom a call acts
as), `ToolFailure` (an error answer). jobsite/mcp.py puts the apps' toolboxes on one server.
Adding a tool is one function under `@toolbox.tool(...)`: its docstring is what the agent reads.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, OperationalError, close_old_connections
from django.http import QueryDict
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError, WithJsonSchema

from jobs import bulk, bulk_runs
from jobs.api import BulkOut, EventOut, JobOut, JobPage, JobPatch, form_errors, job_out, job_rows
from jobs.bulk_runs_api import BulkRunOut, bulk_run_out
from jobs.filters import SORT_FIELDS, JobFilter
from jobs.forms import CANCELLATION_REASON_MAX, JobForm
from jobs.models import (
    EDITABLE_FIELDS,
    BulkAction,
    BulkRun,
    Job,
    JobEvent,
    NotCancellable,
    VersionConflict,
)
from jobs.paging import DEFAULT_LIMIT, DEFAULT_SORT, MAX_LIMIT, InvalidCursor, paginate, parse_sort
from jobs.status import InvalidTransition, JobStatus
from jobs.validation import clean_text

logger = logging.getLogger(__name__)

# Error codes of the tools besides the bulk contract's (VALIDATION_ERROR, DB_ERROR,
# INTERNAL_ERROR of jobs.bulk), as the API names them.
NOT_FOUND = "NOT_FOUND"
PERMISSION_DENIED = "PERMISSION_DENIED"
VERSION_CONFLICT = "VERSION_CONFLICT"
NOT_CANCELLABLE = "NOT_CANCELLABLE"

# How many of a job's latest events get_job returns.
HISTORY_SHOWN = 10

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


def writes(*, idempotent: bool) -> ToolAnnotations:
    """The hints of a tool that changes stored records (overwriting values: destructive)."""
    return ToolAnnotations(
        read_only_hint=False,
        destructive_hint=True,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


# --- What every app's tools share ---------------------------------------------------------


class ToolFailure(Exception):
    """An error answer: a tool result with isError and `{"error": {code, message, retryable,
    ...}}` as its structured content (and, as text, the same JSON)."""

    def __init__(self, code: str, message: str, *, retryable: bool = False, **details: Any):
        super().__init__(message)
        self.error = {"code": code, "message": message, "retryable": retryable, **details}

    def result(self) -> CallToolResult:
        return error_result({"error": self.error})


def error_result(body: dict[str, Any]) -> CallToolResult:
    """`body` as a tool result with isError: the agent reads it, nothing was written."""
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(body, indent=2))],
        structured_content=body,
        is_error=True,
    )


def acting_user(ctx: Context) -> Any:
    """The user a call acts as, read afresh (their permissions may have changed).

    The transport's session puts the user's id in the context under "user_id": the stdio
    server its --user for the whole session (jobsite/mcp.py); an HTTP transport would put
    the API token's user there for each request, and the tools would not change.
    """
    user_id = ctx.request_context.lifespan_context["user_id"]
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ToolFailure(PERMISSION_DENIED, "The server's user no longer exists or is inactive.")
    return user


def require_perm(user: Any, perm: str) -> None:
    if not user.has_perm(perm):
        raise ToolFailure(PERMISSION_DENIED, f"You need the permission {perm} for this.")


_Tool = TypeVar("_Tool", bound=Callable[..., Any])


class AgentTool(Tool):
    """A tool whose arguments of the wrong type (say an id "abc") are answered as every other
    error is, a VALIDATION_ERROR naming each argument, rather than as the SDK's text."""

    async def run(
        self, arguments: dict[str, Any], context: Any, convert_result: bool = False
    ) -> Any:
        try:
            self.fn_metadata.validate_arguments(arguments)
        except ValidationError as error:
            errors: dict[str, list[str]] = {}
            for problem in error.errors():
                name = ".".join(str(part) for part in problem["loc"]) or "arguments"
                errors.setdefault(name, []).append(problem["msg"])
            return invalid(errors).result()
        return await super().run(arguments, context, convert_result)


class Toolbox:
    """The tools of one app, for jobsite/mcp.py to put on its server."""

    def __init__(self) -> None:
        self.tools: list[Tool] = []

    def tool(self, *, title: str, annotations: ToolAnnotations) -> Callable[[_Tool], _Tool]:
        """Offer the decorated function as a tool: its name, its docstring as the description,
        its parameters as the input schema and its return type as the output schema. It runs
        in a worker thread as a request would (fresh database connections), and every failure
        becomes an error answer (`_guarded`)."""

        def add(fn: _Tool) -> _Tool:
            self.tools.append(
                AgentTool.from_function(
                    _guarded(fn),
                    name=fn.__name__,
                    title=title,
                    description=inspect.cleandoc(fn.__doc__ or ""),
                    annotations=annotations,
                )
            )
            return fn

        return add


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` answering a ToolFailure, a busy database or a crash as an error result: never a
    traceback, never the driver's "database is locked", to the agent."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        except ToolFailure as failure:
            logger.info("MCP tool %s refused: %s", fn.__name__, failure.error["code"])
            return failure.result()
        except OperationalError as busy:
            # Locked or busy database, lock timeout, dropped connection: worth a retry.
            logger.warning("MCP tool %s: database busy: %s", fn.__name__, busy)
            error = ToolFailure(bulk.DB_ERROR, bulk.MESSAGES[bulk.DB_ERROR], retryable=True)
            return error.result()
        except DatabaseError:
            logger.exception("MCP tool %s: database error", fn.__name__)
            message = "The database refused the request. Nothing was changed."
            return ToolFailure(bulk.DB_ERROR, message).result()
        except Exception:
            logger.exception("MCP tool %s: unexpected error", fn.__name__)
            message = bulk.MESSAGES[bulk.INTERNAL_ERROR]
            return ToolFailure(bulk.INTERNAL_ERROR, message).result()
        finally:
            close_old_connections()

    return call


def invalid(errors: dict[str, list[str]]) -> ToolFailure:
    """A VALIDATION_ERROR naming the fields and what is wrong with each."""
    return ToolFailure(
        bulk.VALIDATION_ERROR, f"Invalid value in: {', '.join(errors)}.", errors=errors
    )


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its `$defs` written in place, to stand inside another
    schema (a `$ref` would point into the wrong document)."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items() if key != "$defs"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


# --- The tools ----------------------------------------------------------------------------

toolbox = Toolbox()

UPDATES_SCHEMA = {
    **bulk.ITEMS_SCHEMA,
    "description": f"Up to {bulk.MAX_ITEMS} {{id, status}} objects, each job at most once.",
}


@toolbox.tool(
    title="Set the status of up to 100 jobs, all or nothing",
    annotations=writes(idempotent=False),
)
def bulk_update_job_status(
    ctx: Context,
    # Advertised, not enforced here: the contract's own checks answer with its codes.
    updates: Annotated[Any, WithJsonSchema(UPDATES_SCHEMA)],
) -> BulkOut:
    """Set the status of up to 100 jobs in one transaction: either every job moves, or none does
    and each item says why.

    `updates` is a list of {"id": <job id>, "status": <status>}, statuses exactly as written:
    pending, scheduled, running, completed, failed, cancelled. The move must be allowed by the
    status rules (e.g. a completed job cannot go back to running); setting the status a job
    already has is allowed. Needs the jobs.change_job permission.

    Success: {"updated_count": n, "failed_count": 0, "results": [{"id", "success": true}]} in
    input order; every job gets one history event of this batch, with one timestamp.
    Per-item failure (isError true, nothing written): "results" gives each item's code:
    INVALID_ID (not a whole number > 0), NOT_FOUND, INVALID_STATUS, INVALID_TRANSITION, and
    ROLLED_BACK for the items that were fine. Fix those items and send the batch again.
    Request errors (isError true, nothing written): {"error": {"code", "message",
    "retryable"}} with VALIDATION_ERROR (not a list, more than 100 items, an item that is not
    an object, a repeated id: do not retry as is), DB_ERROR (retryable true: the database was
    busy, retry the same call after a moment; false: do not retry), INTERNAL_ERROR,
    PERMISSION_DENIED.
    """
    user = acting_user(ctx)
    require_perm(user, "jobs.change_job")
    result = bulk.bulk_update_status(updates, actor=user, origin=JobEvent.Origin.MCP)
    if "error" in result or result["failed_count"]:
        return error_result(result)
    # As given: the contract's results have no "error" member on success (BulkOut would
    # write one as null).
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(result, indent=2))],
        structured_content=result,
    )


@toolbox.tool(title="Search jobs", annotations=READ_ONLY)
def search_jobs(
    ctx: Context,
    query: str = "",
    status: list[JobStatus] | None = None,
    sort: str = DEFAULT_SORT,
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> JobPage:
    """Find jobs: one page of the jobs list, newest change first by default.

    `query` is the list's search syntax: free words and "exact phrases" match name, customer,
    reference and file name; keys narrow it, e.g. `status:running,failed printer:"Prusa 1"
    priority:>=5 updated:<7d customer:acme -status:cancelled has:reference origin:mcp`.
    `status` keeps only jobs in those statuses. `sort` is one of name, status, priority,
    customer, created, updated (a leading - for descending). At most 100 jobs a page
    (`limit`, default 50); pass the answer's `next_cursor` as `cursor` for the next page
    (null: no more), with the same query and sort. Each job has its `version` (update_job
    needs it).
    Errors (isError true): VALIDATION_ERROR for a query that cannot be read, an unknown sort
    or a damaged cursor (the message says which; do not retry as is), PERMISSION_DENIED,
    DB_ERROR with retryable true (retry after a moment).
    """
    require_perm(acting_user(ctx), "jobs.view_job")
    if sort.removeprefix("-") not in SORT_FIELDS:
        raise invalid({"sort": [f"Use one of {', '.join(SORT_FIELDS)}, with - for descending."]})
    params = QueryDict(mutable=True)
    params["q"] = query
    params["sort"] = sort
    params.setlist("status", [str(value) for value in status or []])
    filterset = JobFilter(params, queryset=Job.objects.all())
    if filterset.error_messages:
        errors = filterset.errors_by_parameter(search="query")
        raise ToolFailure(bulk.VALIDATION_ERROR, " ".join(filterset.error_messages), errors=errors)
    try:
        # As the API's list: the page walks the sort's index, its rows are read by id; as the
        # list page, several statuses are walked one at a time (JobFilter.parts).
        key_only = filterset.qs.only("id", parse_sort(sort, Job).name)
        page = paginate(key_only, sort=sort, cursor=cursor, limit=limit, parts=filterset.parts)
    except InvalidCursor as error:
        raise invalid({"cursor": [str(error)]}) from None
    return {"items": job_rows([job.pk for job in page.items]), "next_cursor": page.next_cursor}


class JobDetail(JobOut):
    history: list[EventOut]


@toolbox.tool(title="Read one job with its latest history", annotations=READ_ONLY)
def get_job(ctx: Context, id: int) -> JobDetail:
    """One job: every field, its `version` (update_job and cancel_job need it) and its latest
    10 history events, newest first (what changed, by whom, from where: origin ui, api, mcp,
    cli, admin, import, bulk).
    Errors (isError true): NOT_FOUND, PERMISSION_DENIED, DB_ERROR with retryable true.
    """
    require_perm(acting_user(ctx), "jobs.view_job")
    return detail(find_job(id))


def find_job(job_id: int) -> Job:
    job = None
    if 0 < job_id <= bulk.MAX_ID:
        job = Job.objects.with_related().filter(pk=job_id).first()
    if job is None:
        raise ToolFailure(NOT_FOUND, f"No job with id {job_id}.")
    return job


def detail(job: Job) -> dict[str, Any]:
    events = job.events.select_related("actor").order_by("-id")[:HISTORY_SHOWN]
    history = [
        {
            "id": event.pk,
            "kind": event.kind,
            "changes": event.changes,
            "actor": event.actor_label if event.actor else None,
            "origin": event.origin,
            "origin_ref": event.origin_ref,
            "created_at": event.created_at,
        }
        for event in events
    ]
    return {**job_out(job), "history": history}


CHANGES_SCHEMA = inline_refs(JobPatch.model_json_schema()) | {
    "description": "Only the fields to change; the others keep their values.",
    "minProperties": 1,
}


@toolbox.tool(title="Edit one job", annotations=writes(idempotent=True))
def update_job(
    ctx: Context,
    id: int,
    version: int,
    changes: Annotated[dict[str, Any], WithJsonSchema(CHANGES_SCHEMA)],
) -> JobDetail:
    """Change some editable fields of one job, if nobody changed it since you read it.

    `version` is the job's version as you last read it (get_job, search_jobs). `changes` holds
    only the fields to change: name (required, at most 200 characters), status, priority
    (0..10), is_business,
    customer_name, notes, file_name, printer (an active printer's id, or null for none). A
    status change must be allowed by the status rules. A change that changes nothing writes
    nothing. Needs jobs.change_job. Answers the job as now stored, with its new version.
    Errors (isError true, nothing written): VERSION_CONFLICT when the job changed since
    `version`: the error names who changed which fields and holds the `current` job; read it,
    decide whether your change still applies, and send it with the current version.
    VALIDATION_ERROR with `errors` per field (fix the values; do not retry as is), NOT_FOUND,
    PERMISSION_DENIED, DB_ERROR (retryable true: retry after a moment).
    """
    user = acting_user(ctx)
    require_perm(user, "jobs.change_job")
    job = find_job(id)
    if job.version != version:
        raise version_conflict(job, version)
    try:
        patch = JobPatch.model_validate(changes).model_dump(exclude_unset=True)
    except ValidationError as error:
        errors: dict[str, list[str]] = {}
        for problem in error.errors():
            name = str(problem["loc"][0]) if problem["loc"] else "changes"
            message = "Not an editable field." if problem["type"] == "extra_forbidden" else None
            errors.setdefault(name, []).append(message or problem["msg"])
        raise invalid(errors) from None
    if not patch:
        raise invalid({"changes": ["Name at least one field to change."]})
    values: dict[str, Any] = {name: getattr(job, name) for name in EDITABLE_FIELDS}
    values["printer"] = job.printer_id
    values.update(patch)
    data = {name: value for name, value in values.items() if value is not None}
    form = JobForm({**data, "version": version}, instance=job)
    if not form.is_valid():
        raise invalid(form_errors(form))
    try:
        job.apply_changes(
            form.changes(), actor=user, origin=JobEvent.Origin.MCP, expected_version=version
        )
    except VersionConflict:
        raise version_conflict(job, version) from None
    except InvalidTransition as error:
        raise invalid({"status": [str(error)]}) from None
    return detail(find_job(job.pk))


@toolbox.tool(title="Cancel one job", annotations=writes(idempotent=True))
def cancel_job(ctx: Context, id: int, reason: str = "", version: int | None = None) -> JobDetail:
    """Cancel one job whose status allows it (pending, scheduled, running or failed), with an
    optional reason (at most 255 characters) kept in its history. With `version`, the cancel
    is refused if the job changed since you read it. Needs jobs.change_job. Answers the
    cancelled job.
    Errors (isError true, nothing written): NOT_CANCELLABLE (the job is completed or
    cancelled), VERSION_CONFLICT (as update_job), VALIDATION_ERROR (the
    reason), NOT_FOUND, PERMISSION_DENIED, DB_ERROR (retryable true: retry after a moment).
    """
    user = acting_user(ctx)
    require_perm(user, "jobs.change_job")
    job = find_job(id)
    if version is not None and job.version != version:
        raise version_conflict(job, version)
    try:
        reason = clean_text(
            reason, label="Reason", max_length=CANCELLATION_REASON_MAX, multiline=True
        )
    except DjangoValidationError as error:
        raise invalid({"reason": list(error.messages)}) from None
    try:
        job.cancel(actor=user, origin=JobEvent.Origin.MCP, reason=reason, expected_version=version)
    except NotCancellable as refused:
        raise ToolFailure(NOT_CANCELLABLE, str(refused)) from None
    except VersionConflict:
        raise version_conflict(job, job.version if version is None else version) from None
    return detail(find_job(job.pk))


def version_conflict(job: Job, version: int) -> ToolFailure:
    """VERSION_CONFLICT: who changed which fields since `version`, and the job as it is now.

    Every write adds one to the version and one history event, so the events since `version`
    are the newest (current version - version) ones."""
    latest = find_job(job.pk)
    missed = max(latest.version - version, 0)
    events = list(latest.events.select_related("actor").order_by("-id")[: min(missed, 20)])
    changes = [
        {
            "by": event.actor_label,
            "at": event.created_at.isoformat(),
            "origin": event.origin,
            "fields": sorted(event.changes),
        }
        for event in reversed(events)
    ]
    if changes:
        said = "; ".join(
            f"{change['by']} changed {', '.join(change['fields']) or 'nothing'}"
            for change in changes
        )
        what = f"changed since version {version}: {said}"
    else:
        what = f"is at version {latest.version}, not {version}"
    return ToolFailure(
        VERSION_CONFLICT,
        f"Job {latest.pk} {what}. Nothing was written; it is now version {latest.version}: "
        "check the current values and send your change again with that version.",
        current=json.loads(JobOut(**job_out(latest)).model_dump_json()),
        changes=changes,
    )


# --- Bulk runs: docs/bulk-runs.md ---------------------------------------------------------


@toolbox.tool(
    title="Start a bulk run on every job a filter selects", annotations=writes(idempotent=False)
)
def start_bulk_run(
    ctx: Context,
    action: BulkAction,
    filter: str = "",
    job_ids: list[int] | None = None,
    status: JobStatus | None = None,
    priority: Annotated[int, Field(ge=0, le=10)] | None = None,
    printer: str | None = None,
    reason: str = "",
) -> BulkRunOut:
    """Apply one action to every job a filter selects, any number of them, in batches on the
    cluster; answers at once with the run (status pending): follow it with get_bulk_run.

    `action`: set_status (with `status`; each job by the status rules), cancel (with an
    optional `reason`), set_priority (with `priority`, 0..10), set_printer (with `printer`,
    an active printer's name), retry_failed (failed jobs back to pending).
    `filter` is the jobs list's query string, e.g. `q=status:failed printer:"Prusa 1"` or
    `status=pending&priority=3` ("" selects every job); or give `job_ids` instead. The run
    works on the jobs that match when it starts (up to the highest job id then); a job that
    no longer matches when its batch reaches it, or that the action may not change (say a
    completed job to running), is skipped and the report says why. Every change is one
    history event with origin "bulk" and the run's id. Needs jobs.change_job.
    Errors (isError true, nothing started): VALIDATION_ERROR (a filter that cannot be read, a
    missing or wrong value: the message says which; do not retry as is), PERMISSION_DENIED,
    DB_ERROR with retryable true (retry after a moment).
    """
    user = acting_user(ctx)
    require_perm(user, "jobs.change_job")
    try:
        run = bulk_runs.draft_bulk_run(
            actor=user,
            origin=JobEvent.Origin.MCP,
            action=action,
            query=filter,
            job_ids=job_ids,
            status=status or "",
            priority=priority,
            printer=printer,
            reason=reason,
        )
    except bulk_runs.BulkRunRefused as refused:
        raise ToolFailure(
            bulk.VALIDATION_ERROR, str(refused), errors={"request": refused.messages}
        ) from None
    bulk_runs.start_bulk_run(run)
    return bulk_run_out(run)


@toolbox.tool(title="Read a bulk run: progress and report", annotations=READ_ONLY)
def get_bulk_run(ctx: Context, id: int) -> BulkRunOut:
    """A bulk run started by start_bulk_run (or on the list page, the command or the API):
    `status` (pending, processing, completed, failed, cancelled), `total_count` (the jobs
    selected, known once the run has noted them), `processed_count`, `changed_count`,
    `skipped_count`, `skipped_by_reason` ({reason: count}), `progress` (percent),
    `rows_per_second`, `eta_seconds`, and `failure_message` when it failed. Poll it every few
    seconds until the status is completed, failed or cancelled.
    Errors (isError true): NOT_FOUND, PERMISSION_DENIED, DB_ERROR with retryable true.
    """
    require_perm(acting_user(ctx), "jobs.view_job")
    run = BulkRun.objects.filter(pk=id).first() if 0 < id <= bulk.MAX_ID else None
    if run is None:
        raise ToolFailure(NOT_FOUND, f"No bulk run with id {id}.")
    return bulk_run_out(run)
