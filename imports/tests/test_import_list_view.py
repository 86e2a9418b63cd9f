"""/imports/: newest first, filters in the query string, live rows only while running."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from imports.models import ImportStatus
from imports.tests.web_helpers import make_import
from imports.views import LIST_PAGE_SIZE

LIST_URL = reverse("imports:list")
LIVE = "data-live-import="  # running rows, which live.js polls all at once


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(LIST_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_without_view_permission_is_403(client_for, outsider):
    assert client_for(outsider).get(LIST_URL).status_code == 403


def test_empty_state_links_to_upload_for_uploaders(client_for, editor, viewer):
    html = client_for(editor).get(LIST_URL).content.decode()
    assert "No imports yet." in html
    assert html.count(reverse("imports:new")) == 2  # the "New import" button and the empty state
    html = client_for(viewer).get(LIST_URL).content.decode()
    assert "No imports yet." in html
    assert reverse("imports:new") not in html


def test_newest_first(client_for, viewer):
    now = timezone.now()
    make_import(original_filename="old.csv", created_at=now - timedelta(days=2))
    make_import(original_filename="new.csv", created_at=now)
    make_import(original_filename="middle.csv", created_at=now - timedelta(days=1))
    html = client_for(viewer).get(LIST_URL).content.decode()
    assert html.index("new.csv") < html.index("middle.csv") < html.index("old.csv")


def test_filter_by_status_and_mine(client_for, editor, viewer):
    make_import(original_filename="editor-done.csv", created_by=editor, status="completed")
    make_import(original_filename="editor-failed.csv", created_by=editor, status="failed")
    make_import(original_filename="viewer-done.csv", created_by=viewer, status="completed")
    client = client_for(editor)

    html = client.get(LIST_URL, {"status": "completed"}).content.decode()
    assert "editor-done.csv" in html and "viewer-done.csv" in html
    assert "editor-failed.csv" not in html

    html = client.get(LIST_URL, {"mine": "on"}).content.decode()
    assert "editor-done.csv" in html and "editor-failed.csv" in html
    assert "viewer-done.csv" not in html

    html = client.get(LIST_URL, {"mine": "on", "status": "failed"}).content.decode()
    assert "editor-failed.csv" in html
    assert "editor-done.csv" not in html and "viewer-done.csv" not in html

    html = client.get(LIST_URL, {"status": "cancelled"}).content.decode()
    assert "No imports match these filters." in html


def test_unknown_status_filter_is_ignored_not_an_error(client_for, viewer):
    make_import(original_filename="a.csv")
    response = client_for(viewer).get(LIST_URL, {"status": "bogus", "page": "x"})
    assert response.status_code == 200
    assert "a.csv" in response.content.decode()


def test_pagination_keeps_filters(client_for, viewer):
    now = timezone.now()
    for index in range(LIST_PAGE_SIZE + 3):
        make_import(
            original_filename=f"file-{index:03d}.csv",
            status="completed",
            created_at=now - timedelta(minutes=index),
        )
    client = client_for(viewer)
    html = client.get(LIST_URL, {"status": "completed"}).content.decode()
    assert "Page 1 of 2" in html
    assert "?status=completed&amp;page=2" in html
    assert f"file-{LIST_PAGE_SIZE:03d}.csv" not in html
    html = client.get(LIST_URL, {"status": "completed", "page": 2}).content.decode()
    assert f"file-{LIST_PAGE_SIZE + 2:03d}.csv" in html
    assert "file-000.csv" not in html


def test_polls_only_rows_of_running_imports(client_for, viewer):
    finished = make_import(status=ImportStatus.COMPLETED, original_filename="done.csv")
    html = client_for(viewer).get(LIST_URL).content.decode()
    assert LIVE not in html
    assert "mini-progress" not in html

    running = make_import(status=ImportStatus.PROCESSING, processed_rows=50, estimated_rows=200)
    html = client_for(viewer).get(LIST_URL).content.decode()
    assert html.count(LIVE) == 1
    assert f'{LIVE}"{running.pk}" data-version="{running.version}"' in html
    assert f'{LIVE}"{finished.pk}"' not in html
    assert 'class="mini-progress" max="100"' in html
    assert 'value="25"' in html


def test_row_poll_returns_row_and_stops_when_finished(client_for, viewer):
    import_job = make_import(status=ImportStatus.PROCESSING, processed_rows=10)
    url = reverse("imports:detail", args=[import_job.pk])
    client = client_for(viewer, htmx=True)

    response = client.get(url, {"fragment": "row"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="import-row-{import_job.pk}"')
    assert f'{LIVE}"{import_job.pk}"' in html

    import_job.status = ImportStatus.COMPLETED
    import_job.save()
    response = client.get(url, {"fragment": "row"})
    assert response.status_code == 286
    assert LIVE not in response.content.decode()
    assert "Completed" in response.content.decode()


def test_cancel_button_for_uploader_and_changers_only(client_for, editor, viewer, admin_user):
    running = make_import(status=ImportStatus.PROCESSING, created_by=editor)
    cancel_url = reverse("imports:cancel", args=[running.pk])
    assert cancel_url not in client_for(viewer).get(LIST_URL).content.decode()
    assert cancel_url in client_for(editor).get(LIST_URL).content.decode()
    assert cancel_url in client_for(admin_user).get(LIST_URL).content.decode()


def test_filename_with_script_is_escaped(client_for, viewer):
    make_import(original_filename="<script>alert(1)</script>.csv")
    html = client_for(viewer).get(LIST_URL).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in html
