"""/imports/new/: checks before any ImportJob exists, duplicate warning, then the progress page."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from imports.models import ImportJob, ImportStatus
from imports.tests.web_helpers import make_import

NEW_URL = reverse("imports:new")
GOOD_CSV = b"name,priority,reference\nBracket,3,R-1\nHinge,0,R-2\nLid,10,R-3\n"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(content: bytes, name: str = "jobs.csv", **data: str) -> dict:
    data.setdefault("on_error", "skip")
    data.setdefault("on_existing", "update")
    return {"file": SimpleUploadedFile(name, content, content_type="text/csv"), **data}


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(NEW_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_without_add_permission_is_403(client_for, viewer):
    client = client_for(viewer)
    assert client.get(NEW_URL).status_code == 403
    assert client.post(NEW_URL, upload(GOOD_CSV)).status_code == 403
    assert not ImportJob.objects.exists()


def test_form_is_labelled_and_accepts_csv(client_for, editor):
    response = client_for(editor).get(NEW_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'accept=".csv,text/csv"' in html
    assert 'enctype="multipart/form-data"' in html
    assert '<label for="id_file">CSV file</label>' in html
    assert "<legend>When a row is invalid</legend>" in html
    assert "<legend>When a row&#x27;s reference matches an existing job</legend>" in html
    assert 'value="skip"' in html and 'value="abort"' in html
    assert 'value="update"' in html and 'value="error"' in html
    assert "import_anyway" not in html  # only offered for a duplicate


def test_valid_upload_creates_import_and_lands_on_progress_page(
    client_for, editor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(editor).post(
            NEW_URL, upload(GOOD_CSV, on_error="abort", on_existing="skip")
        )
    import_job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("imports:detail", args=[import_job.pk])
    assert import_job.status == ImportStatus.PENDING
    assert import_job.created_by == editor
    assert import_job.original_filename == "jobs.csv"
    assert import_job.file_hash == hashlib.sha256(GOOD_CSV).hexdigest()
    assert import_job.file_size == len(GOOD_CSV)
    assert import_job.estimated_rows == 3
    assert import_job.delimiter == ","
    assert import_job.encoding
    assert import_job.on_error == "abort"
    assert import_job.on_existing == "skip"
    assert import_job.task_id  # enqueued on the cluster once committed
    with import_job.file.open("rb") as stored:
        assert stored.read() == GOOD_CSV


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "The file is empty."),
        (b"title,priority\nBracket,3\n", "must be a header with a"),
        (b"PK\x03\x04\x14\x00\x06\x00binary spreadsheet", "not a CSV text file"),
        (b"\x00\x01\x02\x03\xff\xfe\x00junk" * 20, "not a CSV text file"),
    ],
    ids=["empty", "no-name-column", "zip", "binary-junk"],
)
def test_rejected_file_is_a_form_error_and_writes_nothing(client_for, editor, content, message):
    response = client_for(editor).post(NEW_URL, upload(content))
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert 'aria-invalid="true"' in html
    assert response.context["form"].errors["file"]
    assert not ImportJob.objects.exists()


def test_too_large_file_is_a_form_error(client_for, editor, settings):
    settings.IMPORT_MAX_UPLOAD_MB = 1
    content = b"name\n" + b"A job with a long enough name\n" * 40_000  # ~1.2 MB
    response = client_for(editor).post(NEW_URL, upload(content))
    assert response.status_code == 200
    assert "larger than the 1 MB upload limit" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_missing_file_and_bad_options_are_form_errors(client_for, editor):
    response = client_for(editor).post(NEW_URL, {"on_error": "explode", "on_existing": "update"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "file" in errors and "on_error" in errors
    assert not ImportJob.objects.exists()


def test_duplicate_needs_import_anyway(client_for, editor, admin_user):
    earlier = make_import(
        original_filename="monday.csv",
        file_hash=hashlib.sha256(GOOD_CSV).hexdigest(),
        status=ImportStatus.COMPLETED,
        created_by=admin_user,
        created_count=3,
    )
    client = client_for(editor)
    response = client.post(NEW_URL, upload(GOOD_CSV))
    assert response.status_code == 200
    html = response.content.decode()
    assert "This file was imported before" in html
    assert f'href="{earlier.get_absolute_url()}"' in html
    assert "monday.csv" in html
    assert "uploaded by admin" in html
    assert "Completed" in html
    file_hash = hashlib.sha256(GOOD_CSV).hexdigest()
    assert f'name="import_anyway" value="{file_hash}">Import anyway</button>' in html
    assert ImportJob.objects.count() == 1

    response = client.post(NEW_URL, upload(GOOD_CSV, import_anyway=file_hash))
    assert response.status_code == 302
    assert ImportJob.objects.count() == 2
    again = ImportJob.objects.exclude(pk=earlier.pk).get()
    assert response["Location"] == again.get_absolute_url()
    assert again.created_by == editor


def test_import_anyway_confirms_only_the_file_it_was_offered_for(client_for, editor):
    make_import(file_hash=hashlib.sha256(GOOD_CSV).hexdigest(), status=ImportStatus.COMPLETED)
    response = client_for(editor).post(NEW_URL, upload(GOOD_CSV, import_anyway="f" * 64))
    assert response.status_code == 200
    assert "This file was imported before" in response.content.decode()
    assert ImportJob.objects.count() == 1


def test_earlier_failed_import_is_not_a_duplicate(client_for, editor):
    make_import(file_hash=hashlib.sha256(GOOD_CSV).hexdigest(), status=ImportStatus.FAILED)
    response = client_for(editor).post(NEW_URL, upload(GOOD_CSV))
    assert response.status_code == 302
    assert ImportJob.objects.count() == 2


def test_import_anyway_is_kept_when_the_file_must_be_chosen_again(client_for, editor):
    file_hash = hashlib.sha256(GOOD_CSV).hexdigest()
    response = client_for(editor).post(
        NEW_URL, {"on_error": "skip", "on_existing": "update", "import_anyway": file_hash}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<input type="hidden" name="import_anyway" value="{file_hash}"' in html


def test_filename_with_script_is_escaped_on_the_duplicate_warning(client_for, editor):
    make_import(
        original_filename="<script>alert(1)</script>.csv",
        file_hash=hashlib.sha256(GOOD_CSV).hexdigest(),
        status=ImportStatus.COMPLETED,
    )
    html = client_for(editor).post(NEW_URL, upload(GOOD_CSV)).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in html
