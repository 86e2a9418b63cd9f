"""Helpers for the django-q2 schedules this app keeps in place after every migrate."""

from typing import Any


def locked_single_schedule(schedule_model: type, name: str, *, using: str) -> Any | None:
    """The one schedule called `name`, row-locked, with any duplicates deleted; None if
    there is none. Call inside a transaction. `schedule_model` is django_q's Schedule
    (the migration state's during post_migrate)."""
    schedules = list(
        schedule_model.objects.using(using).select_for_update().filter(name=name).order_by("pk")
    )
    for duplicate in schedules[1:]:
        duplicate.delete()
    return schedules[0] if schedules else None
