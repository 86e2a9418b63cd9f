"""The staff Cluster page and its "Run retention now" action."""

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.redis_broker import Redis
from django_q.models import Task
from django_q.signing import SignedPackage
from django_q.status import Stat, Status

from imports.models import ImportJob, ImportStatus

PAGE = "/cluster/"
RETENTION = "/cluster/retention/"


pytestmark = pytest.mark.usefixtures("task_queue")


@pytest.fixture
def staff(db: None) -> User:
    """Staff without being a superuser: the page needs is_staff, nothing more."""
    return User.objects.create_user("operator", password="pw-operator", is_staff=True)


@pytest.fixture
def retention_operator(staff: User) -> User:
    """Staff who may also run retention (jobsite/tests/test_retention_permission.py)."""
    staff.user_permissions.add(Permission.objects.get(codename="run_retention"))
    return staff


def fail_task(n: int) -> Task:
    stopped = timezone.now() - timedelta(minutes=100 - n)
    return Task.objects.create(
        id=uuid.uuid4().hex,
        name=f"task-{n:02d}",
        func="imports.tasks.import_task",
        started=stopped,
        stopped=stopped,
        result=f"ValueError: broken row batch {n:02d}",
        success=False,
    )


def test_anonymous_is_sent_to_login(client: Client) -> None:
    for response in (client.get(PAGE), client.get(RETENTION), client.post(RETENTION)):
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
    assert get_broker().queue_size() == 0


def test_non_staff_is_forbidden(
    client_for: Callable[..., Client], editor: User, admin_user: User
) -> None:
    client = client_for(editor)
    assert client.get(PAGE).status_code == 403
    assert client.get(RETENTION).status_code == 403
    assert client.post(RETENTION).status_code == 403
    assert get_broker().queue_size() == 0
    assert 'href="/cluster/"' not in client.get("/jobs/").content.decode()


def test_staff_sees_the_nav_link(client_for: Callable[..., Client], admin_user: User) -> None:
    client = client_for(admin_user)
    assert 'href="/cluster/"' in client.get("/jobs/").content.decode()


def test_staff_sees_clusters_queue_schedules_and_failures(
    client_for: Callable[..., Client], staff: User
) -> None:
    status = Status(pid=4242, cluster_id=uuid.uuid4())
    status.workers = [11, 12, 13]
    status.host = "worker-host-1"
    status.tob = timezone.now() - timedelta(hours=2)
    key = Stat.get_key(status.cluster_id)
    broker = get_broker()
    broker.set_stat(key, SignedPackage.dumps(status, True), 60)
    failures = [fail_task(n) for n in range(25)]

    try:
        response = client_for(staff).get(PAGE)
    finally:
        if isinstance(broker, Redis):
            broker.connection.delete(key)
        else:
            broker.cache.delete(key)

    assert response.status_code == 200
    html = response.content.decode()
    assert "worker-host-1" in html
    assert "1 cluster running 3 workers" in html
    assert 'id="queued">0<' in html
    assert "imports-retention" in html and "imports.tasks.cleanup_imports_task" in html
    # The last 20 failures, newest first, with their error.
    shown = [f for f in failures if f.name in html]
    assert [f.name for f in shown] == [f"task-{n:02d}" for n in range(5, 25)]
    assert html.index("task-24") < html.index("task-05")
    assert "ValueError: broken row batch 24" in html
    assert "Last run: never" in " ".join(html[html.index('id="last-retention"') :].split())


def test_no_cluster_running_is_said_plainly(
    client_for: Callable[..., Client], admin_user: User
) -> None:
    html = client_for(admin_user).get(PAGE).content.decode()
    assert "No cluster is running" in html
    assert "No failed tasks." in html


def test_schedule_last_run_is_shown(client_for: Callable[..., Client], staff: User) -> None:
    from django_q.models import Schedule

    task = Task.objects.create(
        id=uuid.uuid4().hex,
        name="retention-run",
        func="imports.tasks.cleanup_imports_task",
        started=timezone.now(),
        stopped=timezone.now(),
        success=True,
        result={"imports": 3, "error_records": 7, "events": 3, "files": 2, "orphan_files": 1},
    )
    Schedule.objects.filter(name="imports-retention").update(task=task.id)

    html = client_for(staff).get(PAGE).content.decode()

    assert "succeeded" in html
    assert f"{task.stopped:%Y-%m-%d %H:%M}" in html
    last_run = html[html.index('id="last-retention"') :]
    assert "deleted 3 imports, 7 error records, 2 stored and 1 orphaned file" in " ".join(
        last_run.split()
    )


def test_run_retention_asks_for_confirmation_first(
    client_for: Callable[..., Client], retention_operator: User
) -> None:
    ImportJob.objects.create(
        original_filename="old.csv",
        status=ImportStatus.COMPLETED,
        completed_at=timezone.now() - timedelta(days=365),
    )
    client = client_for(retention_operator)

    page = client.get(RETENTION)
    modal = client.get(RETENTION, headers={"HX-Request": "true"})

    assert page.status_code == modal.status_code == 200
    assert "<html" in page.content.decode()
    assert "<html" not in modal.content.decode()
    for html in (page.content.decode(), modal.content.decode()):
        assert "Run retention now?" in html
        assert "1 import</strong>" in html
        assert 'method="post"' in html
    assert get_broker().queue_size() == 0
    assert ImportJob.objects.count() == 1


def test_run_retention_post_enqueues_the_cleanup(
    client_for: Callable[..., Client], retention_operator: User
) -> None:
    response = client_for(retention_operator).post(RETENTION, follow=True)

    assert response.redirect_chain == [("/cluster/", 302)]
    assert "Retention cleanup queued" in response.content.decode()
    broker = get_broker()
    assert broker.queue_size() == 1
    [(ack_id, payload)] = broker.dequeue()
    task = SignedPackage.loads(payload)
    broker.acknowledge(ack_id)
    assert task["func"] == "imports.tasks.cleanup_imports_task"
    assert task["kwargs"] == {"actor": "user:operator"}
    assert task["group"] == "imports-retention"
