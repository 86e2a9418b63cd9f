"""The progress page /imports/<uuid>/: figures, polling while running, 286 when finished."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from imports.models import ErrorType, ImportErrorRecord, ImportStatus
from imports.tests.web_helpers import make_import
from imports.views import ERRORS_PAGE_SIZE

POLL = 'hx-trigger="every 1s"'


def detail_url(import_job) -> str:
    return reverse("imports:detail", args=[import_job.pk])


def test_anonymous_is_sent_to_login(client, db):
    import_job = make_import()
    response = client.get(detail_url(import_job))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_without_view_permission_is_403(client_for, outsider, editor):
    import_job = make_import(created_by=editor)
    assert client_for(outsider).get(detail_url(import_job)).status_code == 403


def test_uploader_without_view_permission_sees_own_import(client_for, outsider):
    import_job = make_import(created_by=outsider)
    assert client_for(outsider).get(detail_url(import_job)).status_code == 200


def test_unknown_import_is_404(client_for, viewer):
    url = reverse("imports:detail", args=["00000000-0000-0000-0000-000000000000"])
    assert client_for(viewer).get(url).status_code == 404


def test_processing_import_renders_figures_and_polls(client_for, viewer):
    started = timezone.now() - timedelta(seconds=10)
    import_job = make_import(
        status=ImportStatus.PROCESSING,
        started_at=started,
        estimated_rows=1000,
        processed_rows=400,
        created_count=300,
        updated_count=61,
        skipped_count=27,
        error_count=12,
        encoding="cp1252",
        delimiter=";",
        warnings=["Ignored unknown column: “colour”."],
    )
    response = client_for(viewer).get(detail_url(import_job))
    assert response.status_code == 200
    html = response.content.decode()
    assert POLL in html
    assert '<progress class="import-progress" max="100"' in html
    assert 'value="40"' in html
    assert "~1,000 (estimated)" in html
    for figure in ("<dd>300</dd>", "<dd>61</dd>", "<dd>27</dd>", ">12</a>"):
        assert figure in html
    assert "rows/s" in html
    assert "Time left" in html
    assert "cp1252" in html
    assert "semicolon" in html
    assert "Ignored unknown column: “colour”." in html


def test_exact_total_replaces_the_estimate(client_for, viewer):
    import_job = make_import(
        status=ImportStatus.PROCESSING, estimated_rows=1000, total_rows=1040, processed_rows=520
    )
    html = client_for(viewer).get(detail_url(import_job)).content.decode()
    assert "of\n    1,040" in html or "of 1,040" in " ".join(html.split())
    assert "(estimated)" not in html


def test_htmx_poll_of_running_import_returns_the_live_partial(client_for, viewer):
    import_job = make_import(status=ImportStatus.PROCESSING, processed_rows=5)
    response = client_for(viewer, htmx=True).get(detail_url(import_job))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="import-live"')
    assert POLL in html
    assert "<html" not in html


@pytest.mark.parametrize(
    "status", [ImportStatus.COMPLETED, ImportStatus.FAILED, ImportStatus.CANCELLED]
)
def test_finished_import_does_not_poll_and_htmx_poll_gets_286(client_for, viewer, status):
    import_job = make_import(
        status=status,
        started_at=timezone.now() - timedelta(seconds=5),
        completed_at=timezone.now(),
        processed_rows=100,
        total_rows=100,
    )
    page = client_for(viewer).get(detail_url(import_job))
    assert POLL not in page.content.decode()

    poll = client_for(viewer, htmx=True).get(detail_url(import_job))
    assert poll.status_code == 286
    html = poll.content.decode()
    assert POLL not in html
    # The final poll replaces the whole body: final figures and the error table.
    assert poll["HX-Retarget"] == "#import-body"
    assert poll["HX-Reswap"] == "outerHTML"
    assert 'id="import-errors"' in html


def test_completed_import_shows_full_bar(client_for, viewer):
    import_job = make_import(
        status=ImportStatus.COMPLETED,
        started_at=timezone.now() - timedelta(seconds=5),
        completed_at=timezone.now(),
        processed_rows=100,
        total_rows=100,
        created_count=100,
    )
    html = client_for(viewer).get(detail_url(import_job)).content.decode()
    assert 'value="100"' in html
    assert "Finished in" in html
    assert "No row errors." in html
    assert "Time left" not in html


def test_cancelled_import_says_after_how_many_rows(client_for, viewer, editor):
    import_job = make_import(
        status=ImportStatus.CANCELLED,
        processed_rows=3000,
        cancelled_at=timezone.now(),
        cancelled_by=editor,
    )
    html = client_for(viewer).get(detail_url(import_job)).content.decode()
    assert "Cancelled after 3,000 rows by editor" in html


def test_failed_import_shows_failure_message(client_for, viewer):
    import_job = make_import(
        status=ImportStatus.FAILED, failure_message="The file could not be read past row 12."
    )
    html = client_for(viewer).get(detail_url(import_job)).content.decode()
    assert "The file could not be read past row 12." in html
    assert 'role="alert"' in html


def test_cancel_button_only_for_who_may_cancel_while_cancellable(
    client_for, viewer, editor, admin_user
):
    running = make_import(status=ImportStatus.PROCESSING, created_by=editor)
    confirm_url = reverse("imports:cancel_confirm", args=[running.pk])
    # viewer: neither uploader nor change permission
    assert confirm_url not in client_for(viewer).get(detail_url(running)).content.decode()
    for user in (editor, admin_user):
        html = client_for(user).get(detail_url(running)).content.decode()
        # the app's own confirmation dialog, not the browser's confirm()
        assert f'hx-get="{confirm_url}" hx-target="#modal"' in html
        assert "hx-confirm=" not in html

    finished = make_import(status=ImportStatus.COMPLETED, created_by=editor)
    html = client_for(admin_user).get(detail_url(finished)).content.decode()
    assert reverse("imports:cancel_confirm", args=[finished.pk]) not in html


def test_error_table_is_paginated(client_for, viewer):
    import_job = make_import(status=ImportStatus.COMPLETED, error_count=ERRORS_PAGE_SIZE + 5)
    ImportErrorRecord.objects.bulk_create(
        ImportErrorRecord(
            import_job=import_job,
            row=row,
            field="priority",
            error_type=ErrorType.VALIDATION,
            message=f"Priority must be 0–10 (row {row}).",
            raw_data=f"Job {row},11",
        )
        for row in range(2, ERRORS_PAGE_SIZE + 7)
    )
    client = client_for(viewer)
    first = client.get(detail_url(import_job)).content.decode()
    assert "(row 2)." in first
    assert f"(row {ERRORS_PAGE_SIZE + 1})." in first
    assert f"(row {ERRORS_PAGE_SIZE + 2})." not in first
    assert "Page 1 of 2" in first
    assert reverse("imports:errors_csv", args=[import_job.pk]) in first

    second = client.get(detail_url(import_job), {"page": 2}).content.decode()
    assert f"(row {ERRORS_PAGE_SIZE + 2})." in second
    assert f"(row {ERRORS_PAGE_SIZE + 6})." in second
    assert "(row 2)." not in second
    assert "Page 2 of 2" in second


def test_error_cap_is_explained(client_for, viewer):
    import_job = make_import(status=ImportStatus.COMPLETED, error_count=20_000)
    ImportErrorRecord.objects.create(
        import_job=import_job, row=2, error_type=ErrorType.PARSE, message="Ragged row."
    )
    html = client_for(viewer).get(detail_url(import_job)).content.decode()
    assert "Only the first 1 errors are stored" in html


def test_filename_and_messages_are_escaped(client_for, viewer):
    import_job = make_import(
        original_filename="<script>alert(1)</script>.csv",
        status=ImportStatus.FAILED,
        failure_message="<img src=x onerror=alert(2)>",
    )
    ImportErrorRecord.objects.create(
        import_job=import_job,
        row=2,
        error_type=ErrorType.VALIDATION,
        message="<b>bad</b>",
        raw_data="<script>x</script>",
    )
    html = client_for(viewer).get(detail_url(import_job)).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in html
    assert "<img src=x" not in html
    assert "<b>bad</b>" not in html
    assert "<script>x</script>" not in html
