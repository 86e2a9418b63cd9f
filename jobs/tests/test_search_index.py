"""The text-search index stays right after every way a job is written or deleted.

On SQLite the index is a table of its own kept by triggers: after each write, FTS5's
integrity check compares it with jobs_job, and the search finds the new text and no longer
the old. On PostgreSQL the trigram indexes are ordinary indexes; the same searches run there.
"""

import io
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from imports.models import ImportJob
from imports.writer import insert_jobs, update_jobs
from jobs.bulk import bulk_update_status
from jobs.models import Job
from jobs.search import text_filter

pytestmark = pytest.mark.django_db


def found(text: str) -> set[int]:
    return set(text_filter(Job.objects.all(), text).values_list("pk", flat=True))


def assert_index_in_sync() -> None:
    """On SQLite, FTS5 checks the index against the jobs table (a mismatch raises)."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO job_search(job_search, rank) VALUES ('integrity-check', 1)")


@pytest.fixture
def actor() -> User:
    return User.objects.create_user("writer")


def test_orm_create_save_and_delete(make_job) -> None:
    job = make_job(name="Gearbox housing", customer_name="Acme", file_name="box.3mf")
    assert found("gearbox") == found("acme") == found("box.3mf") == {job.pk}
    job.name = "Lid"
    job.save()
    assert found("gearbox") == set() and found("lid") == {job.pk}
    job.reference = "REF-77"
    job.save(update_fields=["reference"])
    assert found("ref-77") == {job.pk}
    assert_index_in_sync()
    job.delete()
    assert found("lid") == found("ref-77") == set()
    assert_index_in_sync()


def test_insert_apply_changes_and_cancel(actor) -> None:
    job = Job(name="Spacer ring", customer_name="Globex", is_business=True)
    job.insert(actor=actor, origin="ui")
    assert found("spacer") == {job.pk}
    job.apply_changes({"name": "Washer", "file_name": "washer.gcode"}, actor=actor, origin="ui")
    assert found("spacer") == set()
    assert found("washer") == found("gcode") == {job.pk}
    job.cancel(actor=actor, origin="ui")
    assert found("washer") == {job.pk}
    assert_index_in_sync()


def test_queryset_update_and_bulk_status(make_job, actor) -> None:
    jobs = [make_job(name=f"Panel {n}") for n in range(3)]
    Job.objects.filter(pk__in=[jobs[0].pk, jobs[1].pk]).update(
        name=Concat(F("name"), Value(" v2")), customer_name="Initech"
    )
    assert found('"panel 0 v2"') == {jobs[0].pk}
    assert found("initech") == {jobs[0].pk, jobs[1].pk}
    # Only the status and its side effects change; the text stays found.
    result = bulk_update_status(
        [{"id": job.pk, "status": "running"} for job in jobs], actor=actor, origin="bulk"
    )
    assert result["updated_count"] == 3
    assert found("panel") == {job.pk for job in jobs}
    Job.objects.filter(pk=jobs[2].pk).delete()
    assert found("panel") == {jobs[0].pk, jobs[1].pk}
    assert_index_in_sync()


def test_the_import_writers_raw_statements(actor) -> None:
    run = ImportJob.objects.create(original_filename="j.csv", file_hash="0" * 64, created_by=actor)
    row = {
        "status": "pending",
        "priority": 0,
        "is_business": False,
        "customer_name": "",
        "notes": "",
        "file_name": "",
        "printer": None,
    }
    new_jobs = [{**row, "name": f"Imported knob {n}", "reference": f"IMP-{n}"} for n in range(3)]
    with transaction.atomic():
        assert insert_jobs(new_jobs, actor=actor, at=timezone.now(), source_import=run) == 3
    assert len(found("imported knob")) == 3
    assert len(found("imp-")) == 3
    job = Job.objects.get(reference="IMP-1")
    with transaction.atomic():
        update_jobs(
            [(job, {"name": "Renamed clip"})], actor=actor, at=timezone.now(), source_import=run
        )
    assert found('"renamed clip"') == {job.pk}
    assert len(found('"imported knob"')) == 2
    assert_index_in_sync()


def test_a_whole_import_run(tmp_path: Path, actor) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("name,reference,file_name\nHinge left,H-1,hinge.stl\nHinge right,H-2,\n")
    call_command("import_jobs", str(path), "--sync", "--user", "writer", stdout=io.StringIO())
    assert len(found("hinge")) == 2
    path.write_text("name,reference,file_name\nBracket left,H-1,hinge.stl\n")
    call_command(
        "import_jobs", str(path), "--sync", "--force", "--user", "writer", stdout=io.StringIO()
    )
    assert found('"hinge right"') == {Job.objects.get(reference="H-2").pk}
    assert found('"bracket left"') == found("hinge.stl") == {Job.objects.get(reference="H-1").pk}
    assert found('"hinge left"') == set()
    assert found("hinge left") == {Job.objects.get(reference="H-1").pk}  # two words, anywhere
    assert_index_in_sync()


def test_the_migration_filled_the_index_for_rows_written_before_it(make_job) -> None:
    """The migration's 'rebuild' fills the table from jobs_job; a rebuild now must leave
    the very same index (the triggers kept it) and the same answers."""
    job = make_job(name="Knob", reference="K-1")
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO job_search(job_search) VALUES ('rebuild')")
    assert found("knob") == found("k-1") == {job.pk}
    assert_index_in_sync()
