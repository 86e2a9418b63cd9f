"""API tokens and the API's answers to who may call it (docs/api.md, "Tokens" and "Errors"):
401 with a Bearer challenge, 403 without the permission, CSRF for sessions, the rate limit."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from jobsite.api import _load_permissions
from jobsite.models import ApiToken, token_digest

PROBLEM = "application/problem+json"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def token(viewer):
    return ApiToken.issue(user=viewer, name="script")


def test_a_token_is_stored_as_its_sha256_digest_only(viewer):
    token, secret = ApiToken.issue(user=viewer, name="script")
    assert secret.startswith("jst_") and len(secret) > 40
    assert token.digest == token_digest(secret)
    assert secret not in {token.digest, token.prefix, token.name}
    assert secret.startswith(token.prefix)


def test_a_valid_token_lists_jobs_and_notes_its_use(token, make_job):
    make_job(name="Gear")
    record, secret = token
    response = Client().get("/api/v1/jobs", headers=bearer(secret))
    assert response.status_code == 200
    assert [item["name"] for item in response.json()["items"]] == ["Gear"]
    record.refresh_from_db()
    assert record.last_used_at is not None


@pytest.mark.parametrize(
    "header",
    [None, "Bearer jst_unknown", "Bearer ", "Basic dXNlcjpwdw==", "Token abc"],
)
def test_missing_or_unknown_token_is_401_with_a_bearer_challenge(db, header):
    headers = {"Authorization": header} if header else {}
    response = Client().get("/api/v1/jobs", headers=headers)
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401 and body["code"] == "UNAUTHENTICATED"


def test_expired_and_revoked_tokens_are_401(viewer):
    expired, expired_secret = ApiToken.issue(user=viewer, name="old", expires_days=1)
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(1))
    revoked, revoked_secret = ApiToken.issue(user=viewer, name="gone")
    revoked.revoke()
    for secret in (expired_secret, revoked_secret):
        response = Client().get("/api/v1/jobs", headers=bearer(secret))
        assert response.status_code == 401
        assert "expired or revoked" in response.json()["detail"]


def test_a_bad_token_is_refused_even_beside_a_session(client_for, viewer):
    response = client_for(viewer).get("/api/v1/jobs", headers=bearer("jst_wrong"))
    assert response.status_code == 401


def test_a_token_of_an_inactive_user_is_401(token, viewer):
    viewer.is_active = False
    viewer.save()
    assert Client().get("/api/v1/jobs", headers=bearer(token[1])).status_code == 401


def test_without_the_permission_it_is_403_naming_it(outsider):
    _, secret = ApiToken.issue(user=outsider, name="x")
    response = Client().get("/api/v1/jobs", headers=bearer(secret))
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert "jobs.view_job" in response.json()["detail"]


def test_a_token_holds_its_users_own_and_group_permissions_as_they_are_now(outsider, db):
    """The token path reads a user's permissions in one query of its own (jobsite/api.py):
    it must grant what ModelBackend grants, and a change applies at the next request."""
    _, secret = ApiToken.issue(user=outsider, name="x")
    viewers = Group.objects.create(name="viewers")
    viewers.permissions.add(Permission.objects.get(codename="view_job"))
    outsider.groups.add(viewers)
    assert Client().get("/api/v1/jobs", headers=bearer(secret)).status_code == 200
    outsider.groups.remove(viewers)
    assert Client().get("/api/v1/jobs", headers=bearer(secret)).status_code == 403
    outsider.user_permissions.add(Permission.objects.get(codename="view_job"))
    assert Client().get("/api/v1/jobs", headers=bearer(secret)).status_code == 200
    fresh = type(outsider).objects.get(pk=outsider.pk)
    assert _load_permissions_of(fresh) == fresh.get_all_permissions()
    editors = Group.objects.create(name="editors")
    editors.permissions.add(*Permission.objects.filter(codename__in=["change_job", "view_job"]))
    outsider.groups.add(editors)
    fresh = type(outsider).objects.get(pk=outsider.pk)
    assert _load_permissions_of(fresh) == fresh.get_all_permissions() >= {"jobs.change_job"}
    outsider.user_permissions.clear()
    outsider.groups.clear()
    outsider.is_superuser = True
    outsider.save()
    assert Client().get("/api/v1/jobs", headers=bearer(secret)).status_code == 200


def _load_permissions_of(user):
    """What the token path reads, from a copy of `user` (so ModelBackend reads its own)."""
    copy = type(user).objects.get(pk=user.pk)
    _load_permissions(copy)
    return copy._perm_cache


def test_a_session_needs_csrf_for_writes_a_token_does_not(client_for, editor, make_job):
    job = make_job()
    client = client_for(editor, enforce_csrf_checks=True)
    response = client.post(f"/api/v1/jobs/{job.pk}/cancel", "{}", content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    job.refresh_from_db()
    assert job.status == "pending"
    _, secret = ApiToken.issue(user=editor, name="x")
    response = Client(enforce_csrf_checks=True).post(
        f"/api/v1/jobs/{job.pk}/cancel",
        "{}",
        content_type="application/json",
        headers=bearer(secret),
    )
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_rate_limit_is_429_with_retry_after_per_token(token, viewer, settings):
    settings.API_RATE_LIMIT = "2/min"
    _, secret = token
    client = Client()
    assert client.get("/api/v1/jobs", headers=bearer(secret)).status_code == 200
    assert client.get("/api/v1/jobs", headers=bearer(secret)).status_code == 200
    response = client.get("/api/v1/jobs", headers=bearer(secret))
    assert response.status_code == 429
    assert response["Content-Type"] == PROBLEM
    assert int(response["Retry-After"]) >= 1
    assert response.json()["code"] == "RATE_LIMITED"
    # Another token of the same user has its own allowance.
    _, other = ApiToken.issue(user=viewer, name="other")
    assert client.get("/api/v1/jobs", headers=bearer(other)).status_code == 200


def test_wrong_method_is_a_405_problem(token):
    response = Client().delete("/api/v1/jobs", headers=bearer(token[1]))
    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM
    assert "GET" in response["Allow"]


def test_command_creates_lists_and_revokes(viewer):
    out = StringIO()
    call_command(
        "api_token",
        "create",
        "--user",
        "viewer",
        "--name",
        "ci",
        "--expires-days",
        "30",
        "--output",
        "json",
        stdout=out,
    )
    created = json.loads(out.getvalue())
    token = ApiToken.objects.get(pk=created["id"])
    assert token.digest == token_digest(created["token"])
    assert token.expires_at is not None
    out = StringIO()
    call_command("api_token", "list", "--output", "json", stdout=out)
    listed = json.loads(out.getvalue())
    assert [row["name"] for row in listed] == ["ci"]
    assert created["token"] not in out.getvalue()
    call_command("api_token", "revoke", str(token.pk), stdout=StringIO())
    token.refresh_from_db()
    assert token.state == "revoked"
    assert Client().get("/api/v1/jobs", headers=bearer(created["token"])).status_code == 401


def test_command_refuses_an_unknown_user_and_token(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as unknown_user:
        call_command("api_token", "create", "--user", "nobody", "--name", "x")
    assert unknown_user.value.returncode == 2
    with pytest.raises(CommandError) as unknown_token:
        call_command("api_token", "revoke", "999")
    assert unknown_token.value.returncode == 1


def test_token_page_creates_shows_once_and_revokes_own_tokens(client_for, viewer, editor):
    client = client_for(viewer)
    page = client.get("/account/tokens/")
    assert page.status_code == 200
    assert b"You have no tokens yet" in page.content
    created = client.post("/account/tokens/", {"name": "laptop", "expires_days": "7"})
    assert created.status_code == 200
    token = ApiToken.objects.get(user=viewer)
    secret = created.context["secret"]
    assert token.digest == token_digest(secret)
    assert secret.encode() in created.content
    assert created["Cache-Control"] == "no-store"
    assert secret.encode() not in client.get("/account/tokens/").content
    # Someone else's token cannot be revoked from this page.
    other, _ = ApiToken.issue(user=editor, name="theirs")
    assert client.post(f"/account/tokens/{other.pk}/revoke/").status_code == 404
    response = client.post(f"/account/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    other.refresh_from_db()
    assert token.state == "revoked" and other.state == "active"


def test_token_page_refuses_a_bad_expiry_and_needs_a_login(client_for, viewer):
    response = client_for(viewer).post("/account/tokens/", {"name": "x", "expires_days": "0"})
    assert response.status_code == 200
    assert response.context["form"].errors["expires_days"]
    assert not ApiToken.objects.exists()
    assert Client().get("/account/tokens/").status_code == 302


def test_admin_lists_and_revokes_every_users_tokens(client_for, admin_user, viewer):
    token, _ = ApiToken.issue(user=viewer, name="script")
    client = client_for(admin_user)
    assert b"script" in client.get("/admin/jobsite/apitoken/").content
    response = client.post(
        "/admin/jobsite/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.state == "revoked"


def test_an_unknown_api_path_is_a_404_problem(db):
    for path in ("/api/v1/nothing", "/api/v1/jobs/-3", "/api/v1/imports/not-a-uuid"):
        response = Client().get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == PROBLEM


def test_a_failing_cache_does_not_stop_the_api(token, monkeypatch):
    from jobsite.api import TokenRateThrottle

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(TokenRateThrottle.cache, "get", broken)
    assert Client().get("/api/v1/jobs", headers=bearer(token[1])).status_code == 200


OPERATIONS = [
    ("get", "/api/v1/jobs"),
    ("post", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/1"),
    ("put", "/api/v1/jobs/1"),
    ("patch", "/api/v1/jobs/1"),
    ("post", "/api/v1/jobs/1/cancel"),
    ("get", "/api/v1/jobs/1/events"),
    ("post", "/api/v1/jobs/bulk-status"),
    ("get", "/api/v1/imports"),
    ("post", "/api/v1/imports"),
    ("get", "/api/v1/imports/00000000-0000-0000-0000-000000000001"),
    ("delete", "/api/v1/imports/00000000-0000-0000-0000-000000000001"),
    ("post", "/api/v1/imports/00000000-0000-0000-0000-000000000001/cancel"),
    ("get", "/api/v1/imports/00000000-0000-0000-0000-000000000001/errors"),
    ("get", "/api/v1/imports/00000000-0000-0000-0000-000000000001/errors.csv"),
]


JOB = {"name": "x", "status": "pending", "priority": 0, "is_business": False,
       "customer_name": "", "notes": "", "file_name": "", "printer": None}  # fmt: skip
WELL_FORMED = {
    ("post", "/api/v1/jobs"): {"name": "x"},
    ("put", "/api/v1/jobs/1"): JOB,
    ("patch", "/api/v1/jobs/1"): {"priority": 1},
    ("post", "/api/v1/jobs/1/cancel"): {},
    ("post", "/api/v1/jobs/bulk-status"): [{"id": 1, "status": "running"}],
    ("post", "/api/v1/imports/00000000-0000-0000-0000-000000000001/cancel"): {},
}


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_operation_answers_401_without_a_token(db, method, path):
    response = getattr(Client(), method)(path)
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_operation_answers_403_without_a_permission(outsider, make_job, method, path):
    from imports.models import ImportJob

    make_job(id=1)
    ImportJob.objects.create(
        id="00000000-0000-0000-0000-000000000001", original_filename="a.csv", file_hash="0" * 64
    )
    _, secret = ApiToken.issue(user=outsider, name="x")
    # A well-formed request, so the permission is what refuses it.
    if path == "/api/v1/imports" and method == "post":
        upload = SimpleUploadedFile("a.csv", b"name\nx\n", content_type="text/csv")
        response = Client().post(path, {"file": upload}, headers=bearer(secret))
    else:
        body = WELL_FORMED.get((method, path))
        response = getattr(Client(), method)(
            path, json.dumps(body) if body is not None else None,
            content_type="application/json", headers=bearer(secret) | {"If-Match": '"1.1"'},
        )  # fmt: skip
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM


def test_a_body_that_is_not_json_is_a_400_problem(client_for, editor, make_job):
    job = make_job()
    response = client_for(editor).patch(
        f"/api/v1/jobs/{job.pk}", "{bad", content_type="application/json",
        headers={"If-Match": f'"{job.pk}.1"'},
    )  # fmt: skip
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
