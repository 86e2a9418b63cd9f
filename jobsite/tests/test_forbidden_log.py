"""A refused request (403) logs one concise line: user, request, missing permission.

Red-team finding: every 403 wrote django.request's warning with the whole traceback of the
PermissionDenied.
"""

import logging

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import reverse

from imports.tests.web_helpers import make_import
from jobs.models import Job
from jobsite.log_filters import PermissionDeniedInOneLine

pytestmark = pytest.mark.django_db


def forbidden_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "django.request" and r.status_code == 403]


@pytest.mark.parametrize(
    ("method", "url", "permission"),
    [
        ("get", lambda: reverse("jobs:list"), "jobs.view_job"),
        (
            "post",
            lambda: reverse("jobs:edit", args=[Job.objects.create(name="A").pk]),
            "jobs.change_job",
        ),
        ("get", lambda: reverse("imports:list"), "imports.view_importjob"),
        ("get", lambda: reverse("imports:new"), "imports.add_importjob"),
        ("get", lambda: make_import().get_absolute_url(), "imports.view_importjob"),
        (
            "post",
            lambda: reverse("imports:cancel", args=[make_import().pk]),
            "imports.change_importjob",
        ),
    ],
)
def test_a_403_is_one_line_naming_user_path_and_permission(
    client_for, outsider, caplog, method, url, permission
) -> None:
    client = client_for(outsider)
    path = url()
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = getattr(client, method)(path)
    assert response.status_code == 403
    [record] = forbidden_records(caplog)
    assert record.getMessage() == (
        f"Permission denied: user outsider, {method.upper()} {path}, missing {permission}"
    )
    assert record.exc_info is None and record.levelno == logging.WARNING
    assert "Traceback" not in caplog.text


def test_the_staff_page_logs_one_line_too(client_for, editor, caplog) -> None:
    client = client_for(editor)  # not staff
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get(reverse("cluster")).status_code == 403
    [record] = forbidden_records(caplog)
    assert (
        record.getMessage() == "Permission denied: user editor, GET /cluster/, missing staff status"
    )
    assert record.exc_info is None


def filtered(request, error: PermissionDenied) -> str:
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Forbidden", (), (type(error), error, None)
    )
    record.status_code, record.request = 403, request
    PermissionDeniedInOneLine().filter(record)
    assert record.exc_info is None
    return record.getMessage()


def test_a_line_break_in_the_path_cannot_forge_a_log_line(outsider) -> None:
    request = RequestFactory().get("/jobs/")
    request.path, request.user = "/jobs/\nFAKE line", outsider
    message = filtered(request, PermissionDenied("x"))
    assert message == "Permission denied: user outsider, GET /jobs/\\nFAKE line, missing x"


def test_a_permission_the_view_does_not_name(rf) -> None:
    request = rf.post("/admin/")
    request.user = AnonymousUser()
    message = filtered(request, PermissionDenied())
    assert message == (
        "Permission denied: user -, POST /admin/, missing a permission the view does not name"
    )
