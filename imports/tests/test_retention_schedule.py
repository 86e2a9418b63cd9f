"""The `imports-retention` schedule is kept in place by every migrate; django-q2 housekeeping."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import Failure, Schedule, Success
from django_q.monitor import save_task

from imports.retention import SCHEDULE_NAME


def migrate() -> None:
    call_command("migrate", verbosity=0)


def the_schedule() -> Schedule:
    schedules = list(Schedule.objects.filter(name=SCHEDULE_NAME))
    assert len(schedules) == 1
    return schedules[0]


@pytest.mark.django_db
def test_migrating_twice_keeps_exactly_one_daily_schedule() -> None:
    # The test database's own schedule was made when it was created: once its hour has passed
    # it is due, not in the future. The schedule this migrate makes is checked instead.
    Schedule.objects.filter(name=SCHEDULE_NAME).delete()
    migrate()
    migrate()

    schedule = the_schedule()
    assert schedule.func == "imports.tasks.cleanup_imports_task"
    assert schedule.schedule_type == Schedule.DAILY
    assert schedule.repeats == -1
    assert schedule.next_run > timezone.now()
    assert timezone.localtime(schedule.next_run).hour == 3


@pytest.mark.django_db
def test_a_deploy_does_not_reset_the_next_run() -> None:
    schedule = the_schedule()
    # The scheduler moved it on (or an operator pushed it back two days): a deploy keeps that.
    moved = timezone.localtime(schedule.next_run) + timedelta(days=2)
    Schedule.objects.filter(pk=schedule.pk).update(next_run=moved)

    migrate()
    migrate()

    assert the_schedule().next_run == moved


@pytest.mark.django_db
def test_a_changed_hour_setting_updates_the_schedule(settings: Any) -> None:
    before = the_schedule()
    settings.IMPORT_RETENTION_HOUR = 5

    migrate()

    after = the_schedule()
    assert after.pk == before.pk
    assert timezone.localtime(after.next_run).hour == 5
    assert timezone.now() < after.next_run <= timezone.now() + timedelta(days=1)
    migrate()  # and the next deploy leaves it alone
    assert the_schedule().next_run == after.next_run


@pytest.mark.django_db
def test_a_broken_or_duplicated_schedule_is_repaired_without_moving_the_next_run() -> None:
    schedule = the_schedule()
    Schedule.objects.filter(pk=schedule.pk).update(func="imports.tasks.gone", repeats=0)
    Schedule.objects.create(name=SCHEDULE_NAME, func="imports.tasks.cleanup_imports_task")

    migrate()

    repaired = the_schedule()
    assert repaired.pk == schedule.pk
    assert (repaired.func, repaired.repeats) == ("imports.tasks.cleanup_imports_task", -1)
    assert repaired.next_run == schedule.next_run


@pytest.mark.django_db
def test_a_deleted_schedule_comes_back_on_the_next_migrate() -> None:
    Schedule.objects.all().delete()
    migrate()
    assert the_schedule().func == "imports.tasks.cleanup_imports_task"


def _task(success: bool) -> dict:
    now = timezone.now()
    return {
        "id": uuid.uuid4().hex,
        "name": uuid.uuid4().hex,
        "func": "imports.tasks.cleanup_imports_task",
        "args": (),
        "kwargs": {},
        "started": now,
        "stopped": now,
        "result": "ok" if success else "Traceback: boom",
        "success": success,
        "group": SCHEDULE_NAME,
        "sync": True,  # as in-process: keeps the test's database connection open
    }


def test_settings_bound_successful_results() -> None:
    assert Conf.SAVE_LIMIT == 250
    assert Conf.SAVE_LIMIT > 0  # 0 would keep every success forever, < 0 none


@pytest.mark.django_db
def test_successful_results_are_bounded_and_failures_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Conf, "SAVE_LIMIT", 3)
    broker = get_broker()
    for success in [True] * 6 + [False] * 4:
        save_task(_task(success), broker)

    assert Success.objects.count() == 3
    assert Failure.objects.count() == 4
