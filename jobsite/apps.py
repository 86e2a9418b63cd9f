from django.apps import AppConfig
from django.db.models.signals import post_migrate


class JobsiteConfig(AppConfig):
    name = "jobsite"

    def ready(self) -> None:
        from jobsite.metrics import connect_receivers
        from jobsite.stats import keep_refresh_schedule

        connect_receivers()  # the counters of /metrics (docs/metrics.md)
        # The schedule that renews the dashboard's figures (docs/dashboard.md).
        post_migrate.connect(keep_refresh_schedule, sender=self)
