"""Writing an import's jobs, one batch at a time, in the caller's transaction.

`insert_jobs(new_jobs, ...)` and `update_jobs(updates, ...)` take rows that `imports.rows`
has already checked, write one event per job they write (as every other surface does, with
the import as its origin), and return how many jobs they wrote. A batch takes a few
statements, whatever its size:

- new jobs and their `imported` events: on PostgreSQL with COPY (the new keys are drawn
  from the job table's sequence first, so that each event can name its job), elsewhere with
  multi-row INSERTs;
- changed jobs: each change is worked out by the job's own rules (`Job.assign_changes`: the
  status through jobs.status with its side effects, and the event diff), then a single
  UPDATE writes them all, checking and raising each job's version: on PostgreSQL from a
  temporary table filled with COPY, elsewhere one prepared statement run for every row
  (executemany). Their `updated` events are written like the new jobs'.

Like every other write of job history, each announces its jobs' status transitions
(`jobs.signals.jobs_changed`, surface `import`) once the caller's transaction commits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, models

from imports.models import ImportJob
from jobs.models import EDITABLE_FIELDS, Job, JobEvent, creation_diff
from jobs.signals import announce_changes
from jobs.status import STATUS_SIDE_EFFECT_FIELDS, creation_side_effects

# PostgreSQL's wire protocol counts a statement's parameters in 16 bits.
POSTGRESQL_MAX_PARAMS = 65535
# Clean values of these fields are what the database driver takes, as they are.
PASS_THROUGH = (models.CharField, models.TextField, models.IntegerField, models.BooleanField)
# What an update writes: every field an import row or a status change can set, and the
# edit's own record. Writing all of them for every changed job keeps a batch to one
# statement; the jobs are locked, so the fields that did not change go back as they were.
UPDATE_FIELDS = (*EDITABLE_FIELDS, *STATUS_SIDE_EFFECT_FIELDS, "updated_at", "updated_by")
JOB_TABLE = Job._meta.db_table
CHANGES_TABLE = "import_job_changes"
IMPORT_SURFACE = JobEvent.Origin.IMPORT.value


class JobChangedMeanwhile(IntegrityError):
    """A job's version moved between the batch's read and its write: someone changed it
    after the import planned the batch, which it does before the batch's transaction.

    The batch is rolled back and, like any other write conflict of an import, planned again
    from fresh data, inside the transaction with its jobs locked.
    """


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
    ids = _insert(
        Job,
        [
            {**values, **creation_side_effects(values["status"], actor=actor, at=at)}
            for values in new_jobs
        ],
        same={
            "created_by": actor,
            "updated_by": actor,
            "created_at": at,
            "updated_at": at,
            "source_import": source_import,
        },
        returning=True,
    )
    # A generator: on PostgreSQL each event's diff is worked out while the database takes in
    # the ones before it.
    _insert(
        JobEvent,
        (
            {
                "job": job_id,
                "changes": creation_diff({name: values[name] for name in EDITABLE_FIELDS}),
            }
            for job_id, values in zip(ids, new_jobs, strict=True)
        ),
        same={
            "actor": actor,
            "kind": JobEvent.Kind.IMPORTED.value,
            "created_at": at,
            **_origin(source_import),
        },
    )
    announce_changes((("", values["status"]) for values in new_jobs), surface=IMPORT_SURFACE)
    return len(ids)


def update_jobs(
    updates: list[tuple[Job, dict[str, Any]]],
    *,
    actor: Any,
    at: datetime,
    source_import: ImportJob,
) -> int:
    """Apply rows to existing jobs (locked by the caller): the status through the status
    rules, one `updated` event each, the version up by one; return how many changed.

    A row that changes nothing writes nothing (the caller counts it as skipped).
    """
    changed: dict[tuple[str, ...], list[Job]] = {}  # by the fields they change
    events: list[dict[str, Any]] = []
    transitions: list[tuple[str, str]] = []
    actor_id = actor.pk if actor is not None else None
    for job, clean in updates:
        touched, diff = job.assign_changes(clean, actor=actor, at=at)
        if not diff:
            continue
        if job.updated_by_id != actor_id:
            touched.append("updated_by")
        job.updated_by = actor
        job.updated_at = at
        changed.setdefault(tuple(sorted(touched)), []).append(job)
        events.append({"job": job.pk, "changes": diff})
        transitions.append((diff.get("status", [job.status])[0], job.status))
    if not events:
        return 0
    written = _update_versioned(changed)
    if written != len(events):
        raise JobChangedMeanwhile(
            f"{len(events) - written} of {len(events)} jobs changed while being imported."
        )
    for jobs in changed.values():
        for job in jobs:
            job.version += 1
    _insert(
        JobEvent,
        events,
        same={
            "actor": actor,
            "kind": JobEvent.Kind.UPDATED.value,
            "created_at": at,
            **_origin(source_import),
        },
    )
    announce_changes(transitions, surface=IMPORT_SURFACE)
    return len(events)


def _origin(source_import: ImportJob) -> dict[str, str]:
    """An import's events name it as their origin (docs/jobs.md, "History")."""
    return {"origin": IMPORT_SURFACE, "origin_ref": str(source_import.pk)}


# --- Statements --------------------------------------------------------------------------


def _update_versioned(changed: dict[tuple[str, ...], list[Job]]) -> int:
    """Write the changed fields of the jobs, each where it still has the version it was
    read with, and raise that version by one; return how many jobs were written.

    `changed` groups the jobs by the fields they change (`updated_at` aside). PostgreSQL
    writes a whole new row version whatever an UPDATE sets, so one statement writes every
    UPDATE_FIELDS of them all. SQLite does the work of every column an UPDATE sets, changed
    or not (its index entries, the search index's triggers, a foreign key's check), so each
    group gets a statement that sets its own fields: a handful per batch, as the rows of one
    file tend to change the same columns.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            jobs = [job for group in changed.values() for job in group]
            return _update_from_copy(cursor, jobs, UPDATE_FIELDS)
        written = 0
        for touched, jobs in changed.items():
            fields, rows = _update_rows(jobs, (*touched, "updated_at"))
            assignments = ", ".join(f"{column} = %s" for column in fields)
            cursor.executemany(
                f"UPDATE {JOB_TABLE} SET {assignments}, version = version + 1 "
                "WHERE id = %s AND version = %s",
                [(*values, key, version) for key, version, *values in rows],
            )
            written += cursor.rowcount
        return written


def _update_from_copy(cursor: Any, jobs: list[Job], names: tuple[str, ...]) -> int:
    """PostgreSQL: COPY the jobs' new values into a temporary table, then one UPDATE … FROM."""
    columns, rows = _update_rows(jobs, names)
    # The temporary table lives until the transaction ends; dropping it first keeps a second
    # batch in the same transaction (as in tests) from finding the first one's rows.
    cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{CHANGES_TABLE}")
    cursor.execute(
        f"CREATE TEMPORARY TABLE {CHANGES_TABLE} ON COMMIT DROP AS "
        f"SELECT id, version, {', '.join(columns)} FROM {JOB_TABLE} WITH NO DATA"
    )
    _copy(cursor, CHANGES_TABLE, ["id", "version", *columns], rows)
    assignments = ", ".join(f"{column} = changes.{column}" for column in columns)
    cursor.execute(
        f"UPDATE {JOB_TABLE} AS job SET {assignments}, version = job.version + 1 "
        f"FROM {CHANGES_TABLE} AS changes "
        "WHERE job.id = changes.id AND job.version = changes.version"
    )
    return cursor.rowcount


def _update_rows(jobs: list[Job], names: tuple[str, ...]) -> tuple[list[str], list[tuple]]:
    """The quoted columns of fields `names`, and per job (key, version, *database values)."""
    fields = [Job._meta.get_field(name) for name in names]
    converters = [_to_db(field) for field in fields]
    rows = []
    for job in jobs:
        values = [getattr(job, field.attname) for field in fields]
        rows.append(
            (
                job.pk,
                job.version,
                *[
                    value if to_db is None else to_db(value)
                    for value, to_db in zip(values, converters, strict=True)
                ],
            )
        )
    quote = connection.ops.quote_name
    return [quote(field.column) for field in fields], rows


def _insert(
    model: type[models.Model],
    rows: Iterable[dict[str, Any]],
    *,
    same: dict[str, Any],
    returning: bool = False,
) -> list[Any]:
    """INSERT `rows` into `model`'s table, every concrete field but the primary key; return
    the new keys with `returning` (which needs `rows` as a list).

    A row maps field names to clean Python values (a relation: the object or its key); `same`
    holds the values every row shares, converted once; a field neither gives gets its default.
    On PostgreSQL the rows are converted as COPY sends them, so the database is already
    writing the first rows while the last ones are being made.
    """
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    per_row = [
        (field.name, field.get_default(), _to_db(field))
        for field in fields
        if field.name not in same
    ]
    shared = [field for field in fields if field.name in same]
    shared_values = []
    for field in shared:
        to_db = _to_db(field)
        value = same[field.name]
        shared_values.append(value if to_db is None else to_db(value))

    def database_rows() -> Iterator[list[Any]]:
        for row in rows:
            found = [row.get(name, default) for name, default, _ in per_row]
            yield [
                value if to_db is None else to_db(value)
                for value, (_, _, to_db) in zip(found, per_row, strict=True)
            ] + shared_values

    quote = connection.ops.quote_name
    table = model._meta.db_table
    pk_column = model._meta.pk.column
    names = [quote(model._meta.get_field(name).column) for name, _, _ in per_row]
    names += [quote(field.column) for field in shared]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            return _insert_statements(
                cursor, quote(table), names, list(database_rows()), quote(pk_column), returning
            )
        if not returning:
            _copy(cursor, quote(table), names, database_rows())
            return []
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, pk_column, len(rows)],
        )
        ids = [found[0] for found in cursor.fetchall()]
        _copy(
            cursor,
            quote(table),
            [quote(pk_column), *names],
            ([new_id, *row] for new_id, row in zip(ids, database_rows(), strict=True)),
        )
        return ids


def _insert_statements(
    cursor: Any, table: str, names: list[str], rows: list[list[Any]], pk: str, returning: bool
) -> list[Any]:
    """Multi-row INSERTs of as many rows as the database takes parameters for."""
    row_sql = "(" + ", ".join(["%s"] * len(names)) + ")"
    per_statement = max(1, _max_query_params() // len(names))
    ids: list[Any] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES {', '.join([row_sql] * len(chunk))}"
        params = [value for row in chunk for value in row]
        if returning:
            cursor.execute(f"{sql} RETURNING {pk}", params)
            ids += [found[0] for found in cursor.fetchall()]
        else:
            cursor.execute(sql, params)
    return ids


def _copy(cursor: Any, table: str, names: list[str], rows: Iterable[list[Any]]) -> None:
    """COPY `rows` into `table` (PostgreSQL): no statement to parse per row or per value.

    The driver's cursor does it; its errors are made Django's, as a statement's would be
    (a duplicate reference is an IntegrityError the import plans its batch again for).
    """
    with connection.wrap_database_errors:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _to_db(field: models.Field) -> Callable[[Any], Any] | None:
    """How a clean value of `field` becomes its database value; None when it is one already.

    Converting every value of every row through the field, as Model.save does, would take
    most of an import's time; the values that repeat (the batch's time, the uploader, the
    printers) are converted once each.
    """
    if isinstance(field, PASS_THROUGH) and not field.is_relation:
        return None
    if isinstance(field, models.JSONField):  # values are dicts: nothing to remember them by
        return lambda value: connection.ops.adapt_json_value(value, field.encoder)
    if field.is_relation:
        target = field.target_field
        if isinstance(target, PASS_THROUGH):  # an integer key, as the driver takes it
            return lambda value: value.pk if isinstance(value, models.Model) else value

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
