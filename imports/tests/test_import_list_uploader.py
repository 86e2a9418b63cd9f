"""/imports/ for a user who may upload but not view imports: their own imports only.

Red-team finding: such a user got 403 on the list, though they could open their import by
its link.
"""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from imports.tests.web_helpers import make_import

LIST_URL = reverse("imports:list")


@pytest.fixture
def uploader(db) -> User:
    user = User.objects.create_user("only-uploads")
    user.user_permissions.set(Permission.objects.filter(codename="add_importjob"))
    return user


def test_uploader_lists_and_opens_only_their_own_imports(client_for, uploader, editor) -> None:
    mine = make_import(original_filename="mine.csv", created_by=uploader)
    theirs = make_import(original_filename="theirs.csv", created_by=editor)
    client = client_for(uploader)
    response = client.get(LIST_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "mine.csv" in html and "theirs.csv" not in html
    assert reverse("imports:new") in html  # they may upload
    assert client.get(mine.get_absolute_url()).status_code == 200
    assert client.get(theirs.get_absolute_url()).status_code == 403


def test_uploader_filters_stay_within_their_own_imports(client_for, uploader, editor) -> None:
    make_import(original_filename="mine-done.csv", created_by=uploader, status="completed")
    make_import(original_filename="theirs-done.csv", created_by=editor, status="completed")
    html = client_for(uploader).get(LIST_URL, {"status": "completed"}).content.decode()
    assert "mine-done.csv" in html and "theirs-done.csv" not in html


def test_viewer_still_lists_everyone_s_imports(client_for, viewer, editor) -> None:
    make_import(original_filename="editor.csv", created_by=editor)
    html = client_for(viewer).get(LIST_URL).content.decode()
    assert "editor.csv" in html


def test_without_upload_or_view_permission_the_list_is_403(client_for, outsider) -> None:
    assert client_for(outsider).get(LIST_URL).status_code == 403
