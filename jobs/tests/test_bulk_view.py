"""The list page's bulk status bar: POST /jobs/bulk-status/ through jobs.bulk."""

import json

import pytest
from django.urls import reverse

from jobs import views
from jobs.models import Job, JobEvent

pytestmark = pytest.mark.django_db
URL = reverse("jobs:bulk-status")
LIST = reverse("jobs:list")


def statuses(*jobs: Job) -> list[str]:
    return [Job.objects.get(pk=job.pk).status for job in jobs]


def toast(response) -> dict:
    return json.loads(response["HX-Trigger"])["jobsite:toast"]


def test_list_shows_checkboxes_and_bar_for_editors_only(
    client_for, editor, viewer, make_job
) -> None:
    job = make_job()
    client = client_for(editor)
    body = client.get(LIST).content.decode()
    assert f'name="ids" value="{job.pk}" form="bulk-form"' in body
    assert 'id="bulk-form"' in body and "data-select-page" in body
    client = client_for(viewer)
    body = client.get(LIST).content.decode()
    assert 'name="ids"' not in body and "bulk-form" not in body


def test_selected_jobs_change_and_the_table_refreshes(client_for, editor, make_job) -> None:
    first, second, untouched = make_job(name="A"), make_job(name="B"), make_job(name="C")
    client = client_for(editor)
    response = client.post(
        URL,
        {"ids": [first.pk, second.pk], "status": "running", "query": "sort=name"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#job-table" and response["HX-Reswap"] == "outerHTML"
    assert toast(response) == {"message": "Set 2 jobs to running.", "level": "success"}
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="job-table"')
    assert body.count("badge-running") == 2
    # The refreshed table keeps the list's sort: links point at the list, not the POST url.
    assert 'href="/jobs/?sort=-name"' in body
    assert statuses(first, second, untouched) == ["running", "running", "pending"]
    first.refresh_from_db()
    assert first.updated_by == editor and first.version == 2
    assert JobEvent.objects.filter(job__in=[first, second]).count() == 2


def test_one_failing_job_changes_nothing_and_is_named(client_for, editor, make_job) -> None:
    ok, done = make_job(name="Fine"), make_job(name="Finished", status="completed")
    client = client_for(editor)
    response = client.post(
        URL, {"ids": [ok.pk, done.pk], "status": "running"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#bulk-result"
    assert toast(response) == {"message": "Nothing was changed.", "level": "error"}
    body = response.content.decode()
    assert f"Finished</a> (#{done.pk}): A completed job cannot be moved to running." in body
    assert "1 other selected job could have changed" in body
    assert statuses(ok, done) == ["pending", "completed"]
    assert not JobEvent.objects.exists()


def test_missing_and_malformed_ids_are_reported(client_for, editor, make_job) -> None:
    job = make_job()
    client = client_for(editor)
    response = client.post(
        URL, {"ids": [job.pk, 999999, "abc"], "status": "running"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert "#999999:" in body and "#abc: The id must be a positive whole number." in body
    assert statuses(job) == ["pending"]


def test_repeated_ids_are_refused(client_for, editor, make_job) -> None:
    job = make_job()
    client = client_for(editor)
    response = client.post(
        URL, {"ids": [job.pk, job.pk], "status": "running"}, HTTP_HX_REQUEST="true"
    )
    assert "Repeated ids" in response.content.decode()
    assert statuses(job) == ["pending"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "running"}, "Select at least one job first."),
        ({"ids": ["1"], "status": ""}, "Choose the status to apply."),
    ],
)
def test_nothing_selected_or_no_status(client_for, editor, make_job, data, message) -> None:
    make_job()
    client = client_for(editor)
    response = client.post(URL, data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and message in response.content.decode()
    assert not JobEvent.objects.exists()


def test_status_is_checked_by_the_bulk_function(client_for, editor, make_job) -> None:
    job = make_job()
    client = client_for(editor)
    response = client.post(URL, {"ids": [job.pk], "status": "Completed "}, HTTP_HX_REQUEST="true")
    assert "The status must be exactly one of" in response.content.decode()
    assert statuses(job) == ["pending"]


def test_select_all_matching_asks_to_confirm_a_bulk_run(
    client_for, editor, make_job, monkeypatch
) -> None:
    """Every job matching the filters is a bulk run, whatever their number
    (docs/bulk-runs.md); the confirmation shows the count and changes nothing yet."""
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    business = [make_job(name=f"B{n}", is_business=True, customer_name="Acme") for n in range(3)]
    private = make_job(name="P")
    client = client_for(editor)
    body = client.get(LIST, {"is_business": "true"}).content.decode()
    assert "Select all 3 jobs matching these filters" in body
    response = client.post(
        URL,
        {"scope": "matching", "query": "is_business=true", "status": "scheduled"},
        HTTP_HX_REQUEST="true",
    )
    assert response["HX-Retarget"] == "#bulk-result"
    assert "Set status to scheduled: 3 jobs" in response.content.decode()
    assert statuses(*business, private) == ["pending"] * 4


def test_without_htmx_redirects_back_with_messages(client_for, editor, make_job) -> None:
    ok, done = make_job(name="Fine"), make_job(name="Finished", status="completed")
    client = client_for(editor)
    response = client.post(
        URL, {"ids": [ok.pk], "status": "running", "query": "status=pending"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/jobs/?status=pending"
    assert "Set 1 job to running." in response.content.decode()
    response = client.post(URL, {"ids": [done.pk], "status": "running"}, follow=True)
    body = response.content.decode()
    assert "Nothing was changed." in body
    assert "Job “Finished”: A completed job cannot be moved to running." in body
    assert statuses(ok, done) == ["running", "completed"]


def test_permissions(client, client_for, viewer, make_job) -> None:
    job = make_job()
    response = client.post(URL, {"ids": [job.pk], "status": "running"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client = client_for(viewer)
    assert client.post(URL, {"ids": [job.pk], "status": "running"}).status_code == 403
    assert client.get(URL).status_code in (403, 405)
    assert statuses(job) == ["pending"]


def test_get_is_not_allowed(client_for, editor) -> None:
    client = client_for(editor)
    assert client.get(URL).status_code == 405


def test_csrf_is_enforced(client_for, editor, make_job) -> None:
    job = make_job()
    client = client_for(editor, enforce_csrf_checks=True)
    response = client.post(URL, {"ids": [job.pk], "status": "running"})
    assert response.status_code == 403
    assert statuses(job) == ["pending"]


def test_job_name_with_script_is_escaped_in_failure_panel(client_for, editor, make_job) -> None:
    job = make_job(name="<script>x()</script>", status="completed")
    client = client_for(editor)
    body = client.post(
        URL, {"ids": [job.pk], "status": "running"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<script>x()</script>" not in body and "&lt;script&gt;x()&lt;/script&gt;" in body
