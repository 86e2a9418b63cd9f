from typing import Any

from django.apps import AppConfig
from django.apps.registry import Apps
from django.db.models.signals import post_migrate


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from jobs.models import BulkRun, BulkRunEvent
        from jobs.runs import follow_runs

        post_migrate.connect(keep_schedules, sender=self)
        follow_runs(BulkRun, BulkRunEvent, page="jobs:bulk-run")  # the live pages (jobs.live)


def keep_schedules(*, using: str, apps: Apps | None = None, **kwargs: Any) -> None:
    """After every migrate (every deploy), keep the `jobs-bulk-runs-resume-stalled` schedule
    in place: a bulk run whose worker died is resumed by it (docs/bulk-runs.md)."""
    from django.apps import apps as global_apps

    from jobs.bulk_runs import ensure_resume_schedule

    apps = apps or global_apps  # `flush` (transactional tests) sends post_migrate without apps
    try:
        schedule_model = apps.get_model("django_q", "Schedule")
    except LookupError:  # django_q migrated to zero: nothing to keep
        return
    ensure_resume_schedule(schedule_model, using=using)
