"""The import's writer for existing jobs (imports/writer.py; docs/csv-import.md, "Existing
jobs"): a re-import updates exactly the jobs its rows change, each with one `updated` event
holding the diff, its version up by one and the uploader as `updated_by`, the status through
the status rules with their side effects; a row that changes nothing writes nothing. The same
tests run on SQLite and on PostgreSQL (DATABASE_URL), whose statements differ."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from imports.models import ImportJob
from imports.writer import JobChangedMeanwhile, update_jobs
from jobs.models import Job, JobEvent, Printer

pytestmark = pytest.mark.django_db

Run = Callable[..., ImportJob]
EARLIER = timezone.now() - timedelta(days=1)


def counts(import_job: ImportJob) -> tuple[int, int, int, int, int]:
    return (
        import_job.processed_rows,
        import_job.created_count,
        import_job.updated_count,
        import_job.skipped_count,
        import_job.error_count,
    )


def only_event(job: Job) -> JobEvent:
    event = JobEvent.objects.get(job=job)
    assert event.kind == JobEvent.Kind.UPDATED
    return event


@pytest.fixture
def old_job(db: None) -> Callable[..., Job]:
    """A job as it was before the import: last changed a day ago, by nobody."""

    def make(**fields: Any) -> Job:
        fields.setdefault("name", "Bracket")
        return Job.objects.create(created_at=EARLIER, updated_at=EARLIER, **fields)

    return make


def test_changed_reimport_updates_exactly_the_changed_jobs(
    run_csv: Run, old_job: Callable[..., Job], uploader: User
) -> None:
    printer = Printer.objects.create(name="Form 3")
    notes = old_job(name="A", reference="R1", priority=1, notes="PLA")
    renamed = old_job(name="B", reference="R2", priority=4)
    started = old_job(name="C", reference="R3")
    same = old_job(name="D", reference="R4", priority=2, notes="PETG")

    import_job = run_csv(
        "name,status,priority,notes,printer,reference\n"
        "A,pending,3,PLA 0.2,,R1\n"
        "B2,,4,,Form 3,R2\n"
        "C,running,0,,,R3\n"
        "D,pending,2,PETG,,R4\n"
    )

    assert counts(import_job) == (4, 0, 3, 1, 0)
    for job in (notes, renamed, started, same):
        job.refresh_from_db()
    assert (notes.priority, notes.notes, notes.name) == (3, "PLA 0.2", "A")
    assert only_event(notes).changes == {"priority": [1, 3], "notes": ["PLA", "PLA 0.2"]}
    assert (renamed.name, renamed.printer, renamed.priority) == ("B2", printer, 4)
    assert only_event(renamed).changes == {"name": ["B", "B2"], "printer": [None, "Form 3"]}
    event = only_event(started)
    assert event.changes == {"status": ["pending", "running"]}
    assert started.started_at == event.created_at == started.updated_at
    for job in (notes, renamed, started):
        assert (job.version, job.updated_by) == (2, uploader)
        assert job.updated_at == only_event(job).created_at > EARLIER
        assert only_event(job).actor == uploader
    assert (same.version, same.updated_by, same.updated_at) == (1, None, EARLIER)
    assert not JobEvent.objects.filter(job=same).exists()


@pytest.mark.parametrize(
    ("before", "status", "after"),
    [
        ({"status": "pending"}, "running", {"started_at": "now"}),
        ({"status": "running", "started_at": EARLIER}, "completed", {"completed_at": "now"}),
        ({"status": "running", "started_at": EARLIER}, "failed", {"completed_at": "now"}),
        (
            {"status": "scheduled"},
            "cancelled",
            {"cancelled_at": "now", "cancelled_by": "uploader", "cancellation_reason": ""},
        ),
        (
            {
                "status": "cancelled",
                "cancelled_at": EARLIER,
                "cancelled_by": "someone",
                "cancellation_reason": "Wrong file",
            },
            "pending",
            {"cancelled_at": None, "cancelled_by": None, "cancellation_reason": ""},
        ),
        (
            {"status": "failed", "started_at": EARLIER, "completed_at": EARLIER},
            "pending",
            {"completed_at": None, "started_at": EARLIER},
        ),
    ],
)
def test_a_status_change_brings_its_side_effects(
    run_csv: Run,
    old_job: Callable[..., Job],
    uploader: User,
    before: dict[str, Any],
    status: str,
    after: dict[str, Any],
) -> None:
    people = {"uploader": uploader, "someone": User.objects.create_user("someone")}
    job = old_job(reference="R1", **{k: people.get(v, v) for k, v in before.items()})

    run_csv(f"name,status,reference\nBracket,{status},R1\n")

    job.refresh_from_db()
    event = only_event(job)
    assert event.changes == {"status": [before["status"], status]}
    assert (job.status, job.version, job.updated_by) == (status, 2, uploader)
    moments = {"now": event.created_at, **people}
    for field, value in after.items():
        assert getattr(job, field) == moments.get(value, value), field


def test_unchanged_rows_write_nothing(run_csv: Run, old_job: Callable[..., Job]) -> None:
    printer = Printer.objects.create(name="Form 3")
    jobs = [
        old_job(name="A", reference="R1", status="running", started_at=EARLIER, priority=5),
        old_job(name="B", reference="R2", printer=printer, notes="PLA"),
    ]

    with CaptureQueriesContext(connection) as queries:
        import_job = run_csv(
            "name,status,priority,notes,printer,reference\n"
            "A,running,5,,,R1\n"
            "B,pending,0,PLA,form 3,R2\n"
        )

    assert counts(import_job) == (2, 0, 0, 2, 0)
    assert not [
        q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "jobs_job" in q["sql"]
    ]
    assert not JobEvent.objects.exists()
    for job in jobs:
        job.refresh_from_db()
        assert (job.version, job.updated_at, job.updated_by) == (1, EARLIER, None)


def test_jobs_changing_different_fields_each_get_their_own(
    run_csv: Run, old_job: Callable[..., Job], uploader: User
) -> None:
    """One batch whose rows change different columns (SQLite writes each set with its own
    statement) and whose jobs were last changed by different people."""
    other = User.objects.create_user("other")
    printer = Printer.objects.create(name="Form 3")
    jobs = {
        "R1": old_job(name="A", reference="R1", updated_by=other),
        "R2": old_job(name="B", reference="R2", updated_by=uploader, priority=1),
        "R3": old_job(name="C", reference="R3", is_business=True, customer_name="Acme"),
        "R4": old_job(name="D", reference="R4", printer=printer),
    }

    import_job = run_csv(
        "name,priority,is_business,customer_name,printer,reference\n"
        "A2,0,no,,,R1\n"
        "B,9,no,,,R2\n"
        "C,0,yes,Acme Ltd,,R3\n"
        "D,0,no,,,R4\n"
    )

    assert counts(import_job) == (4, 0, 4, 0, 0)
    fields = ("name", "priority", "is_business", "customer_name", "printer_id", "updated_by")
    found = {job.reference: job for job in Job.objects.filter(reference__in=jobs)}
    assert {ref: tuple(getattr(job, f) for f in fields) for ref, job in found.items()} == {
        "R1": ("A2", 0, False, "", None, uploader),
        "R2": ("B", 9, False, "", None, uploader),
        "R3": ("C", 0, True, "Acme Ltd", None, uploader),
        "R4": ("D", 0, False, "", None, uploader),
    }
    assert {ref: only_event(job).changes for ref, job in found.items()} == {
        "R1": {"name": ["A", "A2"]},
        "R2": {"priority": [1, 9]},
        "R3": {"customer_name": ["Acme", "Acme Ltd"]},
        "R4": {"printer": ["Form 3", None]},
    }
    assert {job.version for job in found.values()} == {2}


def test_updates_in_several_batches(
    run_csv: Run, old_job: Callable[..., Job], settings: Any
) -> None:
    settings.IMPORT_BATCH_SIZE = 2
    for number in range(5):
        old_job(name=f"Job {number}", reference=f"R{number}")

    import_job = run_csv(
        "name,reference\n" + "".join(f"Job {number} v2,R{number}\n" for number in range(5))
    )

    assert counts(import_job) == (5, 0, 5, 0, 0)
    assert import_job.checkpoint == 5
    for job in Job.objects.all():
        assert (job.name, job.version) == (f"{job.name.removesuffix(' v2')} v2", 2)
        assert only_event(job).changes == {"name": [job.name.removesuffix(" v2"), job.name]}


def test_a_job_whose_version_moved_is_not_written(
    old_job: Callable[..., Job], uploader: User
) -> None:
    """The writer checks each job's version: a job changed after it was read (which the
    batch's lock rules out) fails the batch instead of being overwritten."""
    job = old_job(name="Old", reference="R1")
    read = Job.objects.get(pk=job.pk)
    Job.objects.filter(pk=job.pk).update(name="Someone else's", version=F("version") + 1)

    run = ImportJob.objects.create(original_filename="jobs.csv", file_hash="0" * 64)

    with pytest.raises(JobChangedMeanwhile), transaction.atomic():
        update_jobs(
            [(read, {"name": "Mine"})], actor=uploader, at=timezone.now(), source_import=run
        )

    job.refresh_from_db()
    assert (job.name, job.version) == ("Someone else's", 2)
    assert not JobEvent.objects.exists()


def test_a_job_changed_after_the_batch_was_planned_is_planned_again(
    run_csv: Run, old_job: Callable[..., Job], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch is planned before its transaction: someone who edits one of its jobs in
    between fails the write, and the batch is planned again from fresh data, with its jobs
    locked, so both changes stay and the import's is written once."""
    from imports.importer import Importer

    job = old_job(name="Old", reference="R1", priority=1)
    planned = Importer.plan

    def plan_then_edit(self: Importer, batch: Any, *, lock: bool) -> Any:
        plan = planned(self, batch, lock=lock)
        if not lock:
            Job.objects.filter(pk=job.pk).update(notes="Someone else's", version=F("version") + 1)
        return plan

    monkeypatch.setattr(Importer, "plan", plan_then_edit)
    import_job = run_csv("name,priority,reference\nOld,5,R1\n")

    assert counts(import_job) == (1, 0, 1, 0, 0)
    job.refresh_from_db()
    assert (job.priority, job.notes, job.version) == (5, "Someone else's", 3)
    assert only_event(job).changes == {"priority": [1, 5]}
