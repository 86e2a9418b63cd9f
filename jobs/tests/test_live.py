"""The live polls of the jobs list, a job's page and its edit dialog (jobs/live.py): the idle
poll is one query and 204, changed rows of the page come back rendered, new jobs are counted
through the list's filter, bad parameters are 400, permissions as every jobs page."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs import live
from jobs.models import Job, JobEvent

pytestmark = pytest.mark.django_db
LIST_POLL = reverse("jobs:live")
AUTH_TABLES = ("django_session", "auth_user", "auth_permission", "auth_group")


def insert(name: str, actor: User | None = None, **fields) -> Job:
    job = Job(name=name, **fields)
    job.insert(actor=actor, origin=JobEvent.Origin.UI)
    return job


def job_poll_url(job: Job) -> str:
    return reverse("jobs:job-live", args=[job.pk])


def shown(*jobs: Job) -> str:
    return ",".join(f"{job.pk}:{job.version}" for job in jobs)


def test_token_moves_with_every_job_write(editor) -> None:
    before = live.change_token()
    job = insert("Bracket")
    after_insert = live.change_token()
    assert after_insert != before
    job.apply_changes({"priority": 4}, actor=editor, origin=JobEvent.Origin.UI)
    assert live.change_token() != after_insert


def test_idle_poll_is_one_query_and_no_content(client_for, viewer) -> None:
    job = insert("Bracket")
    token = live.change_token()
    client = client_for(viewer)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_POLL, {"since": token, "jobs": shown(job), "query": "q=brac"})
    assert response.status_code == 204
    assert response.content == b""
    own = [q["sql"] for q in queries if not any(table in q["sql"] for table in AUTH_TABLES)]
    assert len(own) == 1 and "MAX" in own[0]


@pytest.mark.parametrize("view", ["list", "detail"])
def test_idle_poll_view_runs_exactly_one_query(viewer, django_assert_num_queries, view) -> None:
    """The view itself, for a user already authenticated and authorised: one query."""
    job = insert("Bracket")
    viewer.has_perm("jobs.view_job")  # the permission cache, as the middleware leaves it
    token = live.change_token()
    if view == "list":
        request = RequestFactory().get(LIST_POLL, {"since": token, "jobs": shown(job)})
        call = live.jobs_list_poll
        args: tuple = ()
    else:
        params = {"since": token, "version": job.version, "view": "detail"}
        request = RequestFactory().get(job_poll_url(job), params)
        call, args = live.job_poll, (job.pk,)
    request.user = viewer
    with django_assert_num_queries(1):
        response = call(request, *args)
    assert response.status_code == 204


def test_changed_rows_of_the_page_come_back_rendered(client_for, editor, viewer) -> None:
    mine = insert("Bracket", priority=1)
    other = insert("Gear")
    off_page = insert("Spindle")
    token = live.change_token()
    mine.apply_changes({"priority": 7}, actor=editor, origin=JobEvent.Origin.UI)
    off_page.apply_changes({"priority": 3}, actor=editor, origin=JobEvent.Origin.UI)
    mine.refresh_from_db()
    params = {"since": token, "jobs": f"{mine.pk}:1,{other.pk}:1"}
    answer = client_for(viewer).get(LIST_POLL, params).json()
    assert answer["token"] == live.change_token()
    assert list(answer["rows"]) == [str(mine.pk)]
    row = answer["rows"][str(mine.pk)]
    assert f'id="job-{mine.pk}"' in row and f'data-version="{mine.version}"' in row
    assert "<td>7</td>" in row
    assert answer["gone"] == []


def test_a_deleted_job_of_the_page_is_gone(client_for, viewer) -> None:
    job = insert("Bracket")
    token = live.change_token()
    insert("Gear")
    pk = job.pk
    job.delete()
    answer = client_for(viewer).get(LIST_POLL, {"since": token, "jobs": f"{pk}:1"}).json()
    assert answer["gone"] == [pk]


def test_new_jobs_counted_through_the_lists_filter(client_for, viewer) -> None:
    on_page = insert("Bracket one")
    token = live.change_token()
    insert("Bracket two", status="running")
    insert("Bracket three")
    insert("Gear housing")
    client = client_for(viewer)

    def new(query: str) -> tuple[int, str]:
        answer = client.get(
            LIST_POLL, {"since": token, "jobs": shown(on_page), "query": query}
        ).json()
        return answer["new"], answer["new_label"]

    assert new("") == (3, "3 new jobs")
    assert new("q=bracket") == (2, "2 new jobs")
    assert new("q=bracket+status:running") == (1, "1 new job")
    assert new("q=bracket&status=pending") == (1, "1 new job")
    assert new("q=status:nonsense") == (0, "")  # a filter it cannot read shows no jobs


def test_new_jobs_count_from_base_not_since(client_for, viewer) -> None:
    base = live.change_token()
    insert("Bracket two")
    since = live.change_token()
    insert("Bracket three")
    answer = client_for(viewer).get(LIST_POLL, {"since": since, "base": base}).json()
    assert answer["new"] == 2
    answer = client_for(viewer).get(LIST_POLL, {"since": base}).json()
    assert answer["new"] == 2
    answer = client_for(viewer).get(LIST_POLL, {"since": base, "base": since}).json()
    assert answer["new"] == 1


def test_detail_poll_brings_the_live_section(client_for, editor, viewer) -> None:
    job = insert("Bracket", priority=1)
    token = live.change_token()
    client = client_for(viewer)
    params = {"since": token, "version": job.version, "view": "detail"}
    insert("Gear")  # another job's change: the token moves, this job did not
    answer = client.get(job_poll_url(job), params).json()
    assert answer["html"] == "" and answer["version"] == job.version

    job.apply_changes({"priority": 9}, actor=editor, origin=JobEvent.Origin.UI)
    answer = client.get(job_poll_url(job), params).json()
    assert answer["version"] == job.version == 2
    assert answer["html"].startswith('<section id="job-live"')
    assert 'data-version="2"' in answer["html"]
    assert "<dd>9</dd>" in answer["html"]


def test_edit_poll_says_who_changed_it_meanwhile(client_for, editor) -> None:
    job = insert("Bracket", priority=1)
    token = live.change_token()
    job.apply_changes({"priority": 5}, actor=editor, origin=JobEvent.Origin.API)
    job.apply_changes({"name": "Bracket v2"}, actor=editor, origin=JobEvent.Origin.UI)
    params = {"since": token, "version": 1, "view": "edit"}
    answer = client_for(editor).get(job_poll_url(job), params).json()
    notice = answer["html"]
    assert "Changed meanwhile" in notice and "by editor" in notice
    assert "See the latest values" in notice
    assert "priority: 1 → <strong>5</strong>" in notice
    assert "name: Bracket → <strong>Bracket v2</strong>" in notice
    assert 'data-version="3"' in notice


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "'since' must be the change token"),
        ({"since": "abc"}, "'since' must be the change token"),
        ({"since": "1.2.3", "base": "1.2"}, "'base' must be the change token"),
        ({"since": "1.2.3", "jobs": "12:3,x"}, "'jobs' lists id:version pairs"),
        ({"since": "1.2.3", "jobs": ",".join(f"{n}:1" for n in range(300))}, "at most 200"),
    ],
)
def test_list_poll_bad_parameters_are_400(client_for, viewer, params, message) -> None:
    response = client_for(viewer).get(LIST_POLL, params)
    assert response.status_code == 400
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"version": "1", "view": "detail"}, "'since' must be the change token"),
        ({"since": "1.0.0", "version": "x", "view": "detail"}, "'version' is the version"),
        ({"since": "1.0.0", "version": "1", "view": "table"}, "'view' is detail or edit"),
    ],
)
def test_job_poll_bad_parameters_are_400(client_for, viewer, params, message) -> None:
    job = insert("Bracket")
    response = client_for(viewer).get(job_poll_url(job), params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_job_poll_of_a_missing_job_is_404(client_for, viewer) -> None:
    insert("Bracket")
    url = reverse("jobs:job-live", args=[999999])
    response = client_for(viewer).get(url, {"since": "0.0.0", "version": 1, "view": "detail"})
    assert response.status_code == 404


def test_permissions_and_login(client, client_for, outsider) -> None:
    job = insert("Bracket")
    for url in (LIST_POLL, job_poll_url(job)):
        response = client.get(url, {"since": "0.0.0"})
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
        assert client_for(outsider).get(url, {"since": "0.0.0"}).status_code == 403


def test_live_pages_carry_the_token_and_other_pages_do_not(client_for, viewer) -> None:
    job = insert("Bracket")
    client = client_for(viewer)
    token = live.change_token()
    for url in (reverse("jobs:list"), job.get_absolute_url()):
        assert f'data-live-token="{token}"' in client.get(url).content.decode()
    assert 'data-live-token=""' in client.get(reverse("imports:list")).content.decode()
