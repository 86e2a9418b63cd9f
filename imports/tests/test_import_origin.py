"""An import's changes record it as their origin (docs/jobs.md, "History"): the events of the
jobs it creates and updates, "the jobs of this import" on the list and the import's page, and
the migration that gave earlier imported events their import."""

import importlib
import io
from collections.abc import Callable

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.urls import reverse

from imports.models import ImportJob
from jobs.models import Job, JobEvent, Printer

pytestmark = pytest.mark.django_db

HEADER = "name,status,printer,reference\n"


@pytest.fixture
def printers(db: None) -> None:
    Printer.objects.create(name="Prusa")


def origins(reference: str) -> list[tuple[str, str, str]]:
    """(kind, origin, origin_ref) of a job's events, oldest first."""
    events = JobEvent.objects.filter(job__reference=reference).order_by("id")
    return list(events.values_list("kind", "origin", "origin_ref"))


def test_an_import_run_by_the_command_records_the_import(
    printers: None, uploader: User, write_csv: Callable
) -> None:
    first = write_csv(HEADER + "Bracket,pending,Prusa,R1\nGear,pending,Prusa,R2\n")
    call_command("import_jobs", str(first), "--sync", "--user", "uploader", stdout=io.StringIO())
    created = ImportJob.objects.get()
    assert origins("R1") == [("imported", "import", str(created.pk))]

    second = write_csv(HEADER + "Bracket v2,running,Prusa,R1\nGear,pending,Prusa,R2\n")
    options = ["--sync", "--user", "uploader", "--on-existing", "update"]
    call_command("import_jobs", str(second), *options, stdout=io.StringIO())
    updated = ImportJob.objects.exclude(pk=created.pk).get()
    assert origins("R1") == [
        ("imported", "import", str(created.pk)),
        ("updated", "import", str(updated.pk)),
    ]
    assert origins("R2") == [("imported", "import", str(created.pk))]  # unchanged: no event


def test_the_list_shows_the_jobs_of_one_import(
    printers: None, run_csv: Callable, client_for: Callable, editor: User
) -> None:
    Job.objects.create(name="Made by hand", reference="HAND")
    first = run_csv(HEADER + "Bracket,pending,Prusa,R1\nGear,pending,Prusa,R2\n")
    second = run_csv(HEADER + "Bracket v2,running,Prusa,R1\nHinge,pending,Prusa,R3\n")
    client = client_for(editor)

    def listed(import_job: ImportJob) -> set[str]:
        response = client.get(reverse("jobs:list"), {"import": str(import_job.pk)})
        assert response.status_code == 200
        return {job.reference for job in response.context["page"].items}

    assert listed(first) == {"R1", "R2"}
    assert listed(second) == {"R1", "R3"}  # the job it updated and the one it created


def test_the_import_page_links_to_its_jobs(
    run_csv: Callable, printers: None, client_for: Callable, editor: User
) -> None:
    import_job = run_csv(HEADER + "Bracket,pending,Prusa,R1\n")
    link = f'<a href="{reverse("jobs:list")}?import={import_job.pk}">Jobs of this import</a>'
    assert link in client_for(editor).get(import_job.get_absolute_url()).content.decode()
    # Without the permission to see jobs there is nothing to link to.
    imports_only = User.objects.create_user("imports-only")
    imports_only.user_permissions.set(Permission.objects.filter(codename="view_importjob"))
    body = client_for(imports_only).get(import_job.get_absolute_url()).content.decode()
    assert import_job.original_filename in body and "Jobs of this import" not in body


def test_the_migration_gives_earlier_imported_events_their_import(
    run_csv: Callable, printers: None
) -> None:
    import_job = run_csv(HEADER + "Bracket,pending,Prusa,R1\n")
    orphan = Job.objects.create(name="Its import was deleted", reference="R2")
    edited = Job.objects.create(name="Edited by hand", reference="R3")
    JobEvent.objects.create(job=orphan, kind="imported")
    JobEvent.objects.create(job=edited, kind="updated")
    JobEvent.objects.update(origin="", origin_ref="")  # as before the migration
    migration = importlib.import_module("jobs.migrations.0004_jobevent_origin")

    migration.backfill_import_origins(apps, None)

    assert origins("R1") == [("imported", "import", str(import_job.pk))]
    assert origins("R2") == [("imported", "import", "")]
    assert origins("R3") == [("updated", "", "")]
