"""Every database check constraint rejects the bad row on its own (not only the forms)."""

import pytest
from django.db import IntegrityError, transaction

from imports.models import ImportErrorRecord, ImportJob
from jobs.models import Job, JobEvent

pytestmark = pytest.mark.django_db


def assert_rejected(model, **fields) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.create(**fields)
    assert not model.objects.filter(**{k: v for k, v in fields.items() if k != "job"}).exists()


def test_a_valid_job_is_accepted() -> None:
    job = Job.objects.create(name="ok", priority=10, is_business=True, customer_name="Acme")
    assert job.pk and job.version == 1 and job.status == "pending"


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "x", "status": "finished"},
        {"name": "x", "status": "Pending"},
        {"name": "x", "priority": 11},
        {"name": "x", "is_business": True, "customer_name": ""},
        {"name": ""},
    ],
    ids=[
        "unknown-status",
        "wrong-case-status",
        "priority-11",
        "business-no-customer",
        "empty-name",
    ],
)
def test_bad_job_rows_are_rejected(fields) -> None:
    assert_rejected(Job, **fields)


def test_negative_priority_is_rejected() -> None:
    # PositiveSmallIntegerField adds its own check on top of job_priority_0_10.
    assert_rejected(Job, name="x", priority=-1)


def test_reference_is_unique_when_set_but_many_jobs_may_have_none() -> None:
    Job.objects.create(name="a", reference="R-1")
    Job.objects.create(name="b")
    Job.objects.create(name="c")
    assert_rejected(Job, name="d", reference="R-1")
    assert Job.objects.filter(reference__isnull=True).count() == 2


def test_job_event_kind_is_checked() -> None:
    job = Job.objects.create(name="a")
    assert_rejected(JobEvent, job=job, kind="deleted")


@pytest.mark.parametrize(
    "fields",
    [{"status": "running"}, {"on_error": "ignore"}, {"on_existing": "replace"}],
)
def test_bad_import_rows_are_rejected(fields) -> None:
    assert_rejected(ImportJob, original_filename="a.csv", file_hash="0" * 64, **fields)


def test_import_error_type_is_checked() -> None:
    import_job = ImportJob.objects.create(original_filename="a.csv", file_hash="0" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        ImportErrorRecord.objects.create(
            import_job=import_job, row=2, error_type="oops", message="m"
        )
    assert not import_job.errors.exists()
