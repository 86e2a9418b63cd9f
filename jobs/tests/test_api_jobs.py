"""The jobs endpoints of the API (docs/api.md, "Jobs"). Clients here log in with a session
(the tests run without CSRF enforcement); tokens are tested in jobsite/tests/test_api_auth.py."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.serializers.json import DjangoJSONEncoder

from jobs.models import Job, JobEvent, Printer

PROBLEM = "application/problem+json"


@pytest.fixture
def api(client_for, editor):
    editor.user_permissions.add(Permission.objects.get(codename="add_job"))
    return client_for(editor)


def send(client, method, url, body=None, **headers):
    return getattr(client, method)(
        url,
        json.dumps(body) if body is not None else None,
        content_type="application/json",
        headers=headers,
    )


def test_list_pages_by_cursor_with_filters_and_search(api, make_job):
    for number in range(5):
        make_job(name=f"Gear {number}", status="running" if number % 2 else "pending")
    make_job(name="Bracket", status="running")
    first = api.get("/api/v1/jobs", {"q": "gear", "status": "running", "limit": 1, "sort": "name"})
    assert first.status_code == 200
    assert [item["name"] for item in first.json()["items"]] == ["Gear 1"]
    second = api.get(
        "/api/v1/jobs",
        {
            "q": "gear",
            "status": "running",
            "limit": 1,
            "sort": "name",
            "cursor": first.json()["next_cursor"],
        },
    )
    assert [item["name"] for item in second.json()["items"]] == ["Gear 3"]
    assert second.json()["next_cursor"] is None
    item = second.json()["items"][0]
    assert item["url"] == f"/api/v1/jobs/{item['id']}" and item["version"] == 1


def _every_page(client, params):
    """The ids of every item, following next_cursor from the first page."""
    ids, cursor = [], None
    while True:
        page = client.get("/api/v1/jobs", params | ({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.content
        ids += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return ids


def _spread_updates(jobs):
    """Update times with ties, so the pages must break them by id."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for number, job in enumerate(jobs):
        Job.objects.filter(pk=job.pk).update(updated_at=start + timedelta(hours=number // 3))


def test_several_statuses_page_through_every_match_in_update_order(api, make_job):
    statuses = ["pending", "running", "completed", "running", "pending", "failed"]
    _spread_updates([make_job(name=f"Job {n}", status=statuses[n % 6]) for n in range(20)])
    chosen = Job.objects.filter(status__in=["pending", "running"])
    newest_first = list(chosen.order_by("-updated_at", "-id").values_list("id", flat=True))
    params = {"status": ["pending", "running"], "limit": 3}
    assert _every_page(api, params) == newest_first
    oldest_first = list(chosen.order_by("updated_at", "id").values_list("id", flat=True))
    assert _every_page(api, params | {"sort": "updated"}) == oldest_first
    assert _every_page(api, {"q": "status:pending,running", "limit": 4}) == newest_first


def test_the_unfiltered_list_pages_through_every_job(api, make_job):
    _spread_updates([make_job(name=f"Job {n:02}") for n in range(11)])
    job = make_job(name="Zoë’s «gear»", customer_name="Café")
    item = api.get("/api/v1/jobs").json()["items"][0]
    assert (item["name"], item["customer_name"]) == ("Zoë’s «gear»", "Café")
    job.refresh_from_db()  # times as Django's encoder writes them: milliseconds, then Z
    assert item["created_at"] == DjangoJSONEncoder().default(job.created_at)
    assert item["created_at"].endswith("Z") and item["started_at"] is None
    everything = Job.objects.order_by("-updated_at", "-id").values_list("id", flat=True)
    assert _every_page(api, {"limit": 4}) == list(everything)
    by_name = Job.objects.order_by("name", "id").values_list("id", flat=True)
    assert _every_page(api, {"limit": 4, "sort": "name"}) == list(by_name)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "garbage"}, "cursor"),
        ({"sort": "secret"}, "sort"),
        ({"q": "status:exploded"}, "q"),
        ({"created_after": "not a date"}, "created"),
    ],
)
def test_list_refuses_what_it_cannot_read_with_400(api, params, field):
    response = api.get("/api/v1/jobs", params)
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert field in response.json()["errors"]


def test_list_limit_above_100_is_422_naming_it(api):
    response = api.get("/api/v1/jobs", {"limit": 101})
    assert response.status_code == 422
    assert "limit" in response.json()["errors"]


def test_create_answers_201_with_location_and_etag(api, printer):
    response = send(
        api,
        "post",
        "/api/v1/jobs",
        {"name": "Hinge", "priority": 4, "printer": printer.pk, "reference": "R-1"},
    )
    assert response.status_code == 201
    body = response.json()
    job = Job.objects.get(pk=body["id"])
    assert response["Location"] == f"/api/v1/jobs/{job.pk}"
    assert response["ETag"] == f'"{job.pk}.1"'
    assert (job.name, job.priority, job.printer, job.reference) == ("Hinge", 4, printer, "R-1")
    event = job.events.get()
    assert (event.kind, event.origin) == ("created", JobEvent.Origin.API)


def test_create_names_each_invalid_field_and_writes_nothing(api):
    response = send(api, "post", "/api/v1/jobs", {"name": " ", "is_business": True, "priority": 11})
    assert response.status_code == 422
    assert response["Content-Type"] == PROBLEM
    assert {"name", "priority", "customer_name"} <= set(response.json()["errors"])
    assert not Job.objects.exists()


def test_create_refuses_an_inactive_printer_and_a_taken_reference(api, make_job):
    inactive = Printer.objects.create(name="Old", is_active=False)
    response = send(api, "post", "/api/v1/jobs", {"name": "A", "printer": inactive.pk})
    assert response.status_code == 422 and "printer" in response.json()["errors"]
    make_job(reference="R-1")
    response = send(api, "post", "/api/v1/jobs", {"name": "A", "reference": "R-1"})
    assert response.status_code == 409
    assert Job.objects.count() == 1


def test_create_needs_the_add_permission(client_for, editor):
    response = send(client_for(editor), "post", "/api/v1/jobs", {"name": "A"})
    assert response.status_code == 403
    assert "jobs.add_job" in response.json()["detail"]


def test_get_has_an_etag_and_if_none_match_is_304(api, make_job):
    job = make_job()
    response = api.get(f"/api/v1/jobs/{job.pk}")
    assert response.status_code == 200 and response.json()["name"] == "Bracket"
    tag = response["ETag"]
    unchanged = api.get(f"/api/v1/jobs/{job.pk}", headers={"If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    job.apply_changes({"priority": 3}, actor=None, origin="cli")
    assert api.get(f"/api/v1/jobs/{job.pk}", headers={"If-None-Match": tag}).status_code == 200


def test_unknown_job_is_404(api):
    for url in ("/api/v1/jobs/999999", "/api/v1/jobs/999999/events"):
        response = api.get(url)
        assert response.status_code == 404
        assert response["Content-Type"] == PROBLEM
    response = send(api, "patch", "/api/v1/jobs/999999", {"name": "x"}, **{"If-Match": '"1.1"'})
    assert response.status_code == 404


def test_patch_needs_if_match_428(api, make_job):
    job = make_job()
    response = send(api, "patch", f"/api/v1/jobs/{job.pk}", {"priority": 5})
    assert response.status_code == 428
    assert response.json()["code"] == "PRECONDITION_REQUIRED"
    job.refresh_from_db()
    assert job.priority == 0 and job.version == 1


def test_patch_writes_with_the_current_etag(api, make_job):
    job = make_job()
    tag = api.get(f"/api/v1/jobs/{job.pk}")["ETag"]
    response = send(
        api,
        "patch",
        f"/api/v1/jobs/{job.pk}",
        {"priority": 5, "status": "running"},
        **{"If-Match": tag},
    )
    assert response.status_code == 200
    assert response["ETag"] == f'"{job.pk}.2"'
    job.refresh_from_db()
    assert (job.priority, job.status, job.version) == (5, "running", 2)
    assert job.started_at is not None  # the status rules ran
    assert job.events.get().origin == JobEvent.Origin.API


def test_a_stale_if_match_is_412_with_the_current_job(api, make_job, admin_user):
    job = make_job()
    tag = api.get(f"/api/v1/jobs/{job.pk}")["ETag"]
    job.apply_changes({"name": "Renamed"}, actor=admin_user, origin="ui")
    response = send(api, "patch", f"/api/v1/jobs/{job.pk}", {"priority": 5}, **{"If-Match": tag})
    assert response.status_code == 412
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == "VERSION_CONFLICT"
    assert body["current"]["name"] == "Renamed" and body["current"]["version"] == 2
    assert body["changed_by"] == "admin" and body["changed_at"]
    job.refresh_from_db()
    assert job.priority == 0


def test_put_needs_every_field_and_a_noop_writes_nothing(api, make_job):
    job = make_job()
    tag = api.get(f"/api/v1/jobs/{job.pk}")["ETag"]
    partial = send(api, "put", f"/api/v1/jobs/{job.pk}", {"name": "X"}, **{"If-Match": tag})
    assert partial.status_code == 422
    whole = {
        "name": "Bracket",
        "status": "pending",
        "priority": 0,
        "is_business": False,
        "customer_name": "",
        "notes": "",
        "file_name": "",
        "printer": None,
    }
    same = send(api, "put", f"/api/v1/jobs/{job.pk}", whole, **{"If-Match": tag})
    assert same.status_code == 200 and same["ETag"] == tag
    assert not job.events.exists()
    changed = send(
        api, "put", f"/api/v1/jobs/{job.pk}", {**whole, "notes": "two\nlines"}, **{"If-Match": tag}
    )
    assert changed.status_code == 200
    job.refresh_from_db()
    assert (job.notes, job.version) == ("two\nlines", 2)


def test_edit_refuses_a_forbidden_transition_naming_status(api, make_job):
    job = make_job(status="completed")
    tag = f'"{job.pk}.{job.version}"'
    response = send(
        api, "patch", f"/api/v1/jobs/{job.pk}", {"status": "running"}, **{"If-Match": tag}
    )
    assert response.status_code == 422
    assert "status" in response.json()["errors"]


def test_edit_needs_the_change_permission(client_for, viewer, make_job):
    job = make_job()
    response = send(
        client_for(viewer),
        "patch",
        f"/api/v1/jobs/{job.pk}",
        {"priority": 1},
        **{"If-Match": f'"{job.pk}.1"'},
    )
    assert response.status_code == 403


def test_cancel_with_a_reason_and_409_when_not_cancellable(api, make_job):
    job = make_job()
    response = send(api, "post", f"/api/v1/jobs/{job.pk}/cancel", {"reason": "Customer left"})
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    job.refresh_from_db()
    assert job.cancellation_reason == "Customer left"
    assert job.events.get().origin == JobEvent.Origin.API
    again = send(api, "post", f"/api/v1/jobs/{job.pk}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "NOT_CANCELLABLE"


def test_cancel_with_a_stale_if_match_is_412(api, make_job):
    job = make_job()
    job.apply_changes({"priority": 2}, actor=None, origin="cli")
    response = send(
        api, "post", f"/api/v1/jobs/{job.pk}/cancel", {}, **{"If-Match": f'"{job.pk}.1"'}
    )
    assert response.status_code == 412
    job.refresh_from_db()
    assert job.status == "pending"


def test_events_are_paged_newest_first(api, make_job):
    job = make_job()
    for priority in (1, 2, 3):
        job.apply_changes({"priority": priority}, actor=None, origin="cli")
    first = api.get(f"/api/v1/jobs/{job.pk}/events", {"limit": 2}).json()
    assert [event["changes"]["priority"][1] for event in first["items"]] == [3, 2]
    rest = api.get(
        f"/api/v1/jobs/{job.pk}/events", {"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [event["changes"]["priority"][1] for event in rest["items"]] == [1]
    assert rest["next_cursor"] is None
    assert api.get(f"/api/v1/jobs/{job.pk}/events", {"cursor": "!!"}).status_code == 400
