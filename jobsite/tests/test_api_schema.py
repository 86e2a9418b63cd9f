"""The API's OpenAPI 3.1 schema and its docs page, and schemathesis over the whole schema,
in-process: examples generated from the schema for every operation, sent with a token that
holds every permission (the rate limit raised), must never answer 5xx and must match the
schema in status code, content type and body."""

import pytest
import schemathesis
from django.contrib.auth.models import Permission, User
from django.contrib.staticfiles import finders
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jobs.models import Job, Printer
from jobsite.models import ApiToken

PROBLEM = "application/problem+json"
# Examples per operation: bounded, so `make test` stays quick.
EXAMPLES = 25


def test_openapi_is_3_1_and_every_error_is_a_problem(db):
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.1")
    assert {"TokenAuth", "SessionAuth"} <= set(schema["components"]["securitySchemes"])
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "403", "429"} <= set(responses), (method, path)
            for status, answer in responses.items():
                if int(status) >= 400:
                    assert list(answer["content"]) == [PROBLEM], (method, path, status)


def test_docs_page_is_served_from_the_apps_own_static_files(db):
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "script-src 'self'" in response["Content-Security-Policy"]
    for name in ("ninja/swagger-ui-bundle.js", "ninja/swagger-ui-init.js", "ninja/swagger-ui.css"):
        assert f"/static/{name}" in html
        assert finders.find(name), name
    assert "cdn" not in html.lower() and "https://" not in html
    # The one <script> without a src is JSON data, which no browser runs.
    assert html.count("<script") == html.count("<script src=") + 1
    assert '<script type="application/json" id="swagger-settings">' in html


@pytest.fixture
def api_schema(db, settings, tmp_path):
    settings.API_RATE_LIMIT = "1000000/s"
    settings.MEDIA_ROOT = tmp_path / "media"
    # As Django's test client does: the requests run inside the test's transaction, so the
    # handler must not close the connection at the end of each one (PostgreSQL would lose it).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def every_permission_token(db):
    user = User.objects.create_user("robot")
    user.user_permissions.set(Permission.objects.all())
    printer = Printer.objects.create(name="Prusa 1")
    for number in range(1, 4):
        Job.objects.create(name=f"Job {number}", printer=printer, reference=f"R-{number}")
    return ApiToken.issue(user=user, name="schemathesis")[1]


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_every_operation_conforms_to_the_schema(api_schema, every_permission_token):
    # One Hypothesis run per operation, here rather than through schemathesis' pytest
    # plugin, whose lazy fixture loader does not run under pytest 9.2.
    headers = {"Authorization": f"Bearer {every_permission_token}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 18  # jobs 8, bulk runs 3, imports 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        conforms()
