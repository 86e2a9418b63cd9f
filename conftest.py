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
