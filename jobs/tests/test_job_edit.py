"""The edit modal: GET, validation, save with row swap and toast, version conflict, no-op, perms."""

import json

import pytest
from django.urls import reverse

from jobs.merge import comparable
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


def opened_form(job: Job, **overrides) -> dict:
    """The form as the dialog posts it: the values typed over the job as it was when opened,
    with the hidden base values of that moment."""
    base = {f"base-{name}": comparable(getattr(job, name)) for name in EDITABLE_FIELDS}
    return {**base, **form_data(job, **overrides)}


def test_edits_of_different_fields_merge_without_a_conflict(
    client_for, editor, admin_user, job
) -> None:
    opened = Job.objects.get(pk=job.pk)
    job.apply_changes({"priority": 5}, actor=admin_user, origin="ui")
    client = client_for(editor)
    response = client.post(edit_url(job), opened_form(opened, name="Mine"), HTTP_HX_REQUEST="true")
    assert response["HX-Retarget"] == f"#job-{job.pk}"
    message = triggers(response)["jobsite:toast"]["message"]
    assert "name: Bracket → Mine" in message and "Kept the changes saved meanwhile" in message
    job.refresh_from_db()
    assert (job.name, job.priority, job.version) == ("Mine", 5, 3)
    assert job.events.first().changes == {"name": ["Bracket", "Mine"]}


def test_their_status_change_merges_with_my_other_edit(client_for, editor, admin_user, job) -> None:
    """The status I did not touch is no longer one the form offers: theirs is kept."""
    opened = Job.objects.get(pk=job.pk)
    job.apply_changes({"status": "running"}, actor=admin_user, origin="ui")
    job.apply_changes({"status": "completed"}, actor=admin_user, origin="ui")
    client = client_for(editor)
    response = client.post(
        edit_url(job), opened_form(opened, notes="line one\r\nline two"), HTTP_HX_REQUEST="true"
    )
    assert "HX-Retarget" in response
    job.refresh_from_db()
    assert (job.status, job.notes) == ("completed", "line one\nline two")


def test_same_field_changed_by_both_shows_each_value_and_writes_nothing(
    client_for, editor, admin_user, job
) -> None:
    opened = Job.objects.get(pk=job.pk)
    job.apply_changes({"priority": 5}, actor=admin_user, origin="ui")
    client = client_for(editor)
    response = client.post(
        edit_url(job), opened_form(opened, name="Mine", priority=9), HTTP_HX_REQUEST="true"
    )
    assert "HX-Retarget" not in response
    body = response.content.decode()
    assert "Someone else changed a field you changed too. Nothing was saved yet." in body
    assert [c["name"] for c in response.context["conflicts"]] == ["priority"]
    conflict = response.context["conflicts"][0]
    assert (conflict["mine"], conflict["theirs"]) == ("9", "5")
    assert "set by admin" in body
    assert 'name="keep-priority" value="mine"' in body
    assert 'value="Mine"' in body and 'value="9"' in body  # nothing typed is lost
    assert 'name="version" value="2"' in body and 'name="base-priority" value="5"' in body
    job.refresh_from_db()
    assert (job.name, job.priority, job.version) == ("Bracket", 5, 2)


@pytest.mark.parametrize(("keep", "priority"), [("mine", 9), ("theirs", 5)])
def test_choosing_per_field_saves_that_value_and_my_other_changes(
    client_for, editor, admin_user, job, keep, priority
) -> None:
    opened = Job.objects.get(pk=job.pk)
    job.apply_changes({"priority": 5}, actor=admin_user, origin="ui")
    client = client_for(editor)
    first = client.post(
        edit_url(job), opened_form(opened, name="Mine", priority=9), HTTP_HX_REQUEST="true"
    )
    form = first.context["form"]
    data = {key: form.data.getlist(key) for key in form.data}
    data.update({"conflict": "priority", "keep-priority": keep})
    response = client.post(edit_url(job), data, HTTP_HX_REQUEST="true")
    assert "HX-Retarget" in response
    job.refresh_from_db()
    assert (job.name, job.priority) == ("Mine", priority)


def test_saving_a_conflict_without_choosing_asks_again(client_for, editor, admin_user, job) -> None:
    data = {**opened_form(job, priority=9), "conflict": "priority"}
    job.apply_changes({"priority": 5}, actor=admin_user, origin="ui")
    response = client_for(editor).post(edit_url(job), data, HTTP_HX_REQUEST="true")
    assert "Choose yours or theirs for each field below." in response.content.decode()
    job.refresh_from_db()
    assert (job.priority, job.version) == (5, 2)


def test_a_form_without_base_values_asks_about_every_field_it_differs_in(
    client_for, editor, admin_user, job
) -> None:
    """A dialog opened before the base values existed: any field unlike the stored job."""
    opened = Job.objects.get(pk=job.pk)
    job.apply_changes({"priority": 5}, actor=admin_user, origin="ui")
    response = client_for(editor).post(
        edit_url(job), form_data(opened, name="Mine"), HTTP_HX_REQUEST="true"
    )
    assert sorted(c["name"] for c in response.context["conflicts"]) == ["name", "priority"]
    job.refresh_from_db()
    assert (job.name, job.priority) == ("Bracket", 5)


def test_modal_states_each_rule_and_names_the_empty_printer(client_for, editor, job) -> None:
    body = client_for(editor).get(edit_url(job), HTTP_HX_REQUEST="true").content.decode()
    assert "A whole number 0–10; 10 is the most urgent." in body
    assert "Required for business jobs" in body
    assert ">No printer</option>" in body and "---------" not in body
    assert ">Close</button>" in body


def test_conflict_raised_at_write_time_writes_nothing(client_for, editor, job, monkeypatch) -> None:
    """The row moves between the version check and the write: apply_changes refuses."""
    original = Job.apply_changes

    def racing(self, changes, **kwargs):
        Job.objects.filter(pk=self.pk).update(version=99)
        return original(self, changes, **kwargs)

    monkeypatch.setattr(Job, "apply_changes", racing)
    client = client_for(editor)
    response = client.post(edit_url(job), form_data(job, priority=4), HTTP_HX_REQUEST="true")
    assert "Someone else changed this job while you were saving it" in response.content.decode()
    assert 'value="4"' in response.content.decode()
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


def test_job_page_edit_opens_the_dialog_and_stays_a_link_without_javascript(
    client_for, editor, job
) -> None:
    body = client_for(editor).get(job.get_absolute_url()).content.decode()
    assert f'href="{edit_url(job)}"' in body and f'hx-get="{edit_url(job)}"' in body
    assert 'id="job-live"' in body and f'data-version="{job.version}"' in body


def test_a_save_from_the_job_page_refreshes_the_page_section(client_for, editor, job) -> None:
    response = client_for(editor).post(
        edit_url(job),
        form_data(job, priority=6),
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{job.get_absolute_url()}",
    )
    assert response["HX-Retarget"] == "#job-live"
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="job-live"') and "priority: 2 → 6" in body


@pytest.mark.parametrize("status", ["cancelled", "failed"])
def test_reopen_takes_a_cancelled_or_failed_job_back_to_pending(
    client_for, editor, make_job, status
) -> None:
    job = make_job(name="Stuck", status=status)
    client = client_for(editor)
    page = client.get(job.get_absolute_url()).content.decode()
    assert ">Reopen</button>" in page
    response = client.post(
        edit_url(job),
        {"reopen": "pending", "version": job.version},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{job.get_absolute_url()}",
    )
    assert response["HX-Retarget"] == "#job-live"
    assert (
        triggers(response)["jobsite:toast"]["message"] == "Reopened “Stuck”: it is pending again."
    )
    job.refresh_from_db()
    assert job.status == "pending" and job.events.first().changes["status"] == [status, "pending"]


@pytest.mark.parametrize("status", ["pending", "running", "completed"])
def test_reopen_is_offered_and_done_only_for_cancelled_or_failed_jobs(
    client_for, editor, make_job, status
) -> None:
    job = make_job(name="Busy", status=status)
    client = client_for(editor)
    assert ">Reopen</button>" not in client.get(job.get_absolute_url()).content.decode()
    response = client.post(edit_url(job), {"reopen": "pending", "version": job.version})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == status and not job.events.exclude(kind="created").exists()


def test_reopen_behind_a_stale_or_missing_version_changes_nothing(
    client_for, editor, admin_user, make_job
) -> None:
    job = make_job(name="Stuck", status="failed")
    job.apply_changes({"priority": 3}, actor=admin_user, origin="ui")
    client = client_for(editor)
    for data in ({"reopen": "pending", "version": 1}, {"reopen": "pending"}):
        response = client.post(edit_url(job), data, HTTP_HX_REQUEST="true")
        assert triggers(response)["jobsite:toast"]["level"] == "error"
    job.refresh_from_db()
    assert (job.status, job.version) == ("failed", 2)


def test_history_shows_the_cancellation_reason(client_for, editor, job) -> None:
    job.cancel(actor=editor, origin="ui", reason="Customer withdrew")
    body = client_for(editor).get(job.get_absolute_url()).content.decode()
    history = body[body.index("<h2>History</h2>") :]
    assert "Reason: “Customer withdrew”" in history
    assert "cancellation_reason" not in history  # shown as the reason, not as a change


def test_history_keeps_the_reason_after_the_job_is_reopened(client_for, editor, job) -> None:
    job.cancel(actor=editor, origin="ui", reason="Customer withdrew")
    job.apply_changes({"status": "pending"}, actor=editor, origin="ui")
    job.refresh_from_db()
    assert job.cancellation_reason == ""
    body = client_for(editor).get(job.get_absolute_url()).content.decode()
    assert "Reason: “Customer withdrew”" in body[body.index("<h2>History</h2>") :]
