"""Cancelling a job from the list or the modal: confirmation, allowed/refused statuses, perms."""

import json

import pytest
from django.urls import reverse

from jobs.models import Job, JobEvent
from jobs.status import JobStatus, can_cancel

pytestmark = pytest.mark.django_db


def cancel_url(job: Job) -> str:
    return reverse("jobs:cancel", args=[job.pk])


def test_get_shows_confirmation_in_modal(client_for, editor, make_job) -> None:
    job = make_job(status="running")
    client = client_for(editor)
    response = client.get(cancel_url(job), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'name="reason"' in body and f'name="version" value="{job.version}"' in body
    assert "Cancel “Bracket”?" in body


@pytest.mark.parametrize("status", [s for s in JobStatus.values if can_cancel(s)])
def test_cancel_allowed_statuses(client_for, editor, make_job, status) -> None:
    job = make_job(status=status)
    client = client_for(editor)
    response = client.post(
        cancel_url(job),
        {"reason": "  Customer withdrew  ", "version": job.version},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert response["HX-Retarget"] == f"#job-{job.pk}"
    assert response["HX-Reswap"] == "outerHTML"
    body = response.content.decode()
    assert "badge-cancelled" in body and cancel_url(job) not in body
    trigger = json.loads(response["HX-Trigger-After-Settle"])
    assert "jobsite:close-modal" in trigger
    assert trigger["jobsite:toast"] == {"message": "Cancelled “Bracket”.", "level": "success"}
    job.refresh_from_db()
    assert job.status == "cancelled" and job.version == 2
    assert job.cancelled_by == editor and job.cancelled_at is not None
    assert job.cancellation_reason == "Customer withdrew"
    event = job.events.get()
    assert event.kind == "cancelled" and event.actor == editor
    assert event.changes == {
        "status": [status, "cancelled"],
        "cancellation_reason": ["", "Customer withdrew"],
    }


@pytest.mark.parametrize("status", [s for s in JobStatus.values if not can_cancel(s)])
def test_cancel_refused_for_statuses_that_cannot_cancel(
    client_for, editor, make_job, status
) -> None:
    job = make_job(status=status)
    client = client_for(editor)
    get = client.get(cancel_url(job), HTTP_HX_REQUEST="true")
    assert f"A {status} job cannot be cancelled" in get.content.decode()
    assert 'name="reason"' not in get.content.decode()
    response = client.post(
        cancel_url(job), {"reason": "x", "version": job.version}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "HX-Retarget" not in response
    assert f"A {status} job cannot be cancelled. Nothing was changed." in response.content.decode()
    job.refresh_from_db()
    assert job.status == status and job.version == 1 and job.cancelled_at is None
    assert not JobEvent.objects.filter(job=job).exists()


def test_reason_longer_than_255_is_refused(client_for, editor, make_job) -> None:
    job = make_job(status="pending")
    client = client_for(editor)
    response = client.post(
        cancel_url(job), {"reason": "r" * 256, "version": job.version}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "HX-Retarget" not in response
    assert "Reason must be at most 255 characters" in response.content.decode()
    job.refresh_from_db()
    assert job.status == "pending" and not job.events.exists()


def test_cancel_after_someone_else_changed_the_job(
    client_for, editor, admin_user, make_job
) -> None:
    job = make_job(status="pending")
    seen_version = job.version
    job.apply_changes({"status": "running"}, actor=admin_user, origin="ui")
    client = client_for(editor)
    response = client.post(
        cancel_url(job), {"reason": "", "version": seen_version}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert "This job changed since you opened this dialog" in body
    assert "admin changed it" in body and 'name="version" value="2"' in body
    job.refresh_from_db()
    assert job.status == "running" and job.events.count() == 1


def test_cancel_without_htmx_redirects_with_message(client_for, editor, make_job) -> None:
    job = make_job(status="scheduled")
    client = client_for(editor)
    response = client.post(cancel_url(job), {"version": job.version}, follow=True)
    assert response.redirect_chain[-1][0] == job.get_absolute_url()
    assert "Cancelled “Bracket”." in response.content.decode()
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_cancel_needs_change_permission(client, client_for, viewer, make_job) -> None:
    job = make_job(status="pending")
    response = client.post(cancel_url(job), {"version": 1})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client = client_for(viewer)
    assert client.get(cancel_url(job)).status_code == 403
    assert client.post(cancel_url(job), {"version": 1}, HTTP_HX_REQUEST="true").status_code == 403
    job.refresh_from_db()
    assert job.status == "pending" and not job.events.exists()


def test_cancel_requires_post_or_get(client_for, editor, make_job) -> None:
    job = make_job()
    client = client_for(editor)
    assert client.put(cancel_url(job)).status_code == 405
