from django.db import migrations
from django.utils import timezone

NAME = "imports-resume-stalled"


def add_schedule(apps, schema_editor):
    # The ORM broker re-delivers a killed worker's task by itself; the Redis broker does
    # not, so this sweep re-enqueues processing imports whose worker lease expired.
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.using(schema_editor.connection.alias).get_or_create(
        name=NAME,
        defaults={
            "func": "imports.tasks.resume_stalled_imports_task",
            "schedule_type": "I",  # minutes
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


def remove_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.using(schema_editor.connection.alias).filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("imports", "0002_import_lease"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
