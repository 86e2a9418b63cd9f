"""Job.apply_changes, Job.cancel and Job.insert: the one write path every surface uses."""

import pytest

from jobs.models import Job, JobEvent, NotCancellable, VersionConflict
from jobs.status import InvalidTransition

pytestmark = pytest.mark.django_db


def test_insert_writes_created_event(admin_user, printer) -> None:
    job = Job(name="Gear", printer=printer, priority=4)
    job.insert(actor=admin_user, origin="ui")
    event = job.events.get()
    assert event.kind == "created" and event.actor == admin_user
    assert event.changes["name"] == [None, "Gear"]
    assert event.changes["printer"] == [None, "Prusa MK4 #1"]
    assert "notes" not in event.changes and "customer_name" not in event.changes  # empty
    assert job.created_by == job.updated_by == admin_user


def test_effective_save_bumps_version_and_writes_one_diff_event(admin_user, make_job) -> None:
    job = make_job(priority=1)
    before = job.updated_at
    event = job.apply_changes({"priority": 7, "name": "Bracket"}, actor=admin_user, origin="ui")
    job.refresh_from_db()
    assert (job.priority, job.version, job.updated_by) == (7, 2, admin_user)
    assert job.updated_at > before
    assert event.kind == "updated" and event.changes == {"priority": [1, 7]}
    assert JobEvent.objects.filter(job=job).count() == 1


def test_save_that_changes_nothing_writes_nothing(admin_user, make_job) -> None:
    job = make_job(priority=1)
    updated_at = job.updated_at
    assert (
        job.apply_changes({"priority": 1, "name": "Bracket"}, actor=admin_user, origin="ui") is None
    )
    job.refresh_from_db()
    assert job.version == 1 and job.updated_at == updated_at and not job.events.exists()


def test_stale_version_writes_nothing_and_names_the_latest(admin_user, editor, make_job) -> None:
    job = make_job()
    first, second = Job.objects.get(pk=job.pk), Job.objects.get(pk=job.pk)
    first.apply_changes({"priority": 3}, actor=editor, origin="ui", expected_version=1)
    with pytest.raises(VersionConflict) as conflict:
        second.apply_changes({"priority": 9}, actor=admin_user, origin="ui", expected_version=1)
    assert conflict.value.latest.updated_by == editor
    assert conflict.value.latest.version == 2
    job.refresh_from_db()
    assert job.priority == 3 and job.events.count() == 1


def test_status_change_applies_side_effects_and_event_kind(admin_user, make_job) -> None:
    job = make_job(status="pending")
    event = job.apply_changes({"status": "running"}, actor=admin_user, origin="ui")
    job.refresh_from_db()
    assert job.started_at is not None and event.kind == "status_changed"
    assert event.changes == {"status": ["pending", "running"]}


def test_forbidden_transition_raises_and_writes_nothing(admin_user, make_job) -> None:
    job = make_job(status="completed")
    with pytest.raises(InvalidTransition):
        job.apply_changes({"status": "running"}, actor=admin_user, origin="ui")
    job.refresh_from_db()
    assert job.status == "completed" and job.version == 1


def test_read_only_fields_cannot_be_changed(admin_user, make_job) -> None:
    job = make_job()
    with pytest.raises(ValueError, match="Not editable: reference, version"):
        job.apply_changes({"reference": "X", "version": 9}, actor=admin_user, origin="ui")


def test_cancel_records_who_and_why(editor, make_job) -> None:
    job = make_job(status="scheduled")
    event = job.cancel(actor=editor, origin="ui", reason="  customer called  ")
    job.refresh_from_db()
    assert job.status == "cancelled" and job.cancelled_by == editor
    assert job.cancellation_reason == "customer called" and job.cancelled_at is not None
    assert event.kind == "cancelled"
    assert event.changes["cancellation_reason"] == ["", "customer called"]


def test_cancel_refused_for_completed_job(editor, make_job) -> None:
    job = make_job(status="completed")
    with pytest.raises(NotCancellable, match="A completed job cannot be cancelled"):
        job.cancel(actor=editor, origin="ui")
    job.refresh_from_db()
    assert job.status == "completed" and not job.events.exists()
