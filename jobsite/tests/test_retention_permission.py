""" "Run retention now" takes the imports.run_retention permission, not only staff status.

Red-team finding (issue 13, item 6a): any staff user, even one holding no permission at all,
could queue the deletion of every expired import from the Cluster page.
"""

import logging
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_q.brokers import get_broker

from imports.models import ImportJob, ImportStatus

PAGE = "/cluster/"
RETENTION = "/cluster/retention/"
BUTTON = "Run retention now…"


pytestmark = pytest.mark.usefixtures("task_queue")


@pytest.fixture
def expired_import(db: None) -> ImportJob:
    return ImportJob.objects.create(
        original_filename="old.csv",
        status=ImportStatus.COMPLETED,
        completed_at=timezone.now() - timedelta(days=365),
    )


def staff_user(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def test_staff_without_the_permission_cannot_queue_retention(
    client_for: Callable[..., Client], expired_import: ImportJob, caplog: Any
) -> None:
    client = client_for(staff_user("operator"))

    page = client.get(PAGE)
    confirm = client.get(RETENTION)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="django.request"):
        posted = client.post(RETENTION)

    assert page.status_code == 200
    assert BUTTON not in page.content.decode()
    assert confirm.status_code == 403
    assert posted.status_code == 403
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == (
        "Permission denied: user operator, POST /cluster/retention/, missing imports.run_retention"
    )
    assert get_broker().queue_size() == 0
    assert ImportJob.objects.filter(pk=expired_import.pk).exists()


def test_the_permission_without_staff_status_is_not_enough(
    client_for: Callable[..., Client],
) -> None:
    user = User.objects.create_user("clerk")
    user.user_permissions.set(Permission.objects.filter(codename="run_retention"))
    client = client_for(user)

    assert client.get(RETENTION).status_code == 403
    assert client.post(RETENTION).status_code == 403
    assert get_broker().queue_size() == 0


def test_staff_with_the_permission_sees_the_button_and_queues_retention(
    client_for: Callable[..., Client], expired_import: ImportJob
) -> None:
    client = client_for(staff_user("operator", "run_retention"))

    assert BUTTON in client.get(PAGE).content.decode()
    assert "1 import</strong>" in client.get(RETENTION).content.decode()
    response = client.post(RETENTION)

    assert response.status_code == 302
    assert get_broker().queue_size() == 1


def test_seed_demo_grants_it_to_the_demo_user_made_before_it_existed(
    settings: Any, tmp_path: Path, client_for: Callable[..., Client]
) -> None:
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", stdout=StringIO())
    demo = User.objects.get(username="demo")
    demo.user_permissions.remove(Permission.objects.get(codename="run_retention"))
    demo = User.objects.get(pk=demo.pk)  # no cached permissions
    assert not demo.has_perm("imports.run_retention")

    call_command("seed_demo", stdout=StringIO())

    demo = User.objects.get(pk=demo.pk)
    assert demo.is_staff and demo.has_perm("imports.run_retention")
    assert BUTTON in client_for(demo).get(PAGE).content.decode()
