"""The import's page: the uploaded file as a download (GET /imports/<uuid>/original/), row
errors while the import runs, breadcrumbs Pico draws separators for, and the link to the
jobs the import created or updated."""

import uuid

from django.core.files.base import ContentFile
from django.urls import reverse

from imports.models import ImportErrorRecord, ImportStatus
from imports.tests.web_helpers import make_import
from imports.views import LIVE_ERRORS
from jobs.models import Job

CONTENT = b"name,priority\nBracket,3\nGear;wheel,12\n"


def original_url(import_job) -> str:
    return reverse("imports:original", args=[import_job.pk])


def with_file(**fields):
    import_job = make_import(original_filename="Spring orders (final).csv", **fields)
    import_job.file.save("ignored.csv", ContentFile(CONTENT))
    return import_job


def add_errors(import_job, rows) -> None:
    ImportErrorRecord.objects.bulk_create(
        ImportErrorRecord(
            import_job=import_job,
            row=row,
            field="priority",
            error_type="validation",
            message=f"Priority must be 0–10 (row {row}).",
            raw_data=f"Job {row},12",
        )
        for row in rows
    )


def test_uploader_and_viewers_download_the_file_under_its_own_name(client_for, outsider, viewer):
    import_job = with_file(created_by=outsider)
    for user in (outsider, viewer):
        response = client_for(user).get(original_url(import_job))
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == CONTENT
        assert response["Content-Type"] == "text/csv"
        assert response["Content-Disposition"] == (
            'attachment; filename="Spring orders (final).csv"'
        )


def test_download_refuses_others_anonymous_unknown_and_a_lost_file(
    client, client_for, outsider, editor
):
    import_job = with_file(created_by=editor)
    assert client_for(outsider).get(original_url(import_job)).status_code == 403
    response = client.get(original_url(import_job))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    missing = reverse("imports:original", args=[uuid.uuid4()])
    assert client_for(editor).get(missing).status_code == 404
    import_job.file.storage.delete(import_job.file.name)
    assert client_for(editor).get(original_url(import_job)).status_code == 404
    no_file = make_import(created_by=editor)
    assert client_for(editor).get(original_url(no_file)).status_code == 404


def test_page_links_the_download_and_the_jobs_of_the_import(client_for, viewer, outsider):
    import_job = with_file(created_by=outsider, status=ImportStatus.COMPLETED)
    html = client_for(viewer).get(import_job.get_absolute_url()).content.decode()
    assert f'href="{original_url(import_job)}" download' in html
    assert f'href="{reverse("jobs:list")}?import={import_job.pk}"' in html
    # without the permission to see jobs, no link to a list it may not open
    html = client_for(outsider).get(import_job.get_absolute_url()).content.decode()
    assert f'href="{original_url(import_job)}" download' in html
    assert "?import=" not in html


def test_the_jobs_link_lists_only_that_imports_jobs(client_for, viewer):
    import_job = make_import(status=ImportStatus.COMPLETED)
    Job(name="Imported bracket").insert(
        actor=None, origin="import", origin_ref=str(import_job.pk), kind="imported"
    )
    Job(name="Hand-made gear").insert(actor=None, origin="ui")
    html = client_for(viewer).get(f"{reverse('jobs:list')}?import={import_job.pk}").content
    assert b"Imported bracket" in html
    assert b"Hand-made gear" not in html


def test_breadcrumbs_are_the_kind_pico_separates(client_for, viewer, editor):
    import_job = make_import()
    for client, url in (
        (client_for(viewer), import_job.get_absolute_url()),
        (client_for(editor), reverse("imports:new")),
    ):
        html = client.get(url).content.decode()
        assert '<nav aria-label="breadcrumb">' in html
        assert '<li aria-current="page">' in html


def test_a_running_import_shows_its_first_errors_as_it_polls(client_for, viewer):
    import_job = make_import(
        status=ImportStatus.PROCESSING, processed_rows=4000, error_count=LIVE_ERRORS + 3
    )
    add_errors(import_job, range(LIVE_ERRORS + 3, 0, -1))  # stored out of order
    response = client_for(viewer, htmx=True).get(import_job.get_absolute_url())
    html = response.content.decode()
    assert 'id="import-live"' in html and 'hx-trigger="every 1s"' in html
    assert "First row errors" in html
    assert "Priority must be 0–10 (row 1)." in html
    assert f"(row {LIVE_ERRORS})." in html
    assert f"(row {LIVE_ERRORS + 1})." not in html  # only the first few
    assert f"The first {LIVE_ERRORS} of {LIVE_ERRORS + 3} so far" in html
    # the full page of a running import shows them the same way
    html = client_for(viewer).get(import_job.get_absolute_url()).content.decode()
    assert "First row errors" in html
    assert "Every row error is listed here when the import ends" in html


def test_a_finished_import_lists_every_error_and_no_live_extract(client_for, viewer):
    import_job = make_import(status=ImportStatus.COMPLETED, error_count=LIVE_ERRORS + 3)
    add_errors(import_job, range(1, LIVE_ERRORS + 4))
    html = client_for(viewer, htmx=True).get(import_job.get_absolute_url()).content.decode()
    assert "First row errors" not in html
    assert f"(row {LIVE_ERRORS + 3})." in html  # the last poll brings the whole table
