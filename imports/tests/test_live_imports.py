"""The imports list's one poll for all its running imports (imports.views.imports_poll): rows
name their import and version instead of polling each; an idle poll is one query and 204."""

import uuid

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from imports.models import ImportJob, ImportStatus
from imports.tests.web_helpers import make_import
from imports.views import LIST_PAGE_SIZE

POLL = reverse("imports:live")
AUTH_TABLES = ("django_session", "auth_user", "auth_permission", "auth_group")


def runs(*imports: ImportJob) -> str:
    return ",".join(f"{job.pk}:{job.version}" for job in imports)


def test_the_list_names_running_rows_for_the_one_poll(client_for, viewer) -> None:
    running = make_import(status=ImportStatus.PROCESSING)
    done = make_import(status=ImportStatus.COMPLETED)
    html = client_for(viewer).get(reverse("imports:list")).content.decode()
    assert f'data-live-import="{running.pk}" data-version="{running.version}"' in html
    assert f'data-live-import="{done.pk}"' not in html
    assert "hx-trigger" not in html


def test_idle_poll_is_one_query_and_no_content(client_for, viewer) -> None:
    first = make_import(status=ImportStatus.PROCESSING)
    second = make_import(status=ImportStatus.PENDING)
    client = client_for(viewer)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(POLL, {"runs": runs(first, second)})
    assert response.status_code == 204 and response.content == b""
    own = [q["sql"] for q in queries if not any(table in q["sql"] for table in AUTH_TABLES)]
    assert len(own) == 1


def test_moved_rows_come_back_rendered(client_for, viewer) -> None:
    moving = make_import(status=ImportStatus.PROCESSING, processed_rows=10, estimated_rows=200)
    still = make_import(status=ImportStatus.PROCESSING)
    shown = runs(moving, still)
    ImportJob.objects.filter(pk=moving.pk).update(processed_rows=100, version=moving.version + 1)
    answer = client_for(viewer).get(POLL, {"runs": shown}).json()
    assert list(answer["rows"]) == [str(moving.pk)]
    row = answer["rows"][str(moving.pk)]
    assert row.lstrip().startswith(f'<tr id="import-row-{moving.pk}"')
    assert f'data-version="{moving.version + 1}"' in row
    assert 'value="50"' in row

    ImportJob.objects.filter(pk=moving.pk).update(
        status=ImportStatus.COMPLETED, version=moving.version + 2
    )
    row = client_for(viewer).get(POLL, {"runs": shown}).json()["rows"][str(moving.pk)]
    assert "data-live-import" not in row  # finished: the page stops asking for it
    assert "Completed" in row


def test_an_uploader_polls_only_their_own_imports(client_for, editor, uploader) -> None:
    uploader.user_permissions.add(Permission.objects.get(codename="add_importjob"))
    theirs = make_import(status=ImportStatus.PROCESSING, created_by=editor)
    mine = make_import(status=ImportStatus.PROCESSING, created_by=uploader)
    shown = runs(theirs, mine)
    ImportJob.objects.update(processed_rows=5, version=5)
    answer = client_for(uploader).get(POLL, {"runs": shown}).json()
    assert list(answer["rows"]) == [str(mine.pk)]


@pytest.mark.parametrize(
    ("runs_param", "message"),
    [
        ("nonsense", "'runs' lists import-id:version pairs"),
        (f"{uuid.uuid4()}:x", "'runs' lists import-id:version pairs"),
        ("-" * 36 + ":1", "'runs' lists import-id:version pairs"),
        (",".join(f"{uuid.uuid4()}:1" for _ in range(LIST_PAGE_SIZE + 1)), "at most 25"),
    ],
)
def test_bad_parameters_are_400(client_for, viewer, runs_param, message) -> None:
    response = client_for(viewer).get(POLL, {"runs": runs_param})
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_permissions_and_login(client, client_for, outsider) -> None:
    response = client.get(POLL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert client_for(outsider).get(POLL).status_code == 403
