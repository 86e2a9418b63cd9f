"""Checking an import's rows and planning what a batch of them turns into.

A row is checked with the job rules of `jobs.validation` (docs/csv-import.md, "Columns"),
its reference against the file's earlier rows and the existing jobs (docs/csv-import.md,
"Existing jobs"), and `plan_batch` sorts a batch into new jobs, updates, skips and errors.
Nothing here writes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from imports.intake import Header
from imports.models import ErrorType, OnExisting
from imports.reading import Record
from jobs import validation
from jobs.models import EDITABLE_FIELDS, Job, Printer
from jobs.status import STATUS_SIDE_EFFECT_FIELDS, JobStatus

TEXT_COLUMNS = (
    ("notes", validation.clean_notes),
    ("file_name", validation.clean_file_name),
)
REFERENCE_DIGEST_SIZE = 16
# Besides the editable fields and a status change's, what an update reads of a job.
UPDATE_READS = ("reference", "version", "updated_by")


@dataclass(slots=True)
class RowError:
    row: int
    field: str | None
    error_type: str
    message: str
    raw: str


@dataclass
class BatchPlan:
    """What one batch of records turns into."""

    creates: list[dict[str, Any]] = field(default_factory=list)  # clean values of new jobs
    updates: list[tuple[Job, dict[str, Any]]] = field(default_factory=list)
    skipped: int = 0
    error_rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    records: int = 0  # records consumed, including unparseable ones
    rows: int = 0  # data rows counted as processed
    new_keys: list[bytes] = field(default_factory=list)  # references first met in the batch


class RowValidator:
    """Applies docs/csv-import.md, "Columns" to one record, with the rules of jobs.validation."""

    def __init__(self, header: Header):
        self.positions = header.positions
        self.printers = {printer.name: printer for printer in Printer.objects.all()}
        self.printers_folded = {name.casefold(): p for name, p in self.printers.items()}
        self.printers_by_id = {printer.pk: printer for printer in self.printers.values()}

    def values(self, cells: list[str]) -> dict[str, str | None]:
        return {column: cells[index].strip() or None for column, index in self.positions.items()}

    def reference(self, cells: list[str]) -> str | None:
        index = self.positions.get("reference")
        return cells[index].strip() or None if index is not None else None

    def clean(
        self, values: dict[str, str | None], existing: Job | None
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The clean editable values of the row (for an update: only its columns) and errors."""
        clean: dict[str, Any] = {}
        errors: list[tuple[str, str]] = []

        def check(name: str, function: Any, *args: Any) -> Any:
            try:
                return function(*args)
            except ValidationError as exc:
                errors.append((name, exc.messages[0]))
                return None

        present = self.positions
        clean["name"] = check("name", validation.clean_name, values.get("name"))
        status = values.get("status")
        if status is not None:
            before = len(errors)
            status = check("status", validation.clean_status_name, status)
            if existing is not None and status is not None:
                check("status", validation.check_status, existing.status, status)
            if len(errors) == before:
                clean["status"] = status
        elif existing is None:
            clean["status"] = JobStatus.PENDING
        if existing is None or "priority" in present:
            clean["priority"] = check("priority", validation.clean_priority, values.get("priority"))
        is_business = existing.is_business if existing is not None else False
        if "is_business" in present:
            before = len(errors)
            parsed = check("is_business", validation.clean_yes_no, values["is_business"])
            if len(errors) == before:
                is_business = clean["is_business"] = parsed
        elif existing is None:
            clean["is_business"] = False
        if existing is None or "customer_name" in present or "is_business" in present:
            customer = (
                existing.customer_name
                if existing is not None and "customer_name" not in present
                else values.get("customer_name")
            )
            clean["customer_name"] = check(
                "customer_name", validation.clean_customer, is_business, customer
            )
        for column, clean_column in TEXT_COLUMNS:
            if existing is None or column in present:
                clean[column] = check(column, clean_column, values.get(column))
        if existing is None or "printer" in present:
            clean["printer"] = self._printer(values.get("printer"), existing, errors)
        return clean, errors

    def _printer(
        self, name: str | None, existing: Job | None, errors: list[tuple[str, str]]
    ) -> Printer | None:
        if name is None:
            return None
        printer = self.printers.get(name) or self.printers_folded.get(name.casefold())
        try:
            printer = validation.check_printer_found(printer, name)
            validation.check_printer_assignable(
                printer, existing.printer_id if existing is not None else None
            )
        except ValidationError as exc:
            errors.append(("printer", exc.messages[0]))
            return None
        return printer


def reference_key(reference: str) -> bytes:
    """A fixed-size digest of a reference, so remembering every reference of a file stays
    small however long they are."""
    return hashlib.blake2b(reference.encode(), digest_size=REFERENCE_DIGEST_SIZE).digest()


def plan_batch(
    batch: list[Record],
    *,
    validator: RowValidator,
    on_existing: str,
    seen_references: set[bytes],
    lock: bool,
) -> BatchPlan:
    """Check a batch and decide each row's fate; one query for the existing references.

    `seen_references` (the keys of every reference met so far in the file) gains the batch's
    new ones, listed in the plan's `new_keys` so a batch that is not committed can give them
    back. With `lock`, the existing jobs the batch matches are locked (select_for_update).
    """
    plan = BatchPlan(records=len(batch))
    candidates: list[tuple[Record, dict[str, str | None], str | None, bytes]] = []
    for record in batch:
        if record.cells is None:
            plan.rows += 1
            plan.error_rows += 1
            plan.errors.append(
                RowError(record.row, None, ErrorType.PARSE, record.parse_error, record.raw)
            )
            continue
        values = validator.values(record.cells)
        reference = values.get("reference")
        key = reference_key(reference) if reference is not None else b""
        candidates.append((record, values, reference, key))
    seen = seen_references
    wanted = {ref for _, _, ref, key in candidates if ref and key not in seen}
    existing: dict[str, Job] = {}
    if wanted:
        # Only what checking and writing an update read of a job, and all of it: its
        # canceller joined, its printer from the validator's (no query per job).
        query = (
            Job.objects.filter(reference__in=wanted)
            .only(*EDITABLE_FIELDS, *STATUS_SIDE_EFFECT_FIELDS, *UPDATE_READS)
            .select_related("cancelled_by")
        )
        if lock:
            query = query.select_for_update(of=("self",))
        for found in query:
            printer = validator.printers_by_id.get(found.printer_id)
            if printer is not None:
                found.printer = printer
            existing[found.reference] = found
    for record, values, reference, key in candidates:
        plan.rows += 1
        errors: list[tuple[str, str, str]] = []
        current = None
        if reference is not None:
            if key in seen:
                errors.append(
                    (
                        "reference",
                        ErrorType.DUPLICATE,
                        f"The reference “{reference}” appears earlier in this file.",
                    )
                )
            else:
                seen.add(key)
                plan.new_keys.append(key)
                try:
                    validation.clean_reference(reference)
                except ValidationError as exc:
                    errors.append(("reference", ErrorType.VALIDATION, exc.messages[0]))
                current = existing.get(reference)
        if current is not None and not errors:
            if on_existing == OnExisting.SKIP:
                plan.skipped += 1
                continue
            if on_existing == OnExisting.ERROR:
                errors.append(
                    (
                        "reference",
                        ErrorType.DUPLICATE,
                        f"A job with the reference “{reference}” already exists "
                        f"(job {current.pk}).",
                    )
                )
        clean, field_errors = validator.clean(values, current if not errors else None)
        errors += [(name, ErrorType.VALIDATION, message) for name, message in field_errors]
        if errors:
            plan.error_rows += 1
            raw = record.raw
            plan.errors += [
                RowError(record.row, name, kind, message, raw) for name, kind, message in errors
            ]
        elif current is None:
            clean["reference"] = reference
            plan.creates.append(clean)
        else:
            plan.updates.append((current, clean))
    return plan
