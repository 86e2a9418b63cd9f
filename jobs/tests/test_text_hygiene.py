"""Control characters and bidirectional controls are refused in job text on every surface
(edit form, admin, CSV import) with a message naming the character, and removed from the
names of uploaded files."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from jobs import validation
from jobs.models import Job

pytestmark = pytest.mark.django_db

UNSAFE = [
    ("\x00", "a control character (U+0000)"),
    ("\x07", "a control character (U+0007)"),
    ("\t", "a control character (U+0009)"),
    ("\x1b", "a control character (U+001B)"),
    ("\x7f", "a control character (U+007F)"),
    ("\x85", "a control character (U+0085)"),
    ("\x9f", "a control character (U+009F)"),
    ("\u202a", "a bidirectional text control (U+202A)"),
    ("\u202e", "a bidirectional text control (U+202E)"),
    ("\u2066", "a bidirectional text control (U+2066)"),
    ("\u2069", "a bidirectional text control (U+2069)"),
]
CLEANERS = [
    (validation.clean_name, "Name"),
    (validation.clean_reference, "Reference"),
    (validation.clean_notes, "Notes"),
    (validation.clean_file_name, "File name"),
    (lambda value: validation.clean_customer(True, value), "Customer name"),
]


@pytest.mark.parametrize(("char", "kind"), UNSAFE, ids=[hex(ord(c)) for c, _ in UNSAFE])
@pytest.mark.parametrize(("clean", "label"), CLEANERS, ids=[label for _, label in CLEANERS])
def test_every_job_text_field_refuses_the_character(clean, label, char, kind) -> None:
    with pytest.raises(ValidationError) as refused:
        clean(f"Brack{char}et")
    assert refused.value.messages == [f"{label} contains {kind}; remove it."]


def test_the_message_reads_as_documented() -> None:
    with pytest.raises(ValidationError) as refused:
        validation.clean_name("Bell\x07")
    assert refused.value.messages == ["Name contains a control character (U+0007); remove it."]


def test_notes_keep_line_breaks_as_newlines() -> None:
    assert validation.clean_notes("first\r\nsecond\nthird") == "first\nsecond\nthird"
    with pytest.raises(ValidationError, match=r"carriage return \(U\+000D\)"):
        validation.clean_notes("first\rsecond")


@pytest.mark.parametrize("clean", [validation.clean_name, validation.clean_file_name])
def test_one_line_fields_refuse_a_line_break(clean) -> None:
    with pytest.raises(ValidationError, match=r"contains a line break \(U\+000A\)"):
        clean("first\nsecond")


def test_ordinary_unicode_is_kept() -> None:
    text = "Zahnräder – “Ölwanne” 北京 😀 \u200d \u00a0x"
    assert validation.clean_name(text) == text.strip()


def test_upload_names_lose_control_and_bidi_characters() -> None:
    assert validation.safe_upload_name("report\u202efdp.exe\x07.csv") == "reportfdp.exe.csv"
    assert validation.safe_upload_name(" jobs\t1.csv\r\n") == "jobs1.csv"
    assert validation.safe_upload_name("\u2066\x00") == "upload.csv"
    assert len(validation.safe_upload_name("a" * 1000 + ".csv")) == 255


# --- the edit form and the admin ---------------------------------------------------------


@pytest.fixture
def job(make_job) -> Job:
    return make_job(name="Bracket", notes="old")


def edit_data(job: Job, **overrides) -> dict:
    data = {
        "name": job.name,
        "status": job.status,
        "priority": job.priority,
        "customer_name": job.customer_name,
        "notes": job.notes,
        "file_name": job.file_name,
        "printer": "",
        "version": job.version,
    }
    return {**data, **overrides}


def page_text(response) -> str:
    return response.content.decode().replace("&#x27;", "'")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Bell\x07", "Name contains a control character (U+0007); remove it."),
        ("customer_name", "Acme\u202e", "Customer name contains a bidirectional text control"),
        ("notes", "tab\there", "Notes contains a control character (U+0009)"),
        ("file_name", "part\u2066.stl", "File name contains a bidirectional text control"),
    ],
)
def test_edit_form_refuses_and_writes_nothing(
    client_for, editor, job, field, value, message
) -> None:
    client = client_for(editor)
    response = client.post(
        reverse("jobs:edit", args=[job.pk]),
        edit_data(job, **{field: value}),
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "HX-Retarget" not in response
    assert message in page_text(response)
    job.refresh_from_db()
    assert (job.name, job.version) == ("Bracket", 1) and not job.events.exists()


def test_edit_form_stores_notes_with_plain_newlines(client_for, editor, job) -> None:
    client = client_for(editor)
    client.post(reverse("jobs:edit", args=[job.pk]), edit_data(job, notes="one\r\ntwo"))
    job.refresh_from_db()
    assert job.notes == "one\ntwo"


def test_cancel_reason_refuses_control_characters(client_for, editor, job) -> None:
    client = client_for(editor)
    response = client.post(
        reverse("jobs:cancel", args=[job.pk]), {"reason": "oops\x1b[31m", "version": job.version}
    )
    assert "Reason contains a control character (U+001B)" in page_text(response)
    job.refresh_from_db()
    assert job.status == "pending"


def test_admin_refuses_and_writes_nothing(client_for, admin_user, job) -> None:
    client = client_for(admin_user)
    data = edit_data(
        job, name="Bell\x07", **{"events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0"}
    )
    response = client.post(reverse("admin:jobs_job_change", args=[job.pk]), data)
    assert response.status_code == 200
    assert "Name contains a control character (U+0007); remove it." in page_text(response)
    job.refresh_from_db()
    assert (job.name, job.version) == ("Bracket", 1)
