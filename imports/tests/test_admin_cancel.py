"""The admin action "Cancel selected imports" goes through ImportJob.request_cancel."""

from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from imports.models import ImportEvent, ImportStatus
from imports.tests.web_helpers import make_import

CHANGELIST = reverse("admin:imports_importjob_changelist")


def run_action(client, *import_jobs):
    return client.post(
        CHANGELIST,
        {"action": "cancel_imports", "_selected_action": [str(job.pk) for job in import_jobs]},
        follow=True,
    )


def test_cancels_pending_requests_processing_and_reports_finished(client_for, admin_user):
    pending = make_import(original_filename="pending.csv")
    processing = make_import(
        original_filename="running.csv",
        status=ImportStatus.PROCESSING,
        started_at=timezone.now(),
        lease_owner="worker:1:abc",
        lease_expires_at=timezone.now() + timezone.timedelta(minutes=5),
    )
    finished = make_import(original_filename="done.csv", status=ImportStatus.COMPLETED)

    response = run_action(client_for(admin_user), pending, processing, finished)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Cancelled 1 import(s)." in html
    assert "Asked 1 running import(s) to stop" in html
    assert "Could not cancel 1 import(s): done.csv:" in html
    assert "can no longer be cancelled" in html

    pending.refresh_from_db()
    processing.refresh_from_db()
    finished.refresh_from_db()
    assert pending.status == ImportStatus.CANCELLED
    assert pending.cancelled_by == admin_user
    assert processing.status == ImportStatus.PROCESSING
    assert processing.cancel_requested_at is not None
    assert finished.status == ImportStatus.COMPLETED
    assert finished.cancelled_at is None
    assert ImportEvent.objects.filter(import_job=pending, actor=admin_user).exists()


def test_action_needs_change_permission(client_for, viewer):
    viewer.is_staff = True
    viewer.save()
    client = client_for(viewer)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "cancel_imports" not in page.content.decode()

    pending = make_import()
    run_action(client, pending)
    pending.refresh_from_db()
    assert pending.status == ImportStatus.PENDING

    viewer.user_permissions.add(Permission.objects.get(codename="change_importjob"))
    client = client_for(viewer)
    assert "cancel_imports" in client.get(CHANGELIST).content.decode()
    run_action(client, pending)
    pending.refresh_from_db()
    assert pending.status == ImportStatus.CANCELLED
