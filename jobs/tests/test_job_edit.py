"""The edit modal: GET, validation, save with row swap and toast, version conflict, no-op, perms."""

import json

import pytest
from django.urls import reverse

from jobs.models import EDITABLE_FIELDS, Job, JobEvent, Printer

pytestmark = pytest.mark.django_db


def edit_url(job: Job) -> str:
    return reverse("jobs:edit", args=[job.pk])


def form_data(job: Job, **overrides) -> dict:
    data = {
        "name": job.name,
        "status": job.status,
        "priority": job.priority,
        "is_business": "on" if job.is_business else "",
        "customer_name": job.customer_name,
        "notes": job.notes,
        "file_name": job.file_name,
        "printer": job.printer_id or "",
        "version": job.version,
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not False}


def triggers(response) -> dict:
    return json.loads(response["HX-Trigger-After-Settle"])


@pytest.fixture
def job(make_job, printer) -> Job:
    return make_job(name="Bracket", printer=printer, priority=2)


def test_modal_get_renders_form_with_version_and_allowed_statuses(client_for, editor, job) -> None:
    job.apply_changes({"priority": 3}, actor=editor, origin="ui")
    client = client_for(editor)
    response = client.get(edit_url(job), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and 'class="modal-card"' in body
    assert 'name="version" value="2"' in body
    form = response.context["form"]
    assert [value for value, _ in form.fields["status"].choices] == [
        "pending",
        "scheduled",
        "running",
        "cancelled",
    ]
    assert set(form.fields) == {*EDITABLE_FIELDS, "version"}
    assert "priority: 2 → 3" in body  # history in the modal
    assert "data-close-modal" in body


def test_full_page_get_without_htmx(client_for, editor, job) -> None:
    client = client_for(editor)
    body = client.get(edit_url(job)).content.decode()
    assert "<html" in body and "data-close-modal" not in body


def test_successful_save_returns_row_with_toast(client_for, editor, job) -> None:
    client = client_for(editor)
    response = client.post(
        edit_url(job), form_data(job, status="running", priority=7), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response["HX-Retarget"] == f"#job-{job.pk}"
    assert response["HX-Reswap"] == "outerHTML"
    body = response.content.decode()
    assert body.lstrip().startswith(f'<tr id="job-{job.pk}" data-live-job="{job.pk}"')
    assert "badge-running" in body and "editor" in body
    trigger = triggers(response)
    assert "jobsite:close-modal" in trigger
    assert trigger["jobsite:toast"]["level"] == "success"
    assert "status: pending → running" in trigger["jobsite:toast"]["message"]
    assert "priority: 2 → 7" in trigger["jobsite:toast"]["message"]
    job.refresh_from_db()
    assert (job.status, job.priority, job.version, job.updated_by) == ("running", 7, 2, editor)
    assert job.started_at is not None
    event = job.events.get()
    assert event.actor == editor and event.changes["priority"] == [2, 7]


def test_save_without_htmx_redirects_to_detail(client_for, editor, job) -> None:
    client = client_for(editor)
    response = client.post(edit_url(job), form_data(job, name="Bracket v2"))
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    job.refresh_from_db()
    assert job.name == "Bracket v2"


def test_name_is_trimmed(client_for, editor, job) -> None:
    client = client_for(editor)
    client.post(edit_url(job), form_data(job, name="  Hinge  "), HTTP_HX_REQUEST="true")
    job.refresh_from_db()
    assert job.name == "Hinge"


def _assert_rejected(client, job, data, field, message) -> None:
    response = client.post(edit_url(job), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "HX-Retarget" not in response
    form = response.context["form"]
    assert message in " ".join(form.errors[field])
    assert message in response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    before = (job.version, job.name, job.status, job.priority)
    job.refresh_from_db()
    assert (job.version, job.name, job.status, job.priority) == before
    assert not JobEvent.objects.filter(job=job).exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "   "}, "name", "Name is required."),
        ({"name": "x" * 201}, "name", "Name must be at most 200 characters"),
        ({"notes": "n" * 1001}, "notes", "Notes must be at most 1000 characters"),
        ({"file_name": "f" * 256}, "file_name", "File name must be at most 255 characters"),
        ({"priority": "11"}, "priority", "10"),
        ({"is_business": "on", "customer_name": "  "}, "customer_name", "needs a customer name"),
        ({"status": "completed"}, "status", "Select a valid choice"),
        ({"printer": "999999"}, "printer", "Choose an active printer"),
    ],
)
def test_each_rule_gives_its_message_and_writes_nothing(
    client_for, editor, job, overrides, field, message
) -> None:
    client = client_for(editor)
    _assert_rejected(client, job, form_data(job, **overrides), field, message)


def test_inactive_printer_cannot_be_newly_assigned(client_for, editor, job) -> None:
    retired = Printer.objects.create(name="Old Ender", is_active=False)
    client = client_for(editor)
    _assert_rejected(
        client, job, form_data(job, printer=retired.pk), "printer", "Choose an active printer"
    )


def test_invalid_form_keeps_typed_values(client_for, editor, job) -> None:
    client = client_for(editor)
    response = client.post(
        edit_url(job),
        form_data(job, name="", notes="typed notes", priority=9),
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert "typed notes" in body and 'value="9"' in body
    assert 'aria-invalid="true"' in body


def test_second_save_from_same_version_conflicts_and_writes_nothing(
    client_for, editor, admin_user, job
) -> None:
    client = client_for(admin_user)
    first = client.post(edit_url(job), form_data(job, priority=5), HTTP_HX_REQUEST="true")
    assert first.status_code == 200 and "HX-Retarget" in first
    client = client_for(editor)
    second = client.post(
        edit_url(job), form_data(job, name="Mine", priority=9), HTTP_HX_REQUEST="true"
    )
    assert second.status_code == 200 and "HX-Retarget" not in second
    body = second.content.decode()
    assert "Someone else changed this job" in body
    assert "admin changed it" in body and "priority: 2 → 5" in body
    assert "Reload with latest values" in body and edit_url(job) in body
    assert 'value="Mine"' in body  # the user's typing is still there to copy
    job.refresh_from_db()
    assert (job.name, job.priority, job.version) == ("Bracket", 5, 2)
    assert job.events.count() == 1


def test_conflict_raised_at_write_time_writes_nothing(client_for, editor, job, monkeypatch) -> None:
    """The row moves between the version check and the write: apply_changes refuses."""
    original = Job.apply_changes

    def racing(self, changes, **kwargs):
        Job.objects.filter(pk=self.pk).update(version=99)
        return original(self, changes, **kwargs)

    monkeypatch.setattr(Job, "apply_changes", racing)
    client = client_for(editor)
    response = client.post(edit_url(job), form_data(job, priority=4), HTTP_HX_REQUEST="true")
    assert "Someone else changed this job" in response.content.decode()
    job.refresh_from_db()
    assert job.priority == 2 and not job.events.exists()


def test_reload_shows_latest_values(client_for, editor, admin_user, job) -> None:
    job.apply_changes({"name": "Renamed"}, actor=admin_user, origin="ui")
    client = client_for(editor)
    body = client.get(edit_url(job), HTTP_HX_REQUEST="true").content.decode()
    assert 'value="Renamed"' in body and 'name="version" value="2"' in body


def test_no_op_save_writes_nothing(client_for, editor, job) -> None:
    client = client_for(editor)
    updated_at = job.updated_at
    response = client.post(edit_url(job), form_data(job), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert triggers(response)["jobsite:toast"]["message"] == "No changes to save."
    assert "jobsite:close-modal" in triggers(response)
    job.refresh_from_db()
    assert job.version == 1 and job.updated_at == updated_at
    assert not JobEvent.objects.filter(job=job).exists()


def test_viewer_gets_403_and_anonymous_is_redirected(client, client_for, viewer, job) -> None:
    response = client.get(edit_url(job))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.post(edit_url(job), form_data(job, name="X")).status_code == 302
    client = client_for(viewer)
    assert client.get(edit_url(job), HTTP_HX_REQUEST="true").status_code == 403
    assert client.post(edit_url(job), form_data(job, name="X")).status_code == 403
    job.refresh_from_db()
    assert job.name == "Bracket" and job.version == 1


def test_unknown_job_is_404(client_for, editor) -> None:
    client = client_for(editor)
    assert client.get(reverse("jobs:edit", args=[999999])).status_code == 404


def test_detail_page_shows_history(client_for, viewer, editor, job) -> None:
    job.apply_changes({"status": "running"}, actor=editor, origin="ui")
    client = client_for(viewer)
    body = client.get(job.get_absolute_url()).content.decode()
    assert "status: pending → running" in body and "by editor" in body
    assert edit_url(job) not in body


def test_full_page_form_posts_plainly_so_it_works_outside_the_list(client_for, editor, job) -> None:
    """Opened from the detail page (no row to swap), the form must not post through HTMX."""
    client = client_for(editor)
    full = client.get(edit_url(job)).content.decode()
    assert "hx-post" not in full and "hx-get" not in full
    modal = client.get(edit_url(job), HTTP_HX_REQUEST="true").content.decode()
    assert f'hx-post="{edit_url(job)}"' in modal


def test_history_shows_zero_and_false_as_values(client_for, editor, make_job) -> None:
    job = make_job(priority=0, is_business=True, customer_name="Acme")
    job.apply_changes({"priority": 4, "is_business": False}, actor=editor, origin="ui")
    client = client_for(editor)
    body = client.get(job.get_absolute_url()).content.decode()
    assert "priority: 0 → 4" in body and "is_business: yes → no" in body
    modal = client.get(edit_url(job), HTTP_HX_REQUEST="true").content.decode()
    assert "priority: 0 → 4" in modal
