"""The imports endpoints of the API (docs/api.md, "Imports"), with session clients (tokens
are tested in jobsite/tests/test_api_auth.py)."""

import hashlib
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from imports.models import ErrorType, ImportErrorRecord, ImportJob, ImportStatus
from imports.tests.web_helpers import make_import

PROBLEM = "application/problem+json"
GOOD_CSV = b"name,priority,reference\nBracket,3,R-1\nHinge,0,R-2\n"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(client, content=GOOD_CSV, name="jobs.csv", **data):
    return client.post(
        "/api/v1/imports",
        {"file": SimpleUploadedFile(name, content, content_type="text/csv"), **data},
    )


def test_upload_creates_a_pending_import_201(client_for, editor):
    response = upload(client_for(editor), on_error="abort", on_existing="skip")
    assert response.status_code == 201
    body = response.json()
    import_job = ImportJob.objects.get()
    assert response["Location"] == f"/api/v1/imports/{import_job.pk}"
    assert body["status"] == "pending" and body["progress"] == 0
    assert (import_job.on_error, import_job.on_existing) == ("abort", "skip")
    assert import_job.file_hash == hashlib.sha256(GOOD_CSV).hexdigest()
    assert import_job.created_by == editor
    assert body["estimated_rows"] == 2


def test_a_file_imported_before_is_409_unless_forced(client_for, editor):
    client = client_for(editor)
    first = upload(client).json()
    again = upload(client)
    assert again.status_code == 409
    assert again["Content-Type"] == PROBLEM
    body = again.json()
    assert body["code"] == "DUPLICATE_FILE"
    assert body["duplicate"]["url"] == first["url"]
    assert ImportJob.objects.count() == 1
    assert upload(client, force="true").status_code == 201
    assert ImportJob.objects.count() == 2


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "empty"), (b"PK\x03\x04zipdata", "not a CSV"), (b"title,colour\nx,y\n", "name")],
)
def test_a_refused_file_is_400_with_the_reason(client_for, editor, content, words):
    response = upload(client_for(editor), content)
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert words in response.json()["detail"]
    assert "file" in response.json()["errors"]
    assert not ImportJob.objects.exists()


def test_a_file_over_the_limit_is_413(client_for, editor, settings):
    settings.IMPORT_MAX_UPLOAD_MB = 0
    response = upload(client_for(editor))
    assert response.status_code == 413
    assert response.json()["code"] == "TOO_LARGE"
    assert not ImportJob.objects.exists()


def test_upload_needs_a_file_and_the_permission(client_for, editor, viewer):
    missing = client_for(editor).post("/api/v1/imports", {"on_error": "skip"})
    assert missing.status_code == 422
    assert "file" in missing.json()["errors"]
    assert upload(client_for(viewer)).status_code == 403


def test_detail_shows_progress_counts_and_rates(client_for, viewer):
    started = timezone.now() - timedelta(seconds=10)
    import_job = make_import(
        status=ImportStatus.PROCESSING,
        started_at=started,
        processed_rows=50,
        created_count=40,
        error_count=10,
        warnings=["Unknown column “x” ignored."],
    )
    body = client_for(viewer).get(f"/api/v1/imports/{import_job.pk}").json()
    assert body["progress"] == 0.5
    assert (body["processed_rows"], body["created_count"], body["error_count"]) == (50, 40, 10)
    assert body["rows_per_second"] > 0 and body["eta_seconds"] > 0
    assert body["warnings"] == ["Unknown column “x” ignored."]


def test_detail_404_and_others_imports_403(client_for, editor, outsider):
    import_job = make_import(created_by=editor)
    assert (
        client_for(editor).get("/api/v1/imports/00000000-0000-0000-0000-000000000000").status_code
        == 404
    )
    response = client_for(outsider).get(f"/api/v1/imports/{import_job.pk}")
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM


def test_list_filters_and_pages(client_for, viewer, editor):
    now = timezone.now()
    for minutes in range(3):
        make_import(created_at=now - timedelta(minutes=minutes), created_by=editor)
    make_import(created_at=now - timedelta(hours=1), status=ImportStatus.FAILED)
    client = client_for(viewer)
    first = client.get("/api/v1/imports", {"limit": 2}).json()
    assert len(first["items"]) == 2
    rest = client.get("/api/v1/imports", {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    seen = [item["id"] for item in first["items"] + rest["items"]]
    assert len(set(seen)) == 4
    failed = client.get("/api/v1/imports", {"status": "failed"}).json()["items"]
    assert [item["status"] for item in failed] == ["failed"]
    # Who may only upload sees their own imports.
    uploader_only = client_for(editor)
    editor.user_permissions.remove(*editor.user_permissions.filter(codename="view_importjob"))
    mine = uploader_only.get("/api/v1/imports").json()["items"]
    assert len(mine) == 3
    assert client.get("/api/v1/imports", {"cursor": "nope"}).status_code == 400


def test_cancel_pending_200_processing_202_finished_409(client_for, editor):
    client = client_for(editor)
    pending = make_import(created_by=editor)
    response = client.delete(f"/api/v1/imports/{pending.pk}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    running = make_import(
        created_by=editor,
        status=ImportStatus.PROCESSING,
        started_at=timezone.now(),
        lease_owner="w",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    response = client.post(
        f"/api/v1/imports/{running.pk}/cancel",
        {"reason": "wrong file"},
        content_type="application/json",
    )
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    running.refresh_from_db()
    assert running.cancellation_reason == "wrong file"
    done = make_import(created_by=editor, status=ImportStatus.COMPLETED)
    response = client.delete(f"/api/v1/imports/{done.pk}")
    assert response.status_code == 409
    assert response.json()["code"] == "NOT_CANCELLABLE"


def test_cancel_of_anothers_import_is_403(client_for, viewer, editor):
    import_job = make_import(created_by=editor)
    assert client_for(viewer).delete(f"/api/v1/imports/{import_job.pk}").status_code == 403
    import_job.refresh_from_db()
    assert import_job.status == "pending"


def test_errors_as_json_pages_and_csv(client_for, viewer):
    import_job = make_import(status=ImportStatus.COMPLETED)
    for row in (4, 2, 3):
        ImportErrorRecord.objects.create(
            import_job=import_job,
            row=row,
            field="priority",
            error_type=ErrorType.VALIDATION,
            message=f"bad {row}",
            raw_data="=cmd()",
        )
    client = client_for(viewer)
    first = client.get(f"/api/v1/imports/{import_job.pk}/errors", {"limit": 2}).json()
    assert [item["row"] for item in first["items"]] == [2, 3]
    rest = client.get(
        f"/api/v1/imports/{import_job.pk}/errors", {"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [item["row"] for item in rest["items"]] == [4] and rest["next_cursor"] is None
    response = client.get(f"/api/v1/imports/{import_job.pk}/errors.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    assert text.splitlines()[1].startswith('"2","priority","validation","bad 2"')
    assert "'=cmd()" in text  # formula-safe, as the page's download
