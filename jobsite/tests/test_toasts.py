"""Toasts of finished runs (jobs/toasts.py, base.html's run_toasts): a user's import or bulk run
that finished while they were elsewhere is announced once, on their next page or poll, linking
to it; never on the run's own page, never someone else's, nothing from before the login."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from imports.tests.web_helpers import make_import
from jobs import live
from jobs.models import BulkAction, BulkRun, Job, JobEvent
from jobs.runs import RunStatus

pytestmark = pytest.mark.django_db
LIST = reverse("jobs:list")


def finish_import(user, status=RunStatus.COMPLETED, **fields):
    return make_import(
        created_by=user, status=status, completed_at=timezone.now(), created_count=12, **fields
    )


def finish_bulk_run(user, **fields):
    return BulkRun.objects.create(
        action=BulkAction.SET_PRIORITY,
        new_priority=3,
        created_by=user,
        status=RunStatus.COMPLETED,
        completed_at=timezone.now(),
        changed_count=40,
        **fields,
    )


def toasts_of(html: str) -> list[str]:
    return [part.split("</a>")[0] for part in html.split('data-live-toast><a href="')[1:]]


def test_a_run_finished_meanwhile_is_announced_once_on_the_next_page(client_for, editor) -> None:
    client = client_for(editor)
    old = finish_import(editor, original_filename="before.csv")
    old.completed_at = timezone.now() - timedelta(minutes=5)
    old.save()
    assert toasts_of(client.get(LIST).content.decode()) == []  # finished before the login

    done = finish_import(editor, original_filename="jobs.csv")
    html = client.get(reverse("imports:list")).content.decode()
    assert toasts_of(html) == [
        f'{done.get_absolute_url()}">Import “jobs.csv” completed: 12 created, 0 updated, 0 errors.'
    ]
    assert "before.csv completed" not in html
    assert toasts_of(client.get(LIST).content.decode()) == []


def test_a_failed_run_is_an_error_toast_and_a_bulk_run_is_announced(client_for, editor) -> None:
    client = client_for(editor)
    client.get(LIST)
    finish_import(editor, status=RunStatus.FAILED, original_filename="bad.csv")
    run = finish_bulk_run(editor, skipped_count=2)
    html = client.get(LIST).content.decode()
    assert 'class="toast toast-run toast-error" data-live-toast><a href="' in html
    assert "Import “bad.csv” failed" in html
    assert (
        f'<a href="{run.get_absolute_url()}">Bulk run {run.pk} (set priority to 3) completed: '
        in html
    )
    assert "40 changed, 2 skipped." in html


def test_someone_elses_run_is_not_announced(client_for, editor, viewer) -> None:
    client = client_for(editor)
    client.get(LIST)
    finish_import(viewer, original_filename="theirs.csv")
    assert toasts_of(client.get(LIST).content.decode()) == []


def test_never_on_the_runs_own_page_nor_after_it_was_seen_there(client_for, editor) -> None:
    client = client_for(editor)
    client.get(LIST)
    done = finish_import(editor, original_filename="mine.csv")
    assert toasts_of(client.get(done.get_absolute_url()).content.decode()) == []
    assert toasts_of(client.get(LIST).content.decode()) == []


def test_seen_on_its_own_page_by_its_poll(client_for, editor) -> None:
    client = client_for(editor)
    client.get(LIST)
    done = finish_import(editor, original_filename="mine.csv")
    poll = client.get(done.get_absolute_url(), headers={"HX-Request": "true"})
    assert poll.status_code == 286  # the progress poll's last answer
    assert toasts_of(client.get(LIST).content.decode()) == []


def test_a_non_idle_poll_brings_the_toast(client_for, editor) -> None:
    client = client_for(editor)
    client.get(LIST)
    token = live.change_token()
    done = finish_import(editor, original_filename="polled.csv")
    job = Job(name="Bracket")
    job.insert(actor=None, origin=JobEvent.Origin.IMPORT)
    answer = client.get(reverse("jobs:live"), {"since": token}).json()
    assert answer["toasts"] == [
        {
            "message": "Import “polled.csv” completed: 12 created, 0 updated, 0 errors.",
            "url": done.get_absolute_url(),
            "level": "success",
        }
    ]
    assert client.get(reverse("jobs:live"), {"since": token}).json()["toasts"] == []


def test_anonymous_pages_have_no_toasts(client) -> None:
    html = client.get(reverse("login")).content.decode()
    assert '<div id="toasts" class="toasts" aria-live="polite" role="status"></div>' in html


def test_with_nothing_finished_a_page_asks_once_and_writes_no_session(client_for, editor) -> None:
    client = client_for(editor)
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("imports:list"))
    asked = [q["sql"] for q in queries if '"completed_at" >' in q["sql"]]
    assert len(asked) == 1 and "UNION" in asked[0]
    assert not [
        q for q in queries if q["sql"].startswith("UPDATE") and "django_session" in q["sql"]
    ]


def test_a_bulk_run_seen_finished_on_its_own_page_is_not_announced(client_for, editor) -> None:
    client = client_for(editor)
    client.get(LIST)
    run = finish_bulk_run(editor)
    assert client.get(run.get_absolute_url()).status_code == 200
    assert toasts_of(client.get(LIST).content.decode()) == []
