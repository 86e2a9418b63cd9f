"""Thin task entry points for the cluster: each calls one domain function."""

from jobs.bulk_runs import resume_stalled_bulk_runs, run_bulk_run


def run_bulk_run_task(run_id: int) -> None:
    run_bulk_run(run_id)


def resume_stalled_bulk_runs_task() -> list[int]:
    """Run by the `jobs-bulk-runs-resume-stalled` schedule: re-enqueue runs whose worker died."""
    return resume_stalled_bulk_runs()
