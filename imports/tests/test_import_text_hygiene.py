"""The CSV import refuses control characters and bidirectional controls in job text (through
jobs.validation, as the edit form and admin do) and strips them from the uploaded file's name."""

import io
from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from imports import intake
from imports.models import ImportJob
from jobs.models import Job

pytestmark = pytest.mark.django_db


def test_rows_with_unsafe_characters_are_errors_naming_them(
    run_csv: Callable[..., ImportJob],
) -> None:
    import_job = run_csv(
        "name,customer_name,notes,file_name,reference\n"
        'ok,,"two\r\nlines",part.stl,R-1\n'
        "Bell\x07,,,,R-2\n"
        "ok,Acme\u202e,,,R-3\n"
        "ok,,tab\there,,R-4\n"
        "ok,,,evil\u2066.stl,R-5\n"
        "ok,,,,R-\x1b6\n"
    )
    messages = dict(import_job.errors.values_list("row", "message"))
    assert messages == {
        3: "Name contains a control character (U+0007); remove it.",
        4: "Customer name contains a bidirectional text control (U+202E); remove it.",
        5: "Notes contains a control character (U+0009); remove it.",
        6: "File name contains a bidirectional text control (U+2066); remove it.",
        7: "Reference contains a control character (U+001B); remove it.",
    }
    assert list(Job.objects.values_list("reference", "notes")) == [("R-1", "two\nlines")]


def test_the_uploaded_file_name_loses_control_and_bidi_characters(uploader) -> None:
    data = b"name\nBracket\n"
    upload = SimpleUploadedFile("jobs\u202egpj.\x07csv", data, content_type="text/csv")
    info = intake.inspect_upload(upload)
    import_job = intake.create_import(upload, info, user=uploader, enqueue=False)
    assert import_job.original_filename == "jobsgpj.csv"
    assert "\u202e" not in import_job.file.name and "\x07" not in import_job.file.name
    assert "jobsgpj.csv" in import_job.events.get().message


def test_a_file_name_of_only_unsafe_characters_becomes_upload_csv(uploader) -> None:
    file = io.BytesIO(b"name\nBracket\n")
    file.name = "\u2066\u2069"
    import_job = intake.create_import(
        file, intake.inspect_upload(file), user=uploader, enqueue=False
    )
    assert import_job.original_filename == "upload.csv"
