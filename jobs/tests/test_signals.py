"""jobs.signals.jobs_changed: sent once a write of jobs commits, with its (from, to) status
pairs and surface; a write that is rolled back or changes nothing announces nothing."""

from collections import Counter

import pytest
from django.db import transaction

from jobs.bulk import bulk_update_status
from jobs.models import Job
from jobs.signals import jobs_changed

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def announced() -> list[dict]:
    received: list[dict] = []

    def receive(sender: object, **kwargs: object) -> None:
        received.append({"transitions": kwargs["transitions"], "surface": kwargs["surface"]})

    jobs_changed.connect(receive, weak=False)
    yield received
    jobs_changed.disconnect(receive)


def test_insert_edit_and_cancel_announce_their_transitions(announced, admin_user) -> None:
    job = Job(name="Gear", priority=1)
    job.insert(actor=admin_user, origin="cli")
    job.apply_changes({"priority": 5}, actor=admin_user, origin="api")
    job.apply_changes({"status": "running"}, actor=admin_user, origin="ui")
    job.cancel(actor=admin_user, origin="mcp")
    assert announced == [
        {"transitions": Counter({("", "pending"): 1}), "surface": "cli"},
        {"transitions": Counter({("pending", "pending"): 1}), "surface": "api"},
        {"transitions": Counter({("pending", "running"): 1}), "surface": "ui"},
        {"transitions": Counter({("running", "cancelled"): 1}), "surface": "mcp"},
    ]


def test_nothing_is_announced_before_commit_or_after_rollback(announced, make_job, admin_user):
    job = make_job(priority=1)
    announced.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        job.apply_changes({"priority": 2}, actor=admin_user, origin="ui")
        assert announced == []  # not yet committed
        raise RuntimeError("roll back")
    job = Job.objects.get(pk=job.pk)
    assert job.priority == 1
    job.apply_changes({"priority": 1}, actor=admin_user, origin="ui")  # changes nothing
    assert announced == []


def test_bulk_status_change_announces_one_counter_for_the_batch(announced, make_job, admin_user):
    jobs = [make_job(status="pending") for _ in range(3)]
    announced.clear()
    items = [{"id": job.pk, "status": "running"} for job in jobs]
    assert bulk_update_status(items, actor=admin_user, origin="api")["updated_count"] == 3
    assert announced == [{"transitions": Counter({("pending", "running"): 3}), "surface": "api"}]
