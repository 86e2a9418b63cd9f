"""POST /api/v1/jobs/bulk-status: the atomic contract of docs/bulk-status.md over HTTP."""

import json
from unittest import mock

import pytest
from django.db import OperationalError

from jobs.models import Job, JobEvent

PROBLEM = "application/problem+json"
URL = "/api/v1/jobs/bulk-status"


@pytest.fixture
def api(client_for, editor):
    return client_for(editor)


def post(client, body):
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.post(URL, raw, content_type="application/json")


def test_all_written_is_200_with_the_contracts_body(api, make_job):
    jobs = [make_job(), make_job()]
    response = post(api, [{"id": job.pk, "status": "running"} for job in jobs])
    assert response.status_code == 200
    body = response.json()
    assert (body["updated_count"], body["failed_count"]) == (2, 0)
    assert [item["success"] for item in body["results"]] == [True, True]
    assert set(Job.objects.values_list("status", flat=True)) == {"running"}
    origins = set(JobEvent.objects.values_list("origin", "origin_ref"))
    assert len(origins) == 1 and next(iter(origins))[0] == JobEvent.Origin.API


def test_a_failed_item_is_422_with_per_item_codes_and_nothing_written(api, make_job):
    good = make_job()
    done = make_job(status="completed")
    response = post(
        api,
        [
            {"id": good.pk, "status": "running"},
            {"id": done.pk, "status": "running"},
            {"id": "7", "status": "running"},
            {"id": 999999, "status": "running"},
            {"id": good.pk + 1000, "status": "Running"},
        ],
    )
    assert response.status_code == 422
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == "BULK_FAILED"
    assert (body["updated_count"], body["failed_count"]) == (0, 5)
    codes = [item["error"]["code"] for item in body["results"]]
    assert codes == ["ROLLED_BACK", "INVALID_TRANSITION", "INVALID_ID", "NOT_FOUND", "NOT_FOUND"]
    assert body["results"][2]["id"] == "7"
    good.refresh_from_db()
    assert good.status == "pending" and not JobEvent.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        '{"id": 1}',
        "[1, 2]",
        json.dumps([{"id": 1, "status": "running"}] * 2),
        "not json",
        json.dumps([{"id": n, "status": "running"} for n in range(1, 102)]),
    ],
)
def test_a_top_level_validation_error_is_400(api, body):
    response = post(api, body)
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert response.json()["retryable"] is False


def test_a_busy_database_is_503_retryable(api, make_job):
    job = make_job()
    with mock.patch("jobs.bulk._apply", side_effect=OperationalError("database is locked")):
        response = post(api, [{"id": job.pk, "status": "running"}])
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "DB_ERROR" and body["retryable"] is True


def test_bulk_needs_the_change_permission(client_for, viewer, make_job):
    job = make_job()
    response = post(client_for(viewer), [{"id": job.pk, "status": "running"}])
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == "pending"
