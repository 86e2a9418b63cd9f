"""/api/v1/bulk-runs (docs/bulk-runs.md, "API"): start a run with a token, follow it, cancel
it; bad requests are problem documents and start nothing."""

import json

import pytest
from django.test import Client

from jobs.bulk_runs import run_bulk_run
from jobs.models import BulkRun, Job, JobEvent
from jobsite.models import ApiToken

PROBLEM = "application/problem+json"
URL = "/api/v1/bulk-runs"
pytestmark = pytest.mark.django_db


@pytest.fixture
def api(editor):
    """A client with the editor's API token (no session)."""
    _, secret = ApiToken.issue(user=editor, name="script")
    return Client(headers={"Authorization": f"Bearer {secret}"})


def post(client, body):
    return client.post(URL, json.dumps(body), content_type="application/json")


def test_post_starts_a_run_that_get_follows_to_its_report(
    api, editor, make_job, django_capture_on_commit_callbacks, task_queue
):
    make_job(name="A", status="failed")
    make_job(name="B", status="running")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, {"action": "retry_failed", "filter": "q=-status:cancelled"})
    assert response.status_code == 202, response.content
    body = response.json()
    run = BulkRun.objects.get(pk=body["id"])
    assert response["Location"] == body["url"] == f"{URL}/{run.pk}"
    assert (body["status"], body["query"], body["created_by"], body["origin"]) == (
        "pending",
        "q=-status:cancelled",
        "editor",
        "api",
    )
    assert run.task_id and task_queue.queue_size() == 1

    run_bulk_run(run.pk)
    body = api.get(body["url"]).json()
    assert (body["status"], body["changed_count"], body["skipped_count"]) == ("completed", 1, 1)
    assert body["skipped_by_reason"] == {"Not failed (the job is running).": 1}
    assert body["progress"] == 100
    event = JobEvent.objects.get(origin="bulk")
    assert (event.origin_ref, event.actor) == (str(run.pk), editor)


def test_job_ids_select_those_jobs(api, make_job):
    jobs = [make_job(name=f"J{n}") for n in range(3)]
    response = post(api, {"action": "set_priority", "priority": 9, "job_ids": [jobs[1].pk]})
    run_bulk_run(response.json()["id"])
    assert list(Job.objects.order_by("pk").values_list("priority", flat=True)) == [0, 9, 0]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"action": "cancel", "filter": "q=priority:high"}, "priority"),
        ({"action": "set_status", "status": "done"}, "status must be one of"),
        ({"action": "set_priority", "priority": 42}, "from 0 to 10"),
        ({"action": "set_printer", "printer": "Nope"}, "No printer is called"),
    ],
)
def test_a_bad_request_is_422_and_starts_nothing(api, make_job, body, detail):
    make_job()
    response = post(api, body)
    assert response.status_code == 422
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "INVALID_BULK_RUN"
    assert detail in response.json()["detail"]
    assert not BulkRun.objects.exists()


def test_an_unknown_action_is_422(api):
    response = post(api, {"action": "delete"})
    assert response.status_code == 422
    assert "action" in response.json()["errors"]


def test_delete_cancels_then_409_once_finished(api, make_job):
    make_job()
    run_id = post(api, {"action": "cancel"}).json()["id"]
    response = api.delete(f"{URL}/{run_id}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    again = api.delete(f"{URL}/{run_id}")
    assert again.status_code == 409
    assert again.json()["code"] == "NOT_CANCELLABLE"
    assert api.get(f"{URL}/99999").status_code == 404


def test_permissions(viewer, make_job):
    make_job()
    _, secret = ApiToken.issue(user=viewer, name="read")
    reader = Client(headers={"Authorization": f"Bearer {secret}"})
    assert post(reader, {"action": "cancel"}).status_code == 403
    assert Client().get(f"{URL}/1").status_code == 401
    assert not BulkRun.objects.exists()
