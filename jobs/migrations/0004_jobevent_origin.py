"""JobEvent.origin and origin_ref: the surface a change came from and, for an import or a bulk
change, which one (docs/jobs.md, "History").

Events written before this migration get an origin where it is known: an `imported` event
came from the import that created its job (the job's source_import, when that import still
exists). Every other earlier event keeps an empty origin, shown as unknown.
"""

from django.conf import settings
from django.db import migrations, models


def backfill_import_origins(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    JobEvent = apps.get_model("jobs", "JobEvent")
    imported = JobEvent.objects.filter(kind="imported")
    import_ids = (
        Job.objects.exclude(source_import=None)
        .order_by()
        .values_list("source_import_id", flat=True)
        .distinct()
    )
    for import_id in list(import_ids):
        imported.filter(job__source_import_id=import_id).update(
            origin="import", origin_ref=str(import_id)
        )
    imported.filter(origin="").update(origin="import")


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0003_job_search"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="jobevent",
            name="origin",
            field=models.CharField(
                blank=True,
                choices=[
                    ("ui", "Web page"),
                    ("admin", "Admin"),
                    ("cli", "Command line"),
                    ("api", "API"),
                    ("mcp", "MCP"),
                    ("import", "Import"),
                    ("bulk", "Bulk run"),
                ],
                default="",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="jobevent",
            name="origin_ref",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(backfill_import_origins, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="jobevent",
            index=models.Index(
                fields=["origin", "origin_ref", "job"], name="jobevent_origin_job_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="jobevent",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("origin__in", ["", "ui", "admin", "cli", "api", "mcp", "import", "bulk"])
                ),
                name="jobevent_origin_valid",
            ),
        ),
    ]
