"""Shared fixtures: users with and without permissions, logged-in clients, printers, jobs and
real qcluster nodes on the test database, and their emptied task queue."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from jobs.models import Job, Printer
from jobsite.testing import qcluster


def _user(username: str, *codenames: str, **flags: Any) -> User:
    user = User.objects.create_user(username, password="pw-" + username, **flags)
    if codenames:
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def admin_user(db: None) -> User:
    return _user("admin", is_staff=True, is_superuser=True)


@pytest.fixture
def editor(db: None) -> User:
    """Can view and change jobs, upload and view imports."""
    return _user(
        "editor", "view_job", "change_job", "view_importjob", "add_importjob", "view_printer"
    )


@pytest.fixture
def viewer(db: None) -> User:
    return _user("viewer", "view_job", "view_importjob")


@pytest.fixture
def outsider(db: None) -> User:
    """Logged in, but holds no permission."""
    return _user("outsider")


@pytest.fixture
def client_for(db: None) -> Callable[..., Client]:
    """`client_for(user)`: a test client logged in as `user`, the way every test logs in
    where the login itself is not under test (jobsite/tests/test_auth.py tests that).
    `htmx=True` sends every request with the HX-Request header, as htmx does; other keyword
    arguments go to the Client (`enforce_csrf_checks=True`)."""

    def make(user: User, *, htmx: bool = False, **client_options: Any) -> Client:
        client = Client(headers={"HX-Request": "true"} if htmx else None, **client_options)
        client.force_login(user)
        return client

    return make


@pytest.fixture
def printer(db: None) -> Printer:
    return Printer.objects.create(name="Prusa MK4 #1")


@pytest.fixture
def make_job(db: None) -> Callable[..., Job]:
    def make(**fields: Any) -> Job:
        fields.setdefault("name", "Bracket")
        return Job.objects.create(**fields)

    return make


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    django_db_modify_db_settings_parallel_suffix: None,
) -> None:
    """Cluster tests start a real `qcluster` subprocess on the test database, which therefore
    cannot be SQLite's private in-memory one: when such a test is collected, use a file."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    wants_cluster = any(item.get_closest_marker("cluster") for item in request.session.items)
    if (
        wants_cluster
        and database["ENGINE"] == "django.db.backends.sqlite3"
        and not database.get("TEST", {}).get("NAME")
    ):
        folder = tmp_path_factory.mktemp("db")
        database.setdefault("TEST", {})["NAME"] = str(folder / "test-jobsite.sqlite3")


# What the tests on real nodes want unless they say otherwise: small batches, and a lease short
# enough that a dead worker's import is resumed within seconds; the engine's INFO log lines.
CLUSTER_TEST_ENV = {
    "IMPORT_BATCH_SIZE": "100",
    "IMPORT_LEASE_SECONDS": "3",
    "IMPORT_MAX_ATTEMPTS": "3",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture
def task_queue(db: None) -> Iterator[Any]:
    """The cluster's broker (ORM or Redis), emptied before and after the test."""
    from django_q.brokers import get_broker

    broker = get_broker()
    broker.purge_queue()
    yield broker
    broker.purge_queue()


@pytest.fixture
def start_cluster(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., qcluster.Cluster]]:
    """`start_cluster(nodes=1, cluster_name=None, **env)`: real qcluster nodes on this test's
    database and media folder (a transactional test's, marked `cluster`), with
    CLUSTER_TEST_ENV and then `env` on top of the test run's environment; returned once every
    node is up, stopped at the end.

    With `cluster_name`, the nodes and this process use a queue of their own (django-q2 names
    the queue, signs tasks and keys its status by it), so no other cluster on a shared Redis
    takes their tasks."""
    from django.db import connection
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    started: list[qcluster.Cluster] = []

    def start(*, nodes: int = 1, cluster_name: str | None = None, **env: str) -> qcluster.Cluster:
        if cluster_name:
            monkeypatch.setattr(Conf, "PREFIX", cluster_name)
            monkeypatch.setattr(Conf, "CLUSTER_NAME", cluster_name)
            monkeypatch.setattr(Conf, "Q_STAT", f"django_q:{cluster_name}:cluster")
            env["Q_CLUSTER_NAME"] = cluster_name
        if settings.REDIS_URL:
            get_broker().purge_queue()  # nothing left over from an earlier run on this Redis
        cluster = qcluster.Cluster(
            qcluster.environment(
                DATABASE_URL=qcluster.database_url(connection),
                MEDIA_ROOT=str(settings.MEDIA_ROOT),
                **{**CLUSTER_TEST_ENV, **env},
            ),
            tmp_path,
            nodes=nodes,
        )
        started.append(cluster)
        cluster.wait_until_up()
        return cluster

    yield start
    for cluster in started:
        cluster.stop()
    connection.close()
