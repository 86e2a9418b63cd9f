"""A job created in a later status gets that status's side effects at its creation time
(docs/jobs.md, "Status rules"): the same through Job.insert and the admin's add form here,
and through the CSV import (imports/tests/test_processing.py)."""

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from jobs.status import JobStatus, creation_side_effects

pytestmark = pytest.mark.django_db

# What a job created in each status has set, besides the status.
SET_AT_CREATION = {
    JobStatus.PENDING: set(),
    JobStatus.SCHEDULED: set(),
    JobStatus.RUNNING: {"started_at"},
    JobStatus.COMPLETED: {"completed_at"},
    JobStatus.FAILED: {"completed_at"},
    JobStatus.CANCELLED: {"cancelled_at", "cancelled_by"},
}


def assert_created_with_side_effects(job: Job, actor: Any) -> None:
    """`job` (as stored) has exactly its status's creation side effects, at its created_at."""
    job.refresh_from_db()
    expected = SET_AT_CREATION[job.status]
    times = {name: getattr(job, name) for name in ("started_at", "completed_at", "cancelled_at")}
    assert times == {name: job.created_at if name in expected else None for name in times}, (
        job.status
    )
    assert job.cancelled_by == (actor if "cancelled_by" in expected else None)
    assert job.cancellation_reason == ""
    assert job.updated_at == job.created_at


def test_creation_side_effects_cover_every_status(admin_user) -> None:
    at = timezone.now()
    for status in JobStatus.values:
        effects = creation_side_effects(status, actor=admin_user, at=at)
        expected = SET_AT_CREATION[status]
        assert effects == {
            name: admin_user if name == "cancelled_by" else at for name in expected
        }, status


@pytest.mark.parametrize("status", JobStatus.values)
def test_insert_sets_the_status_side_effects_at_creation(admin_user, status: str) -> None:
    job = Job(name="Gear", status=status)
    job.insert(actor=admin_user, origin="ui")
    assert_created_with_side_effects(job, admin_user)


def test_insert_of_a_running_job_starts_it_when_it_is_created(admin_user) -> None:
    job = Job(name="Gear", status=JobStatus.RUNNING)
    job.insert(actor=admin_user, origin="ui")
    job.refresh_from_db()
    assert job.started_at is not None
    assert job.started_at == job.created_at


@pytest.mark.parametrize("status", JobStatus.values)
def test_admin_add_form_sets_the_status_side_effects_at_creation(
    client_for, admin_user, status: str
) -> None:
    client = client_for(admin_user)
    data = {
        "name": "From the admin",
        "status": status,
        "priority": "3",
        "customer_name": "",
        "notes": "",
        "file_name": "",
        "printer": "",
        "version": "",
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
    }
    response = client.post(reverse("admin:jobs_job_add"), data)
    assert response.status_code == 302
    job = Job.objects.get(name="From the admin")
    assert job.status == status
    assert_created_with_side_effects(job, admin_user)
    assert job.events.get().kind == "created"
