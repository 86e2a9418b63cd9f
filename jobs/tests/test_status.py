from datetime import UTC, datetime
from itertools import product

import pytest

from jobs.models import Job
from jobs.status import (
    ALLOWED_TRANSITIONS,
    InvalidTransition,
    JobStatus,
    apply_status,
    can_cancel,
    can_transition,
    next_statuses,
)
from jobs.tests.status_tables import DOCS_TABLE

S = JobStatus
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EARLIER = datetime(2025, 12, 1, tzinfo=UTC)

ALL_PAIRS = list(product(S.values, S.values))


@pytest.mark.parametrize(("old", "new"), ALL_PAIRS)
def test_every_pair_follows_the_docs_table(old: str, new: str) -> None:
    expected = old == new or new in DOCS_TABLE[old]
    assert can_transition(old, new) is expected
    job = Job(name="x", status=old)
    if expected:
        apply_status(job, new, actor=None, at=AT)
        assert job.status == new
    else:
        with pytest.raises(InvalidTransition, match=f"A {old} job cannot be moved to {new}"):
            apply_status(job, new, actor=None, at=AT)
        assert job.status == old


def test_table_matches_the_docs_exactly() -> None:
    assert {k: set(v) for k, v in ALLOWED_TRANSITIONS.items()} == DOCS_TABLE


def test_unknown_status_is_never_allowed() -> None:
    assert not can_transition("pending", "done")
    assert not can_transition("done", "pending")


def test_running_sets_started_at_only_when_empty() -> None:
    job = Job(name="x", status=S.PENDING)
    assert apply_status(job, S.RUNNING, actor=None, at=AT) == ["status", "started_at"]
    assert job.started_at == AT
    job = Job(name="x", status=S.SCHEDULED, started_at=EARLIER)
    apply_status(job, S.RUNNING, actor=None, at=AT)
    assert job.started_at == EARLIER


@pytest.mark.parametrize("final", [S.COMPLETED, S.FAILED])
def test_finishing_sets_completed_at(final: str) -> None:
    job = Job(name="x", status=S.RUNNING, started_at=EARLIER)
    changed = apply_status(job, final, actor=None, at=AT)
    assert changed == ["status", "completed_at"]
    assert job.completed_at == AT and job.started_at == EARLIER


def test_cancel_sets_who_when_and_why(admin_user) -> None:
    job = Job(name="x", status=S.RUNNING)
    apply_status(job, S.CANCELLED, actor=admin_user, at=AT, reason="Out of filament")
    assert (job.cancelled_at, job.cancelled_by, job.cancellation_reason) == (
        AT,
        admin_user,
        "Out of filament",
    )


def test_back_to_pending_clears_completion_and_cancellation(admin_user) -> None:
    job = Job(
        name="x",
        status=S.CANCELLED,
        completed_at=EARLIER,
        cancelled_at=EARLIER,
        cancelled_by=admin_user,
        cancellation_reason="why",
        started_at=EARLIER,
    )
    apply_status(job, S.PENDING, actor=None, at=AT)
    assert job.completed_at is None and job.cancelled_at is None
    assert job.cancelled_by is None and job.cancellation_reason == ""
    assert job.started_at == EARLIER


def test_same_status_again_changes_no_field() -> None:
    job = Job(name="x", status=S.COMPLETED, completed_at=EARLIER)
    assert apply_status(job, S.COMPLETED, actor=None, at=AT) == []
    assert job.completed_at == EARLIER


@pytest.mark.parametrize("status", S.values)
def test_next_statuses_lists_current_first_then_allowed(status: str) -> None:
    options = next_statuses(status)
    assert options[0] == status
    assert set(options[1:]) == DOCS_TABLE[status]


@pytest.mark.parametrize("status", S.values)
def test_can_cancel(status: str) -> None:
    assert can_cancel(status) is ("cancelled" in DOCS_TABLE[status])
