from django.apps import AppConfig


class JobsiteConfig(AppConfig):
    name = "jobsite"

    def ready(self) -> None:
        from jobsite.metrics import connect_receivers

        connect_receivers()  # the counters of /metrics (docs/metrics.md)
