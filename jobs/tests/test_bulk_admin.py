"""The Django admin action "Change status…" on jobs: the same all-or-nothing bulk update."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from jobs.bulk import MAX_ITEMS
from jobs.models import Job, JobEvent

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:jobs_job_changelist")


@pytest.fixture
def admin_client(client_for: Callable[..., Client], admin_user: User) -> Client:
    return client_for(admin_user)


def choose(client: Client, jobs: list[Job], url: str = CHANGELIST, **extra: Any) -> Any:
    """Tick `jobs` on the change list and run the action: the intermediate page."""
    data = {"action": "change_status", ACTION_CHECKBOX_NAME: [job.pk for job in jobs], **extra}
    return client.post(url, data)


def apply(client: Client, jobs: list[Job], status: str) -> Any:
    """Submit the intermediate page, then follow back to the change list."""
    data = {
        "action": "change_status",
        ACTION_CHECKBOX_NAME: [job.pk for job in jobs],
        "status": status,
        "apply": "Change status",
    }
    return client.post(CHANGELIST, data, follow=True)


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


def snapshot() -> tuple[list[dict[str, Any]], int]:
    return list(Job.objects.order_by("pk").values()), JobEvent.objects.count()


def test_the_action_shows_an_intermediate_page_to_pick_the_status(admin_client, make_job) -> None:
    jobs = [make_job(name="Gear", status="running"), make_job(name="Knob")]
    response = choose(admin_client, jobs)
    assert response.status_code == 200
    assert [t.name for t in response.templates][0] == "admin/jobs/job/change_status.html"
    page = response.content.decode()
    assert "Set one status on the 2 selected jobs" in page
    assert 'name="status"' in page and 'value="completed"' in page
    for job in jobs:
        assert f'name="{ACTION_CHECKBOX_NAME}" value="{job.pk}"' in page
    assert "Gear" in page and "Running" in page
    assert Job.objects.filter(status="pending").count() == 1  # nothing changed yet


def test_applying_sets_the_status_on_every_selected_job(admin_client, admin_user, make_job) -> None:
    jobs = [make_job(status="running") for _ in range(3)]
    untouched = make_job(status="running")
    response = apply(admin_client, jobs, "completed")
    assert response.redirect_chain[-1] == (CHANGELIST, 302)
    assert messages_of(response) == [("success", "Set 3 jobs to Completed.")]
    stored = Job.objects.filter(pk__in=[job.pk for job in jobs])
    assert {(job.status, job.version, job.updated_by) for job in stored} == {
        ("completed", 2, admin_user)
    }
    assert len({job.updated_at for job in stored}) == 1
    assert JobEvent.objects.filter(kind="status_changed", actor=admin_user).count() == 3
    untouched.refresh_from_db()
    assert untouched.status == "running" and untouched.version == 1


def test_one_job_that_cannot_move_changes_nothing_and_is_named(admin_client, make_job) -> None:
    movable = [make_job(name="Gear"), make_job(name="Hinge")]
    stuck = make_job(name="<b>Lid</b>", status="completed")
    before = snapshot()
    response = apply(admin_client, [*movable, stuck], "running")
    assert snapshot() == before
    [(level, text)] = messages_of(response)
    assert level == "error"
    assert text.startswith("Nothing was changed: 1 of 3 selected jobs cannot be set to Running.")
    assert (
        f"<br>#{stuck.pk} &lt;b&gt;Lid&lt;/b&gt; (completed): "
        "A completed job cannot be moved to running."
    ) in text
    assert "Gear" not in text and "Hinge" not in text  # rolled back, not at fault
    assert "&lt;b&gt;Lid" in response.content.decode()  # escaped on the page too


def test_cancelling_records_the_admin_user(admin_client, admin_user, make_job) -> None:
    jobs = [make_job(status="pending"), make_job(status="running")]
    response = apply(admin_client, jobs, "cancelled")
    assert messages_of(response) == [("success", "Set 2 jobs to Cancelled.")]
    for job in Job.objects.all():
        assert (job.status, job.cancelled_by, job.updated_by) == ("cancelled", *[admin_user] * 2)
        assert job.cancelled_at == job.updated_at
        assert job.events.get().kind == "cancelled"


def test_setting_the_same_status_again_succeeds(admin_client, make_job) -> None:
    job = make_job(status="scheduled")
    response = apply(admin_client, [job], "scheduled")
    assert messages_of(response) == [("success", "Set 1 job to Scheduled.")]
    job.refresh_from_db()
    assert job.version == 2


def test_one_hundred_jobs_are_accepted(admin_client) -> None:
    Job.objects.bulk_create(Job(name=f"Job {n}") for n in range(MAX_ITEMS))
    jobs = list(Job.objects.all())
    assert choose(admin_client, jobs).status_code == 200
    response = apply(admin_client, jobs, "scheduled")
    assert messages_of(response) == [("success", "Set 100 jobs to Scheduled.")]
    assert Job.objects.filter(status="scheduled").count() == MAX_ITEMS


@pytest.mark.parametrize("step", ["choose", "apply"])
def test_more_than_one_hundred_jobs_are_refused_and_nothing_changed(admin_client, step) -> None:
    Job.objects.bulk_create(Job(name=f"Job {n}") for n in range(MAX_ITEMS + 1))
    jobs = list(Job.objects.all())
    before = snapshot()
    if step == "choose":
        response = admin_client.post(
            CHANGELIST,
            {"action": "change_status", ACTION_CHECKBOX_NAME: [jobs[0].pk], "select_across": "1"},
            follow=True,
        )
    else:
        response = apply(admin_client, jobs, "scheduled")
    assert response.redirect_chain[-1] == (CHANGELIST, 302)
    assert messages_of(response) == [
        (
            "error",
            "More than 100 jobs are selected. One status change takes at most 100 jobs, "
            "all or nothing: select fewer. Nothing was changed.",
        )
    ]
    assert snapshot() == before


def test_select_all_follows_the_change_list_filters(admin_client, make_job) -> None:
    running = [make_job(name="Running one", status="running") for _ in range(2)]
    make_job(name="Pending one")
    response = choose(
        admin_client, running[:1], url=CHANGELIST + "?status__exact=running", select_across="1"
    )
    assert response.status_code == 200
    assert "2 selected jobs" in response.content.decode()
    assert "Pending one" not in response.content.decode()


def test_a_status_not_offered_redisplays_the_page_and_changes_nothing(
    admin_client, make_job
) -> None:
    job = make_job(status="running")
    before = snapshot()
    for bad in ["Completed", "completed ", "x'; DROP TABLE jobs_job;--", ""]:
        response = admin_client.post(
            CHANGELIST,
            {
                "action": "change_status",
                ACTION_CHECKBOX_NAME: [job.pk],
                "status": bad,
                "apply": "Change status",
            },
        )
        assert response.status_code == 200
        assert "change_status.html" in response.templates[0].name
        assert "errorlist" in response.content.decode()
    assert snapshot() == before


def test_staff_without_change_permission_cannot_run_the_action(client_for, make_job) -> None:
    viewer = User.objects.create_user("staffviewer", password="pw", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_job"))
    client = client_for(viewer)
    job = make_job(status="running")
    before = snapshot()
    page = client.get(CHANGELIST)
    assert page.status_code == 200 and "change_status" not in page.content.decode()
    response = apply(client, [job], "completed")
    assert snapshot() == before
    assert response.status_code == 200 and not messages_of(response)  # just the change list


def test_anonymous_users_are_sent_to_the_admin_login(make_job) -> None:
    job = make_job(status="running")
    response = apply(Client(), [job], "completed")
    assert "/admin/login/" in response.redirect_chain[0][0]
    job.refresh_from_db()
    assert job.status == "running"
