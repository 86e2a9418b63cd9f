"""The imports tools of the MCP server (docs/agents.md): list the CSV imports, follow one
(progress, counts, its first row errors) and cancel it. Who may see and cancel an import is the
pages' rule (imports.views.may_view, may_cancel); the records are the JSON API's
(imports.api.ImportOut), with the same keyset cursor as its list."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from mcp.server.mcpserver import Context
from pydantic import Field

from imports.api import ImportErrorOut, ImportOut, ImportPage, import_out
from imports.models import ImportJob, ImportNotCancellable, ImportStatus
from imports.views import may_cancel, may_view
from jobs.api import cursor_for, cursor_position
from jobs.mcp_tools import (
    NOT_CANCELLABLE,
    NOT_FOUND,
    PERMISSION_DENIED,
    READ_ONLY,
    Toolbox,
    ToolFailure,
    acting_user,
    invalid,
    writes,
)
from jobs.paging import DEFAULT_LIMIT, MAX_LIMIT

# How many of an import's row errors get_import returns (in row order).
FIRST_ERRORS = 20

toolbox = Toolbox()


@toolbox.tool(title="List CSV imports", annotations=READ_ONLY)
def list_imports(
    ctx: Context,
    status: ImportStatus | None = None,
    mine: bool = False,
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> ImportPage:
    """CSV imports, newest first: status (pending, processing, completed, failed, cancelled),
    progress (0..1), row counts, who started it. `status` keeps one status; `mine` only your
    own imports (users without imports.view_importjob see only their own anyway). At most 100
    a page (`limit`, default 50); pass `next_cursor` as `cursor` for the next page (null: no
    more). Errors (isError true): VALIDATION_ERROR (a damaged cursor: start again without
    it), PERMISSION_DENIED, DB_ERROR with retryable true (retry after a moment).
    """
    user = acting_user(ctx)
    sees_all = user.has_perm("imports.view_importjob")
    if not sees_all and not user.has_perm("imports.add_importjob"):
        raise ToolFailure(
            PERMISSION_DENIED, "You need the permission imports.view_importjob for this."
        )
    imports = ImportJob.objects.select_related("created_by").order_by("-created_at", "-id")
    if status:
        imports = imports.filter(status=status)
    if mine or not sees_all:
        imports = imports.filter(created_by=user)
    if cursor:
        created_at, pk = _position(cursor)
        imports = imports.filter(created_at__lte=created_at).exclude(
            created_at=created_at, id__gte=pk
        )
    items = list(imports[: limit + 1])
    page, more = items[:limit], len(items) > limit
    return {
        "items": [import_out(import_job) for import_job in page],
        "next_cursor": cursor_for([page[-1].created_at.isoformat(), str(page[-1].pk)])
        if more
        else None,
    }


def _position(cursor: str) -> tuple[datetime, UUID]:
    """The (created_at, id) a list_imports cursor holds."""
    damaged = invalid({"cursor": ["The page cursor is not valid: start from the first page."]})
    try:
        head, tail = cursor_position(cursor)
        moment = datetime.fromisoformat(head)
        if moment.tzinfo is None:
            raise damaged
        return moment, UUID(tail)
    except ToolFailure:
        raise
    except Exception:  # an ApiError of jobs.api, or a position of the wrong shape
        raise damaged from None


class ImportDetail(ImportOut):
    first_errors: list[ImportErrorOut]


@toolbox.tool(title="Read one CSV import: progress, counts, first errors", annotations=READ_ONLY)
def get_import(ctx: Context, id: UUID) -> ImportDetail:
    """One import: status, progress (0..1), processed/created/updated/skipped/error counts,
    rows per second and time left while it runs, why it failed or waits, and its first 20 row
    errors (row, field, error type, message). Poll it while status is pending or processing.
    Errors (isError true): NOT_FOUND, PERMISSION_DENIED (someone else's import without
    imports.view_importjob), DB_ERROR with retryable true.
    """
    import_job = _import(id)
    if not may_view(acting_user(ctx), import_job):
        raise ToolFailure(
            PERMISSION_DENIED, "You need the permission imports.view_importjob for this."
        )
    return _detail(import_job)


def _import(import_id: UUID) -> ImportJob:
    import_job = (
        ImportJob.objects.select_related("created_by", "cancelled_by").filter(pk=import_id).first()
    )
    if import_job is None:
        raise ToolFailure(NOT_FOUND, f"No import with id {import_id}.")
    return import_job


def _detail(import_job: ImportJob) -> dict[str, Any]:
    errors = import_job.errors.order_by("row", "id")[:FIRST_ERRORS]
    return {
        **import_out(import_job),
        "first_errors": [
            {
                "row": error.row,
                "field": error.field,
                "error_type": error.error_type,
                "message": error.message,
                "raw_data": error.raw_data,
            }
            for error in errors
        ],
    }


@toolbox.tool(title="Cancel a CSV import", annotations=writes(idempotent=True))
def cancel_import(ctx: Context, id: UUID, reason: str = "") -> ImportDetail:
    """Cancel an import that has not finished, with an optional reason. A pending import is
    cancelled at once (status cancelled); a processing one stops after its current batch of
    rows (cancel_requested true; the rows already imported stay): poll get_import. Asking
    again while a cancel is pending changes nothing. Needs imports.change_importjob, or the
    import to be your own.
    Errors (isError true): NOT_CANCELLABLE (it already completed, failed or was cancelled),
    NOT_FOUND, PERMISSION_DENIED, DB_ERROR with retryable true (retry after a moment).
    """
    user = acting_user(ctx)
    import_job = _import(id)
    if not may_cancel(user, import_job):
        raise ToolFailure(
            PERMISSION_DENIED, "You need the permission imports.change_importjob for this."
        )
    try:
        import_job.request_cancel(actor=user, reason=reason)
    except ImportNotCancellable as refused:
        raise ToolFailure(NOT_CANCELLABLE, str(refused)) from None
    return _detail(_import(import_job.pk))
