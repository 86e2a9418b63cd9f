"""A bulk run notes its selection as batches of job ids (BulkRunBatch: one row per batch of
up to BULK_RUN_BATCH_SIZE jobs) instead of one BulkRunItem row per job. The selection of a
run that has not finished is carried over, so it resumes where it was."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

UNFINISHED = ("pending", "processing")


def items_to_batches(apps, schema_editor):
    BulkRun = apps.get_model("jobs", "BulkRun")
    BulkRunItem = apps.get_model("jobs", "BulkRunItem")
    BulkRunBatch = apps.get_model("jobs", "BulkRunBatch")
    size = max(settings.BULK_RUN_BATCH_SIZE, 1)
    runs = BulkRun.objects.filter(status__in=UNFINISHED).values_list("pk", "checkpoint")
    for run_id, checkpoint in runs:
        items = BulkRunItem.objects.filter(run_id=run_id, job_id__gt=checkpoint)
        job_ids = list(items.order_by("job_id").values_list("job_id", flat=True))
        batches = []
        for first in range(0, len(job_ids), size):
            chunk = job_ids[first : first + size]
            batches.append(
                BulkRunBatch(run_id=run_id, last_job_id=chunk[-1], job_ids=chunk, size=len(chunk))
            )
        BulkRunBatch.objects.bulk_create(batches)


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0007_search_index_merging"),
    ]

    operations = [
        migrations.CreateModel(
            name="BulkRunBatch",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "run",
                        "last_job_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("last_job_id", models.BigIntegerField()),
                ("job_ids", models.JSONField()),
                ("size", models.PositiveIntegerField()),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="jobs.bulkrun",
                    ),
                ),
            ],
        ),
        migrations.RunPython(items_to_batches, migrations.RunPython.noop),
        migrations.DeleteModel(
            name="BulkRunItem",
        ),
    ]
