"""Helpers for the tests that run a real qcluster."""

from django.utils import timezone
from django_q.models import Schedule

from imports.importer import RESUME_SCHEDULE_NAME


def make_resume_sweep_due() -> None:
    """Let the cluster's scheduler run the `imports-resume-stalled` sweep at once. The schedule
    itself is kept by post_migrate (a transactional test's flush brings it back too)."""
    updated = Schedule.objects.filter(name=RESUME_SCHEDULE_NAME).update(next_run=timezone.now())
    assert updated == 1, "the imports-resume-stalled schedule is missing"
