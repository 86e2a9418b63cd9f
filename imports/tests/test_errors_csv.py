"""/imports/<uuid>/errors.csv: every stored error, streamed, safe to open in a spreadsheet."""

import csv
import io

import pytest
from django.urls import reverse

from imports.models import ErrorType, ImportErrorRecord, ImportStatus
from imports.tests.web_helpers import make_import


def csv_url(import_job) -> str:
    return reverse("imports:errors_csv", args=[import_job.pk])


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body, newline="")))


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(csv_url(make_import()))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_without_view_permission_is_403(client_for, outsider):
    assert client_for(outsider).get(csv_url(make_import())).status_code == 403


def test_post_is_not_allowed(client_for, viewer):
    assert client_for(viewer).post(csv_url(make_import())).status_code == 405


def test_streams_every_error_in_row_order(client_for, viewer):
    import_job = make_import(status=ImportStatus.COMPLETED, original_filename="spring jobs.csv")
    other = make_import(status=ImportStatus.COMPLETED)
    ImportErrorRecord.objects.bulk_create(
        ImportErrorRecord(
            import_job=import_job,
            row=row,
            field="name",
            error_type=ErrorType.VALIDATION,
            message="Name is required.",
            raw_data=f",{row}",
        )
        for row in range(3000, 1, -1)
    )
    ImportErrorRecord.objects.create(
        import_job=other, row=2, error_type=ErrorType.PARSE, message="Not mine."
    )
    response = client_for(viewer).get(csv_url(import_job))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="spring jobs-errors.csv"'
    rows = read_csv(response)
    assert rows[0] == ["row", "field", "error_type", "message", "raw_data"]
    assert len(rows) == 1 + 2999
    assert rows[1] == ["2", "name", "validation", "Name is required.", ",2"]
    assert rows[-1][0] == "3000"
    assert "Not mine." not in {row[3] for row in rows}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
    ],
)
def test_formula_cells_are_escaped(client_for, viewer, value, expected):
    import_job = make_import(status=ImportStatus.COMPLETED)
    ImportErrorRecord.objects.create(
        import_job=import_job,
        row=2,
        field=value,
        error_type=ErrorType.VALIDATION,
        message=value,
        raw_data=value,
    )
    rows = read_csv(client_for(viewer).get(csv_url(import_job)))
    assert rows[1] == ["2", expected, "validation", expected, expected]


def test_whole_row_error_has_empty_field(client_for, viewer):
    import_job = make_import(status=ImportStatus.COMPLETED)
    ImportErrorRecord.objects.create(
        import_job=import_job, row=7, field=None, error_type=ErrorType.PARSE, message="Ragged."
    )
    rows = read_csv(client_for(viewer).get(csv_url(import_job)))
    assert rows[1] == ["7", "", "parse", "Ragged.", ""]


def test_no_errors_gives_header_only(client_for, viewer):
    rows = read_csv(client_for(viewer).get(csv_url(make_import())))
    assert rows == [["row", "field", "error_type", "message", "raw_data"]]
