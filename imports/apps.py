from typing import Any

from django.apps import AppConfig
from django.apps.registry import Apps
from django.db.models.signals import post_migrate


class ImportsConfig(AppConfig):
    name = "imports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from imports.importer import make_way_for_waiting
        from imports.models import ImportEvent, ImportJob
        from imports.signals import import_status_changed
        from jobs.runs import follow_runs

        post_migrate.connect(keep_schedules, sender=self)
        import_status_changed.connect(make_way_for_waiting, dispatch_uid="make_way_for_waiting")
        follow_runs(ImportJob, ImportEvent, page="imports:detail")  # the live pages (jobs.live)


def keep_schedules(*, using: str, apps: Apps | None = None, **kwargs: Any) -> None:
    """After every migrate (every deploy), keep the `imports-retention` and
    `imports-resume-stalled` schedules in place."""
    from django.apps import apps as global_apps

    from imports.importer import ensure_resume_schedule
    from imports.retention import ensure_retention_schedule

    apps = apps or global_apps  # `flush` (transactional tests) sends post_migrate without apps

    try:
        schedule_model = apps.get_model("django_q", "Schedule")
    except LookupError:  # django_q migrated to zero: nothing to keep
        return
    ensure_retention_schedule(schedule_model, using=using)
    ensure_resume_schedule(schedule_model, using=using)
