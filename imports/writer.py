"""Writing an import's jobs: new ones with multi-row INSERTs, existing ones through the
job's own rules. Both write one event per job, as every other surface does.

`insert_jobs(new_jobs, ...)` and `update_jobs(updates, ...)` take rows that `imports.rows`
has already checked, and return how many jobs they wrote. The caller holds the transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connection, models

from imports.models import ImportJob
from jobs.models import EDITABLE_FIELDS, Job, JobEvent, creation_diff
from jobs.status import creation_side_effects

# PostgreSQL's wire protocol counts a statement's parameters in 16 bits.
POSTGRESQL_MAX_PARAMS = 65535
# Clean values of these fields are what the database driver takes, as they are.
PASS_THROUGH = (models.CharField, models.TextField, models.IntegerField, models.BooleanField)


def insert_jobs(
    new_jobs: list[dict[str, Any]], *, actor: Any, at: datetime, source_import: ImportJob
) -> int:
    """Insert new jobs and their `imported` events; return how many.

    Each of `new_jobs` holds the clean editable values and the reference. A job gets the
    status side effects of jobs.status.creation_side_effects, `at` as its creation time, and
    the same values a save would write; the rows are already clean, so this skips the
    per-field preparation of Model.save and bulk_create, which is most of an import's time.
    """
    if not new_jobs:
        return 0
    given = {
        "created_by": actor,
        "updated_by": actor,
        "created_at": at,
        "updated_at": at,
        "source_import": source_import,
    }
    ids = _insert(
        Job,
        [
            {**values, **given, **creation_side_effects(values["status"], actor=actor, at=at)}
            for values in new_jobs
        ],
        returning=True,
    )
    kind = JobEvent.Kind.IMPORTED.value
    _insert(
        JobEvent,
        [
            {
                "job": job_id,
                "actor": actor,
                "kind": kind,
                "changes": creation_diff({name: values[name] for name in EDITABLE_FIELDS}),
                "created_at": at,
            }
            for job_id, values in zip(ids, new_jobs, strict=True)
        ],
    )
    return len(ids)


def update_jobs(updates: list[tuple[Job, dict[str, Any]]], *, actor: Any, at: datetime) -> int:
    """Apply rows to existing jobs (locked by the caller): the status through the status
    rules, one `updated` event each; return how many changed.

    A row that changes nothing writes nothing (the caller counts it as skipped).
    """
    changed_jobs: list[Job] = []
    events: list[JobEvent] = []
    fields: set[str] = set()
    for found, clean in updates:
        touched, diff = found.assign_changes(clean, actor=actor, at=at)
        if not diff:
            continue
        found.updated_at = at
        found.updated_by = actor
        found.version += 1
        fields.update(touched)
        changed_jobs.append(found)
        events.append(
            JobEvent(
                job=found, actor=actor, kind=JobEvent.Kind.UPDATED, changes=diff, created_at=at
            )
        )
    if changed_jobs:
        Job.objects.bulk_update(
            changed_jobs, [*sorted(fields), "updated_at", "updated_by", "version"]
        )
        JobEvent.objects.bulk_create(events)
    return len(changed_jobs)


# --- Multi-row INSERTs -------------------------------------------------------------------


def _insert(
    model: type[models.Model], rows: list[dict[str, Any]], *, returning: bool = False
) -> list[Any]:
    """INSERT `rows` into `model`'s table, every concrete field but the primary key; return
    the new keys with `returning`.

    A row maps field names to clean Python values (a relation: the object or its key); a
    field it leaves out gets its default.
    """
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    columns = [(field.name, field.get_default(), _to_db(field)) for field in fields]
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    per_statement = max(1, _max_query_params() // len(fields))
    ids: list[Any] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            sql = (
                f"INSERT INTO {quote(model._meta.db_table)} ({names}) "
                f"VALUES {', '.join([row_sql] * len(chunk))}"
            )
            params = []
            for row in chunk:
                for name, default, to_db in columns:
                    value = row.get(name, default)
                    params.append(value if to_db is None else to_db(value))
            if returning:
                cursor.execute(f"{sql} RETURNING {quote(model._meta.pk.column)}", params)
                ids += [found[0] for found in cursor.fetchall()]
            else:
                cursor.execute(sql, params)
    return ids


def _to_db(field: models.Field) -> Callable[[Any], Any] | None:
    """How a clean value of `field` becomes its database value; None when it is one already.

    Converting every value of every row through the field, as Model.save does, would take
    most of an import's time; the values that repeat (the batch's time, the uploader, the
    printers) are converted once each.
    """
    if isinstance(field, PASS_THROUGH) and not field.is_relation:
        return None
    if isinstance(field, models.JSONField):  # values are dicts: nothing to remember them by
        return lambda value: field.get_db_prep_save(value, connection)
    if field.is_relation:
        target = field.target_field

        def convert(value: Any) -> Any:
            if isinstance(value, models.Model):
                value = value.pk
            return target.get_db_prep_value(value, connection)
    else:

        def convert(value: Any) -> Any:
            return field.get_db_prep_save(value, connection)

    converted: dict[Any, Any] = {None: None}

    def remembered(value: Any) -> Any:
        try:
            return converted[value]
        except KeyError:
            converted[value] = result = convert(value)
            return result

    return remembered


def _max_query_params() -> int:
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    if connection.vendor == "postgresql":
        return POSTGRESQL_MAX_PARAMS
    return connection.features.max_query_params or 999
