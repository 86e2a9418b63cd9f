"""Every change records the surface it came from (docs/jobs.md, "History"): JobEvent.origin
on each write path, the bulk change's batch id, and the history. An import's origin, and the
migration's backfill of imported events, are tested in imports/tests/test_import_origin.py."""

import io
import uuid

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import call_command
from django.urls import reverse

from jobs.bulk import bulk_update_status
from jobs.models import Job, JobEvent, changed_from
from jobs.tests.plans import query_plan

pytestmark = pytest.mark.django_db

Origin = JobEvent.Origin


def latest_event(job: Job) -> JobEvent:
    return job.events.order_by("-id").first()


@pytest.fixture
def job(make_job, printer) -> Job:
    return make_job(name="Bracket", printer=printer)


def test_the_edit_dialog_records_the_web_page(client_for, editor, job) -> None:
    data = {"name": "Bracket v2", "status": "pending", "priority": 4, "version": job.version}
    data |= {"printer": job.printer_id, "customer_name": "", "notes": "", "file_name": ""}
    response = client_for(editor, htmx=True).post(reverse("jobs:edit", args=[job.pk]), data)
    assert response.status_code == 200
    event = latest_event(job)
    assert (event.kind, event.origin, event.origin_ref) == ("updated", Origin.UI, "")


def test_cancelling_from_the_page_records_the_web_page(client_for, editor, job) -> None:
    data = {"reason": "customer called", "version": job.version}
    response = client_for(editor, htmx=True).post(reverse("jobs:cancel", args=[job.pk]), data)
    assert response.status_code == 200
    event = latest_event(job)
    assert (event.kind, event.origin, event.origin_ref) == ("cancelled", Origin.UI, "")


def test_an_admin_change_records_the_admin(client_for, admin_user, job) -> None:
    data = {"name": job.name, "status": "running", "priority": 5, "printer": job.printer_id}
    data |= {"customer_name": "", "notes": "", "file_name": "", "version": job.version}
    data |= {"events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0"}
    response = client_for(admin_user).post(reverse("admin:jobs_job_change", args=[job.pk]), data)
    assert response.status_code == 302
    assert latest_event(job).origin == Origin.ADMIN


def test_a_job_added_in_the_admin_records_the_admin(client_for, admin_user) -> None:
    data = {"name": "New part", "status": "pending", "priority": 0, "printer": ""}
    data |= {"customer_name": "", "notes": "", "file_name": "", "version": ""}
    data |= {"events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0"}
    response = client_for(admin_user).post(reverse("admin:jobs_job_add"), data)
    assert response.status_code == 302
    event = JobEvent.objects.get(job__name="New part")
    assert (event.kind, event.origin) == ("created", Origin.ADMIN)


def test_the_admin_action_records_the_admin_and_one_batch(client_for, admin_user, make_job):
    jobs = [make_job(name=f"Part {n}") for n in range(3)]
    data = {
        "action": "change_status",
        ACTION_CHECKBOX_NAME: [job.pk for job in jobs],
        "status": "scheduled",
        "apply": "Change status",
    }
    response = client_for(admin_user).post(reverse("admin:jobs_job_changelist"), data)
    assert response.status_code == 302
    events = JobEvent.objects.filter(job__in=jobs)
    assert {(event.origin, event.kind) for event in events} == {(Origin.ADMIN, "status_changed")}
    (batch,) = {event.origin_ref for event in events}
    assert uuid.UUID(batch)


def test_the_lists_bulk_bar_records_the_web_page(client_for, editor, make_job) -> None:
    jobs = [make_job(name=f"Part {n}") for n in range(2)]
    client = client_for(editor, htmx=True)
    data = {"ids": [job.pk for job in jobs], "status": "running"}
    assert client.post(reverse("jobs:bulk-status"), data).status_code == 200
    first = {(event.origin, event.origin_ref) for event in JobEvent.objects.filter(job__in=jobs)}
    assert len(first) == 1 and next(iter(first))[0] == Origin.UI

    data["status"] = "completed"
    assert client.post(reverse("jobs:bulk-status"), data).status_code == 200
    second = JobEvent.objects.filter(job__in=jobs, changes__status__1="completed")
    assert {event.origin for event in second} == {Origin.UI}
    # Each batch has an id of its own: the jobs that changed together, and only they.
    assert {event.origin_ref for event in second}.isdisjoint(ref for _, ref in first)


def test_the_bulk_command_records_the_command_line(admin_user, make_job) -> None:
    jobs = [make_job(name=f"Part {n}") for n in range(2)]
    ids = ",".join(str(job.pk) for job in jobs)
    out = io.StringIO()
    call_command(
        "bulk_update_status", "--ids", ids, "--status", "scheduled", "--user", "admin", stdout=out
    )
    events = JobEvent.objects.filter(job__in=jobs)
    assert {(event.origin, event.actor) for event in events} == {(Origin.CLI, admin_user)}


def test_an_unknown_origin_is_a_programming_error_and_writes_nothing(job) -> None:
    with pytest.raises(ValueError, match="Unknown origin"):
        bulk_update_status([{"id": job.pk, "status": "running"}], actor=None, origin="web")
    job.refresh_from_db()
    assert (job.status, job.version, job.events.count()) == ("pending", 1, 0)


def test_seed_demo_records_the_command_line(tmp_path, settings) -> None:
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", stdout=io.StringIO())
    assert JobEvent.objects.exists()
    assert set(JobEvent.objects.values_list("origin", flat=True)) == {Origin.CLI}


def test_the_history_names_the_origin(client_for, editor, job) -> None:
    job.apply_changes({"priority": 3}, actor=editor, origin=Origin.ADMIN)
    body = client_for(editor).get(job.get_absolute_url()).content.decode()
    assert "by editor · Admin," in body


def test_the_history_links_an_imported_change_to_the_jobs_of_its_import(
    client_for, editor, job
) -> None:
    ref = str(uuid.uuid4())
    job.apply_changes({"priority": 3}, actor=editor, origin=Origin.IMPORT, origin_ref=ref)
    body = client_for(editor).get(job.get_absolute_url()).content.decode()
    assert f'href="{reverse("jobs:list")}?import={ref}"' in body


def test_an_event_from_before_origins_shows_none(client_for, editor, job) -> None:
    JobEvent.objects.create(job=job, actor=editor, kind="updated", changes={"priority": [0, 1]})
    body = client_for(editor).get(job.get_absolute_url()).content.decode()
    assert "by editor, <time" in body


# Finding jobs by origin: `import=` / `import:` and `origin=` / `origin:` -----------------------


@pytest.fixture
def by_origin(make_job, editor) -> dict[str, Job]:
    """A job per origin; the two imported ones by different imports, one also edited."""
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    jobs = {
        "first": make_job(name="First import's"),
        "second": make_job(name="Second import's"),
        "admin": make_job(name="Admin's"),
        "ui": make_job(name="Web page's"),
    }
    JobEvent.objects.create(job=jobs["first"], kind="imported", origin="import", origin_ref=first)
    JobEvent.objects.create(job=jobs["second"], kind="imported", origin="import", origin_ref=second)
    JobEvent.objects.create(job=jobs["admin"], kind="created", origin="admin")
    JobEvent.objects.create(job=jobs["ui"], kind="created", origin="ui")
    jobs["second"].apply_changes({"priority": 2}, actor=editor, origin=Origin.UI)
    jobs["refs"] = (first, second)
    return jobs


def listed(client, **params) -> tuple[set[str], str]:
    response = client.get(reverse("jobs:list"), params)
    assert response.status_code == 200
    return {job.name for job in response.context["page"].items}, response.content.decode()


def test_the_list_shows_the_jobs_of_one_import(client_for, editor, by_origin) -> None:
    first, second = by_origin["refs"]
    client = client_for(editor)
    names, body = listed(client, **{"import": first})
    assert names == {"First import's"}
    # A chip says so and removes it; the form carries the import along to the next filter.
    assert f"<code>import:{first}</code>" in body
    assert f'type="hidden" name="import" value="{first}"' in body
    names, _ = listed(client, **{"import": second.replace("-", "").upper()})
    assert names == {"Second import's"}


def test_the_search_box_takes_import_and_origin(client_for, editor, by_origin) -> None:
    first, second = by_origin["refs"]
    client = client_for(editor)
    assert listed(client, q=f"import:{first},{second}")[0] == {"First import's", "Second import's"}
    assert listed(client, q=f"-import:{first} -origin:ui")[0] == {"Admin's"}
    assert listed(client, q="origin:ui")[0] == {"Web page's", "Second import's"}
    assert listed(client, q=f"origin:import second import:{second}")[0] == {"Second import's"}


def test_the_origin_field_lists_jobs_changed_from_there(client_for, editor, by_origin) -> None:
    names, body = listed(client_for(editor), origin="admin")
    assert names == {"Admin's"}
    assert "<code>origin:admin</code>" in body


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"import": "12"}, "Import: Enter a valid UUID."),
        ({"origin": "web"}, "Changed from: Select a valid choice."),
        ({"q": "import:12"}, "“12” is not an import&#x27;s id"),
        (
            {"q": "origin:web"},
            "unknown origin “web” (one of ui, admin, cli, api, mcp, import, bulk)",
        ),
    ],
)
def test_a_bad_import_or_origin_shows_no_jobs_and_says_why(
    client_for, editor, by_origin, params, message
) -> None:
    names, body = listed(client_for(editor), **params)
    assert names == set()
    assert message in body


def test_the_import_filter_reads_the_origin_index(by_origin) -> None:
    jobs = Job.objects.filter(changed_from(["import"], refs=[by_origin["refs"][0]])).values("pk")
    plan = query_plan(*jobs.query.sql_with_params(), without=("seqscan",))
    assert "jobevent_origin_job_idx" in plan
