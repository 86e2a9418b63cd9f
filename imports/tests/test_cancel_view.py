"""POST /imports/<uuid>/cancel/: pending at once, processing by request, finished refused."""

import json

from django.urls import reverse
from django.utils import timezone

from imports.models import ImportEvent, ImportStatus
from imports.tests.web_helpers import make_import


def cancel_url(import_job) -> str:
    return reverse("imports:cancel", args=[import_job.pk])


def toast(response) -> dict:
    return json.loads(response["HX-Trigger"])["jobsite:toast"]


def test_anonymous_is_sent_to_login(client, db):
    import_job = make_import()
    response = client.post(cancel_url(import_job))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.PENDING


def test_get_is_not_allowed(client_for, admin_user):
    assert client_for(admin_user).get(cancel_url(make_import())).status_code == 405


def test_without_permission_and_not_uploader_is_403(client_for, viewer, editor):
    import_job = make_import(created_by=editor)
    assert client_for(viewer).post(cancel_url(import_job)).status_code == 403
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.PENDING
    assert import_job.cancelled_at is None


def test_uploader_cancels_own_pending_import(client_for, outsider):
    import_job = make_import(created_by=outsider)
    response = client_for(outsider).post(cancel_url(import_job), follow=True)
    assert response.redirect_chain[-1][0] == import_job.get_absolute_url()
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.CANCELLED
    assert import_job.cancelled_by == outsider
    assert "Import cancelled." in response.content.decode()
    assert ImportEvent.objects.filter(
        import_job=import_job, new_status=ImportStatus.CANCELLED, actor=outsider
    ).exists()


def test_change_permission_cancels_anyones_import(client_for, admin_user, editor):
    import_job = make_import(created_by=editor)
    response = client_for(admin_user).post(cancel_url(import_job))
    assert response.status_code == 302
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.CANCELLED


def test_processing_import_gets_a_cancel_request(client_for, editor):
    import_job = make_import(
        created_by=editor,
        status=ImportStatus.PROCESSING,
        started_at=timezone.now(),
        processed_rows=2000,
        lease_owner="worker:1:abc",
        lease_expires_at=timezone.now() + timezone.timedelta(minutes=5),
    )
    response = client_for(editor).post(cancel_url(import_job), follow=True)
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.PROCESSING
    assert import_job.cancel_requested_at is not None
    html = response.content.decode()
    assert "Cancel requested" in html
    # still polling until the worker stops, and no second Cancel button
    assert 'hx-trigger="every 1s"' in html
    assert f'hx-post="{cancel_url(import_job)}"' not in html


def test_finished_import_is_refused_with_a_message(client_for, editor):
    import_job = make_import(
        created_by=editor, status=ImportStatus.COMPLETED, completed_at=timezone.now()
    )
    response = client_for(editor).post(cancel_url(import_job), follow=True)
    assert response.status_code == 200
    assert "can no longer be cancelled" in response.content.decode()
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.COMPLETED
    assert import_job.cancelled_at is None


def test_htmx_cancel_from_progress_page_swaps_body_and_toasts(client_for, editor):
    import_job = make_import(created_by=editor)
    response = client_for(editor, htmx=True).post(cancel_url(import_job))
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#import-body"
    assert toast(response) == {"message": "Import cancelled.", "level": "success"}
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="import-body">')
    assert "Cancelled after 0 rows by editor" in html
    assert 'hx-trigger="every 1s"' not in html


def test_htmx_cancel_of_finished_import_toasts_an_error(client_for, editor):
    import_job = make_import(created_by=editor, status=ImportStatus.FAILED)
    response = client_for(editor, htmx=True).post(cancel_url(import_job))
    assert response.status_code == 200
    assert toast(response)["level"] == "error"
    assert "can no longer be cancelled" in toast(response)["message"]


def test_htmx_cancel_from_list_returns_the_row(client_for, editor):
    import_job = make_import(created_by=editor)
    response = client_for(editor, htmx=True).post(cancel_url(import_job), {"fragment": "row"})
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith(f'<tr id="import-row-{import_job.pk}"')
    assert "Cancelled" in response.content.decode()


def test_plain_post_returns_to_a_safe_next_url_only(client_for, editor):
    list_url = reverse("imports:list") + "?status=pending"
    first = make_import(created_by=editor)
    response = client_for(editor).post(cancel_url(first), {"next": list_url})
    assert response["Location"] == list_url

    second = make_import(created_by=editor)
    response = client_for(editor).post(cancel_url(second), {"next": "https://evil.example/"})
    assert response["Location"] == second.get_absolute_url()
