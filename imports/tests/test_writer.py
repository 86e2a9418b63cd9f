"""imports.writer: new jobs by multi-row INSERT hold exactly what Job.insert would write."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from imports.models import ImportJob
from imports.writer import insert_jobs, update_jobs
from jobs.models import Job, JobEvent, Printer

pytestmark = pytest.mark.django_db


@pytest.fixture
def import_job(uploader: User) -> ImportJob:
    return ImportJob.objects.create(
        original_filename="jobs.csv", file_hash="0" * 64, created_by=uploader
    )


@pytest.mark.parametrize("status", ["pending", "running", "completed", "cancelled"])
def test_an_inserted_row_is_what_job_insert_writes(
    uploader: User, printer: Printer, import_job: ImportJob, status: str
) -> None:
    at = timezone.now()
    values = {
        "name": "Gear",
        "status": status,
        "priority": 4,
        "is_business": True,
        "customer_name": "Acme",
        "notes": "PLA",
        "file_name": "gear.3mf",
        "printer": printer,
    }
    with transaction.atomic():
        assert (
            insert_jobs(
                [{**values, "reference": "R1"}], actor=uploader, at=at, source_import=import_job
            )
            == 1
        )
    Job(**values, created_at=at).insert(actor=uploader, origin="ui")
    imported = Job.objects.get(reference="R1")
    inserted = Job.objects.get(reference=None)

    differ = {"id", "reference", "source_import"}
    for field in Job._meta.concrete_fields:
        if field.name not in differ:
            assert getattr(imported, field.attname) == getattr(inserted, field.attname), field.name
    assert (imported.source_import, imported.version) == (import_job, 1)
    imported_event, inserted_event = imported.events.get(), inserted.events.get()
    assert (imported_event.kind, inserted_event.kind) == ("imported", "created")
    assert imported_event.changes == inserted_event.changes
    assert (imported_event.actor, imported_event.created_at) == (uploader, at)
    assert (imported_event.origin, imported_event.origin_ref) == ("import", str(import_job.pk))


def test_many_rows_span_several_statements(
    uploader: User, import_job: ImportJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("imports.writer._max_query_params", lambda: 45)  # two job rows each
    new_jobs = [
        {
            "name": f"Job {n}",
            "status": "pending",
            "priority": 0,
            "is_business": False,
            "customer_name": "",
            "notes": "",
            "file_name": "",
            "printer": None,
            "reference": f"R{n}",
        }
        for n in range(5)
    ]
    with transaction.atomic():
        created = insert_jobs(new_jobs, actor=None, at=timezone.now(), source_import=import_job)
    assert created == 5
    jobs = Job.objects.order_by("pk")
    assert [job.reference for job in jobs] == [f"R{n}" for n in range(5)]
    assert [event.job.reference for event in JobEvent.objects.order_by("pk")] == [
        f"R{n}" for n in range(5)
    ]


def test_update_that_changes_nothing_writes_nothing(
    uploader: User, make_job: Callable[..., Job], import_job: ImportJob
) -> None:
    job = make_job(name="Same", priority=2)
    changed = make_job(name="Old", priority=2)
    with transaction.atomic():
        updated = update_jobs(
            [(job, {"name": "Same", "priority": 2}), (changed, {"name": "New"})],
            actor=uploader,
            at=timezone.now(),
            source_import=import_job,
        )
    assert updated == 1
    job.refresh_from_db()
    changed.refresh_from_db()
    assert (job.version, changed.version, changed.name) == (1, 2, "New")
    assert list(JobEvent.objects.values_list("job", "kind", "origin", "origin_ref")) == [
        (changed.pk, "updated", "import", str(import_job.pk))
    ]
