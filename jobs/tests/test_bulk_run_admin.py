"""Bulk runs in the Django admin: read with their history, cancelled by an action."""

import pytest
from django.urls import reverse

from jobs.bulk_runs import draft_bulk_run, start_bulk_run
from jobs.models import BulkRun
from jobs.runs import RunStatus

pytestmark = pytest.mark.django_db


def test_admin_lists_shows_and_cancels_runs(client_for, admin_user, make_job) -> None:
    make_job()
    run = start_bulk_run(
        draft_bulk_run(actor=admin_user, origin="ui", action="cancel", reason="jam"),
        enqueue=False,
    )
    client = client_for(admin_user)
    changelist = reverse("admin:jobs_bulkrun_changelist")
    assert "cancel (reason: jam)" in client.get(changelist).content.decode()
    page = client.get(reverse("admin:jobs_bulkrun_change", args=[run.pk])).content.decode()
    assert "Started from Web page: cancel (reason: jam)" in page  # the history inline
    assert run.get_absolute_url() in page
    response = client.post(
        changelist,
        {"action": "cancel_runs", "_selected_action": [run.pk]},
        follow=True,
    )
    assert "Cancelled 1 bulk run(s)" in response.content.decode()
    run.refresh_from_db()
    assert (run.status, run.cancelled_by) == (RunStatus.CANCELLED, admin_user)
    response = client.post(
        changelist, {"action": "cancel_runs", "_selected_action": [run.pk]}, follow=True
    )
    assert "Could not cancel 1" in response.content.decode()
    assert client.get(reverse("admin:jobs_bulkrun_add")).status_code == 403
    assert BulkRun.objects.count() == 1
