"""The `imports-resume-stalled` schedule (crash recovery on the Redis broker) is kept in place
by every migrate, and comes back when it was deleted or broken."""

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from imports.importer import RESUME_SCHEDULE_NAME

pytestmark = pytest.mark.django_db


def migrate() -> None:
    call_command("migrate", verbosity=0)


def test_migrating_twice_keeps_exactly_one_minutely_schedule() -> None:
    migrate()
    migrate()
    schedule = Schedule.objects.get(name=RESUME_SCHEDULE_NAME)
    assert schedule.func == "imports.tasks.resume_stalled_imports_task"
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 1, -1)


def test_a_deleted_schedule_comes_back_and_duplicates_go() -> None:
    Schedule.objects.filter(name=RESUME_SCHEDULE_NAME).delete()
    migrate()
    assert Schedule.objects.filter(name=RESUME_SCHEDULE_NAME).count() == 1
    Schedule.objects.create(name=RESUME_SCHEDULE_NAME, func="x", schedule_type="D")
    migrate()
    assert Schedule.objects.filter(name=RESUME_SCHEDULE_NAME).count() == 1


def test_a_broken_schedule_is_repaired_without_moving_its_next_run() -> None:
    schedule = Schedule.objects.get(name=RESUME_SCHEDULE_NAME)
    Schedule.objects.filter(pk=schedule.pk).update(func="wrong.func", minutes=60)
    migrate()
    repaired = Schedule.objects.get(name=RESUME_SCHEDULE_NAME)
    assert (repaired.func, repaired.minutes) == ("imports.tasks.resume_stalled_imports_task", 1)
    assert repaired.next_run == schedule.next_run
