"""django-q2 entry points of the site-wide work; the work is in plain functions."""

from jobsite import stats


def refresh_job_figures_task() -> dict[str, float]:
    """The `jobsite-dashboard-figures` schedule: a new snapshot of the dashboard's figures."""
    figures = stats.refresh()
    return {"jobs": figures.total, "seconds": round(figures.seconds, 3)}
