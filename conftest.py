"""Shared fixtures: users with and without permissions, printers and jobs."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from jobs.models import Job, Printer


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
