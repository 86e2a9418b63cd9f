"""django-q2 entry points of the site-wide work; the work is in plain functions."""

from jobsite import stats


def refresh_job_figures_task() -> dict[str, int]:
    """The `jobsite-dashboard-figures` schedule: renew the dashboard's figures (counted again
    only when a job was written since, or another hour began)."""
    figures = stats.refresh()
    return {"jobs": figures.total, "newest_event": figures.event_id}
