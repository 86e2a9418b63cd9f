""" "Import anyway" without choosing the file again: the upload found to be a duplicate is
kept server-side for an hour under a signed, per-user token; it is imported from there, and
removed once imported, or by retention (and by the next held upload) when unused."""

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from imports import intake
from imports.models import ImportJob, ImportStatus
from imports.retention import cleanup_imports
from imports.tests.web_helpers import make_import

NEW_URL = reverse("imports:new")
CSV = b"name,priority,reference\nBracket,3,R-1\nHinge,0,R-2\n"
FILE_HASH = hashlib.sha256(CSV).hexdigest()
OPTIONS = {"on_error": "skip", "on_existing": "update"}


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def earlier(db, admin_user):
    return make_import(file_hash=FILE_HASH, status=ImportStatus.COMPLETED, created_by=admin_user)


def held_files(media: Path) -> list[Path]:
    return sorted((media / intake.HELD_UPLOADS_FOLDER).glob("*"))


def warn(client) -> str:
    """Upload the duplicate; return the held token the warning carries."""
    file = SimpleUploadedFile("tuesday.csv", CSV, content_type="text/csv")
    response = client.post(NEW_URL, {"file": file, **OPTIONS})
    assert response.status_code == 200
    form = response.context["form"]
    assert form.duplicate is not None
    assert form.held_token
    html = response.content.decode()
    assert f'name="held" value="{form.held_token}"' in html
    assert "need not choose it again" in html
    return form.held_token


def import_anyway(client, token: str):
    return client.post(NEW_URL, {"import_anyway": FILE_HASH, "held": token, **OPTIONS})


def test_import_anyway_imports_the_held_file_and_removes_it(client_for, editor, earlier, media):
    client = client_for(editor)
    token = warn(client)
    (held,) = held_files(media)
    assert held.read_bytes() == CSV
    assert ImportJob.objects.count() == 1

    response = import_anyway(client, token)  # no file sent
    assert response.status_code == 302
    again = ImportJob.objects.exclude(pk=earlier.pk).get()
    assert response["Location"] == again.get_absolute_url()
    assert (again.original_filename, again.file_hash, again.created_by) == (
        "tuesday.csv",
        FILE_HASH,
        editor,
    )
    assert again.file.read() == CSV
    assert held_files(media) == []  # used once, then gone
    # The token cannot import it a second time.
    response = import_anyway(client, token)
    assert "no longer kept" in response.content.decode()
    assert ImportJob.objects.count() == 2


def test_another_users_or_a_tampered_token_imports_nothing(
    client_for, editor, admin_user, earlier, media
):
    token = warn(client_for(editor))
    for client, sent in ((client_for(admin_user), token), (client_for(editor), token[:-2] + "xx")):
        response = import_anyway(client, sent)
        assert response.status_code == 200
        assert "no longer kept" in response.content.decode()
    assert ImportJob.objects.count() == 1
    assert len(held_files(media)) == 1


def test_a_token_older_than_an_hour_imports_nothing(
    client_for, editor, earlier, media, monkeypatch
):
    client = client_for(editor)
    token = warn(client)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3601)  # what signing reads
    response = import_anyway(client, token)
    assert "no longer kept (it is removed after an hour)" in response.content.decode()
    assert ImportJob.objects.count() == 1


def test_a_new_file_chosen_instead_is_the_one_checked(client_for, editor, earlier, media):
    client = client_for(editor)
    token = warn(client)
    other = SimpleUploadedFile("other.csv", b"name\nGear\n", content_type="text/csv")
    response = client.post(
        NEW_URL, {"file": other, "held": token, "import_anyway": FILE_HASH, **OPTIONS}
    )
    assert response.status_code == 302
    assert ImportJob.objects.exclude(pk=earlier.pk).get().original_filename == "other.csv"


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_retention_removes_held_uploads_unused_for_an_hour(client_for, editor, earlier, media):
    client = client_for(editor)
    warn(client)
    warn(client)
    old, fresh = held_files(media)
    age(old, 3700)
    result = cleanup_imports(dry_run=True)
    assert result.held_uploads == 1
    assert held_files(media) == [old, fresh]
    result = cleanup_imports()
    assert result.held_uploads == 1
    assert held_files(media) == [fresh]
    assert cleanup_imports(now=timezone.now() + timedelta(hours=2)).held_uploads == 1
    assert held_files(media) == []
    assert ImportJob.objects.filter(pk=earlier.pk).exists()  # imports are not touched


def test_holding_an_upload_sweeps_the_expired_ones(client_for, editor, earlier, media):
    client = client_for(editor)
    warn(client)
    (old,) = held_files(media)
    age(old, 3700)
    warn(client)
    (kept,) = held_files(media)
    assert kept != old
