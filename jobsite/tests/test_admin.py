"""Django admin: every model's pages render for a superuser, and admin saves follow the rules."""

import pytest
from django.urls import reverse

from imports.models import ImportErrorRecord, ImportEvent, ImportJob
from jobs.models import Job, JobEvent, Printer

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(admin_user, printer):
    job = Job(name="Gear", printer=printer)
    job.insert(actor=admin_user, origin="ui")
    import_job = ImportJob.objects.create(
        original_filename="jobs.csv", file_hash="a" * 64, created_by=admin_user
    )
    return {
        Printer: printer,
        Job: job,
        JobEvent: job.events.get(),
        ImportJob: import_job,
        ImportErrorRecord: ImportErrorRecord.objects.create(
            import_job=import_job, row=3, field="name", error_type="validation", message="bad"
        ),
        ImportEvent: ImportEvent.objects.create(
            import_job=import_job, old_status="", new_status="pending"
        ),
    }


MODELS = [Printer, Job, JobEvent, ImportJob, ImportErrorRecord, ImportEvent]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_page_render(client_for, admin_user, objects, model) -> None:
    client = client_for(admin_user)
    opts = model._meta
    changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    assert str(objects[model]) in changelist.content.decode()
    change = client.get(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[objects[model].pk])
    )
    assert change.status_code == 200


@pytest.mark.parametrize("query", ["q=Gear", "status__exact=pending", "printer__id__exact=1"])
def test_job_changelist_filters_and_search(client_for, admin_user, objects, query) -> None:
    client = client_for(admin_user)
    response = client.get(reverse("admin:jobs_job_changelist") + "?" + query)
    assert response.status_code == 200


def test_import_job_is_read_only_and_cannot_be_added(client_for, admin_user, objects) -> None:
    client = client_for(admin_user)
    assert client.get(reverse("admin:imports_importjob_add")).status_code == 403
    page = client.get(reverse("admin:imports_importjob_change", args=[objects[ImportJob].pk]))
    assert b'name="original_filename"' not in page.content
    assert b"Error records" in page.content  # a link to their paged list, not inline rows


def _job_post(job: Job, **overrides) -> dict:
    data = {
        "name": job.name,
        "status": job.status,
        "priority": job.priority,
        "customer_name": job.customer_name,
        "notes": job.notes,
        "file_name": job.file_name,
        "printer": job.printer_id or "",
        "version": job.version,
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_admin_edit_goes_through_domain_rules(client_for, admin_user, objects) -> None:
    client = client_for(admin_user)
    job = objects[Job]
    url = reverse("admin:jobs_job_change", args=[job.pk])
    response = client.post(url, _job_post(job, status="running", priority=5))
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.priority, job.version) == ("running", 5, 2)
    assert job.started_at is not None and job.updated_by == admin_user
    assert job.events.filter(kind="updated").get().changes == {
        "status": ["pending", "running"],
        "priority": [0, 5],
    }


def test_admin_refuses_forbidden_transition(client_for, admin_user, objects) -> None:
    client = client_for(admin_user)
    job = objects[Job]
    response = client.post(
        reverse("admin:jobs_job_change", args=[job.pk]), _job_post(job, status="completed")
    )
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    job.refresh_from_db()
    assert job.status == "pending" and job.version == 1


def test_admin_refuses_business_job_without_customer(client_for, admin_user, objects) -> None:
    client = client_for(admin_user)
    job = objects[Job]
    response = client.post(
        reverse("admin:jobs_job_change", args=[job.pk]), _job_post(job, is_business="on")
    )
    assert b"A business job needs a customer name." in response.content
    job.refresh_from_db()
    assert job.is_business is False


def test_admin_refuses_stale_version(client_for, admin_user, objects) -> None:
    client = client_for(admin_user)
    job = objects[Job]
    job.apply_changes({"priority": 2}, actor=admin_user, origin="ui")
    response = client.post(
        reverse("admin:jobs_job_change", args=[job.pk]), _job_post(job, priority=9, version=1)
    )
    assert b"changed by someone else" in response.content
    job.refresh_from_db()
    assert job.priority == 2 and job.version == 2


def test_admin_add_job_writes_created_event(client_for, admin_user, printer) -> None:
    client = client_for(admin_user)
    data = _job_post(Job(name="New part", printer=printer), version="")
    response = client.post(reverse("admin:jobs_job_add"), data)
    assert response.status_code == 302
    job = Job.objects.get(name="New part")
    assert job.created_by == admin_user
    assert job.events.get().kind == "created"


def test_admin_refuses_inactive_printer_for_new_assignment(client_for, admin_user, objects) -> None:
    client = client_for(admin_user)
    retired = Printer.objects.create(name="Retired", is_active=False)
    job = objects[Job]
    response = client.post(
        reverse("admin:jobs_job_change", args=[job.pk]), _job_post(job, printer=retired.pk)
    )
    assert b"Choose an active printer: that one is inactive" in response.content
    job.refresh_from_db()
    assert job.printer != retired
