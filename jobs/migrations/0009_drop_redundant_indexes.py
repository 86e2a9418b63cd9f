"""Drop the single-column indexes on jobs' status, priority, updated_at and printer: the
composite indexes of Job.Meta lead with each of them and serve the same queries, and every
index more is one more B-tree each write of a job keeps (an import, a bulk run).

By SQL rather than AlterField: on SQLite, AlterField of the printer foreign key rebuilds the
jobs table, and with it would go the triggers that keep the text-search index (jobs 0003).
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

# (index, its column), as Django named them for db_index=True (both databases);
# PostgreSQL also had a varchar_pattern_ops twin of the status index.
INDEXES = [
    ("jobs_job_status_383f1641", "status"),
    ("jobs_job_priority_376129b2", "priority"),
    ("jobs_job_updated_at_e43e4acc", "updated_at"),
    ("jobs_job_printer_id_8edf6a30", "printer_id"),
]


def drop_sql(vendor_twin: bool) -> list[str]:
    sql = [f'DROP INDEX IF EXISTS "{name}"' for name, _ in INDEXES]
    return [*sql, 'DROP INDEX IF EXISTS "jobs_job_status_383f1641_like"'] if vendor_twin else sql


def create_sql() -> list[str]:
    return [f'CREATE INDEX "{name}" ON "jobs_job" ("{column}")' for name, column in INDEXES]


def forwards(apps, schema_editor) -> None:
    for statement in drop_sql(schema_editor.connection.vendor == "postgresql"):
        schema_editor.execute(statement)


def backwards(apps, schema_editor) -> None:
    for statement in create_sql():
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0008_bulk_run_batches"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards)],
            state_operations=[
                migrations.AlterField(
                    model_name="job",
                    name="printer",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="jobs",
                        to="jobs.printer",
                    ),
                ),
                migrations.AlterField(
                    model_name="job",
                    name="priority",
                    field=models.PositiveSmallIntegerField(default=0),
                ),
                migrations.AlterField(
                    model_name="job",
                    name="status",
                    field=models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("scheduled", "Scheduled"),
                            ("running", "Running"),
                            ("completed", "Completed"),
                            ("failed", "Failed"),
                            ("cancelled", "Cancelled"),
                        ],
                        default="pending",
                        max_length=20,
                    ),
                ),
                migrations.AlterField(
                    model_name="job",
                    name="updated_at",
                    field=models.DateTimeField(default=django.utils.timezone.now),
                ),
            ],
        ),
    ]
