"""Every surface that edits a job's fields requires the version the edit is based on.

Red-team finding: a POST to /jobs/<id>/edit/ (or the admin change form) without `version`, or
with an empty one, saved over someone else's change.
"""

import pytest
from django.urls import reverse

from jobs.forms import VERSION_MISSING
from jobs.models import Job

pytestmark = pytest.mark.django_db

MESSAGE = "did not say which version of the job it edits"


def page_text(response) -> str:
    return response.content.decode().replace("&#x27;", "'")


@pytest.fixture
def changed_job(make_job, admin_user) -> Job:
    """A job someone else has changed since it was created (version 2)."""
    job = make_job(name="Bracket", priority=2)
    job.apply_changes({"priority": 5}, actor=admin_user, origin="ui")
    return job


def edit_post(job: Job, **overrides) -> dict:
    data = {
        "name": "Mine",
        "status": job.status,
        "priority": 9,
        "customer_name": "",
        "notes": "",
        "file_name": "",
        "printer": "",
    }
    data.update(overrides)
    return data


def assert_untouched(job: Job) -> None:
    job.refresh_from_db()
    assert (job.name, job.priority, job.version) == ("Bracket", 5, 2)
    assert job.events.count() == 1


@pytest.mark.parametrize("version", [None, "", "  ", "two", "2.0"], ids=repr)
def test_edit_view_refuses_a_missing_or_malformed_version(
    client_for, editor, changed_job, version
) -> None:
    client = client_for(editor)
    data = edit_post(changed_job)
    if version is not None:
        data["version"] = version
    response = client.post(
        reverse("jobs:edit", args=[changed_job.pk]), data, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "HX-Retarget" not in response
    assert MESSAGE in page_text(response)
    assert_untouched(changed_job)


def test_edit_view_without_htmx_refuses_a_missing_version(client_for, editor, changed_job) -> None:
    client = client_for(editor)
    response = client.post(reverse("jobs:edit", args=[changed_job.pk]), edit_post(changed_job))
    assert response.status_code == 200 and MESSAGE in page_text(response)
    assert_untouched(changed_job)


def test_edit_view_with_the_current_version_saves(client_for, editor, changed_job) -> None:
    client = client_for(editor)
    data = edit_post(changed_job, version=2)
    response = client.post(reverse("jobs:edit", args=[changed_job.pk]), data)
    assert response.status_code == 302
    changed_job.refresh_from_db()
    assert (changed_job.name, changed_job.priority, changed_job.version) == ("Mine", 9, 3)


def admin_post(job: Job, **overrides) -> dict:
    return {**edit_post(job), "events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0", **overrides}


@pytest.mark.parametrize("version", [None, "", "x"], ids=repr)
def test_admin_change_form_refuses_a_missing_or_malformed_version(
    client_for, admin_user, changed_job, version
) -> None:
    client = client_for(admin_user)
    data = admin_post(changed_job)
    if version is not None:
        data["version"] = version
    response = client.post(reverse("admin:jobs_job_change", args=[changed_job.pk]), data)
    assert response.status_code == 200
    # A non-field error: the admin hides the rows of hidden inputs, errors included.
    assert VERSION_MISSING in response.context["adminform"].form.non_field_errors()
    assert MESSAGE in page_text(response)
    assert_untouched(changed_job)


def test_admin_add_form_needs_no_version(client_for, admin_user) -> None:
    client = client_for(admin_user)
    data = admin_post(Job(name="New"), name="New part")
    response = client.post(reverse("admin:jobs_job_add"), data)
    assert response.status_code == 302
    assert Job.objects.get(name="New part").version == 1
