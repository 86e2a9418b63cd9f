"""An upload whose file name is about a thousand characters long gets a message on the upload
form, not a bare "Bad Request" page.

Red-team finding: such a name answered 400 with Django's bare page. Django refuses a multipart
part whose headers pass 1 KB before any view runs (in production, in the CSRF check).
"""

import io

import pytest
from django.test import Client
from django.urls import reverse

from imports.models import ImportJob

pytestmark = pytest.mark.django_db

URL = reverse("imports:new")
MESSAGE = "The file&#x27;s name is too long to upload."


def named_file(name: str) -> io.BytesIO:
    """A file object whose name the test client sends as is (an UploadedFile would cut it)."""
    file = io.BytesIO(b"name\nBracket\n")
    file.name = name
    return file


@pytest.mark.parametrize("name", ["a" * 1000 + ".csv", "é" * 600 + ".csv"], ids=["ascii", "utf8"])
def test_a_very_long_file_name_gets_the_form_with_a_message(client_for, editor, name) -> None:
    response = client_for(editor).post(URL, {"file": named_file(name), "on_error": "skip"})
    assert response.status_code == 400
    html = response.content.decode()
    assert MESSAGE in html and 'name="file"' in html and "<html" in html
    assert not ImportJob.objects.exists()


def test_the_message_also_comes_when_the_csrf_check_reads_the_upload(client_for, editor) -> None:
    client = client_for(editor, enforce_csrf_checks=True)
    token = client.get(URL).context["csrf_token"]
    data = {"csrfmiddlewaretoken": str(token), "file": named_file("b" * 1200 + ".csv")}
    response = client.post(URL, data)
    assert response.status_code == 400 and MESSAGE in response.content.decode()


def test_a_long_name_that_fits_is_imported_under_255_characters(client_for, editor) -> None:
    response = client_for(editor).post(
        URL, {"file": named_file("c" * 600 + ".csv"), "on_error": "skip", "on_existing": "update"}
    )
    assert response.status_code == 302
    assert len(ImportJob.objects.get().original_filename) == 255


def test_anonymous_users_keep_django_s_page(db) -> None:
    client = Client(enforce_csrf_checks=True)
    token = client.get(reverse("login")).context["csrf_token"]
    data = {"csrfmiddlewaretoken": str(token), "file": named_file("d" * 1000 + ".csv")}
    response = client.post(URL, data)
    assert response.status_code == 400 and 'name="file"' not in response.content.decode()
