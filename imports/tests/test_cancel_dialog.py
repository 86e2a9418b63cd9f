"""Cancelling an import through the app's own dialog: GET /imports/<uuid>/cancel/confirm/
asks (the modal's content for htmx, a page of its own without JavaScript), with an optional
reason; POST /imports/<uuid>/cancel/ keeps the reason, closes the modal and says so."""

import json
import uuid

from django.urls import reverse

from imports.models import ImportStatus
from imports.tests.web_helpers import make_import


def confirm_url(import_job, query: str = "") -> str:
    return reverse("imports:cancel_confirm", args=[import_job.pk]) + query


def cancel_url(import_job) -> str:
    return reverse("imports:cancel", args=[import_job.pk])


def triggers(response) -> dict:
    return json.loads(response["HX-Trigger"])


def test_confirm_refuses_anonymous_outsiders_and_unknown_imports(client, client_for, viewer):
    import_job = make_import()
    response = client.get(confirm_url(import_job))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert client_for(viewer).get(confirm_url(import_job)).status_code == 403
    missing = reverse("imports:cancel_confirm", args=[uuid.uuid4()])
    assert client_for(viewer).get(missing).status_code == 404
    assert client_for(viewer).post(confirm_url(import_job)).status_code == 405


def test_confirm_in_the_modal_changes_nothing(client_for, editor):
    import_job = make_import(created_by=editor)
    response = client_for(editor, htmx=True).get(confirm_url(import_job, "?fragment=row"))
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#modal"
    html = response.content.decode()
    assert not html.lstrip().startswith("<!doctype")  # the dialog's content only
    assert f'hx-post="{cancel_url(import_job)}"' in html
    assert '<textarea name="reason"' in html
    assert 'name="fragment" value="row"' in html
    assert "data-close-modal" in html
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.PENDING


def test_confirm_without_javascript_is_a_page_that_goes_back_to_next(client_for, editor):
    import_job = make_import(created_by=editor)
    response = client_for(editor).get(confirm_url(import_job, "?next=/imports/%3Fmine%3Don"))
    html = response.content.decode()
    assert html.lstrip().startswith("<!doctype")
    assert f'action="{cancel_url(import_job)}"' in html
    assert 'name="next" value="/imports/?mine=on"' in html
    assert 'href="/imports/?mine=on" role="button" class="secondary">Keep importing' in html


def test_confirm_of_a_finished_import_says_it_cannot_be_cancelled(client_for, editor):
    import_job = make_import(created_by=editor, status=ImportStatus.COMPLETED)
    html = client_for(editor, htmx=True).get(confirm_url(import_job)).content.decode()
    assert "can no longer be cancelled" in html
    assert "<form" not in html


def test_cancel_from_the_list_row_keeps_the_reason_and_closes_the_modal(client_for, editor):
    import_job = make_import(created_by=editor)
    response = client_for(editor, htmx=True).post(
        cancel_url(import_job), {"reason": "  Wrong file \r\n", "fragment": "row"}
    )
    assert response.status_code == 200
    assert response["HX-Retarget"] == f"#import-row-{import_job.pk}"
    assert response["HX-Reswap"] == "outerHTML"
    events = triggers(response)
    assert "jobsite:close-modal" in events
    assert events["jobsite:toast"] == {"message": "Import cancelled.", "level": "success"}
    assert f'id="import-row-{import_job.pk}"' in response.content.decode()
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.CANCELLED
    assert import_job.cancellation_reason == "Wrong file"


def test_cancel_from_the_import_page_replaces_its_body_and_shows_the_reason(client_for, editor):
    import_job = make_import(created_by=editor)
    response = client_for(editor, htmx=True).post(cancel_url(import_job), {"reason": "Typo"})
    assert response["HX-Retarget"] == "#import-body"
    assert "jobsite:close-modal" in triggers(response)
    assert "Reason: Typo" in response.content.decode()


def test_a_too_long_reason_shows_the_error_in_the_dialog_and_cancels_nothing(client_for, editor):
    import_job = make_import(created_by=editor)
    response = client_for(editor, htmx=True).post(
        cancel_url(import_job), {"reason": "x" * 300, "fragment": "row"}
    )
    assert response.status_code == 200  # htmx swaps it into the modal
    assert response["HX-Retarget"] == "#modal"
    assert "HX-Trigger" not in response
    html = response.content.decode()
    assert "Reason" in html and "at most" in html
    assert 'name="fragment" value="row"' in html
    import_job.refresh_from_db()
    assert import_job.status == ImportStatus.PENDING
    assert import_job.cancellation_reason == ""


def test_cancel_without_javascript_goes_to_a_safe_next_only(client_for, editor):
    first, second = make_import(created_by=editor), make_import(created_by=editor)
    client = client_for(editor)
    response = client.post(cancel_url(first), {"next": "/imports/?mine=on"})
    assert response["Location"] == "/imports/?mine=on"
    response = client.post(cancel_url(second), {"next": "https://elsewhere.example/"})
    assert response["Location"] == second.get_absolute_url()
    second.refresh_from_db()
    assert second.status == ImportStatus.CANCELLED
