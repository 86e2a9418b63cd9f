"""jobs.bulk.bulk_update_status: the docs/bulk-status.md contract every surface relies on."""

import json
import logging
import sqlite3
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.bulk import MAX_ITEMS, bulk_update_status
from jobs.models import Job, JobEvent
from jobs.status import JobStatus
from jobs.tests.status_tables import DOCS_TABLE

pytestmark = pytest.mark.django_db

S = JobStatus
SQL_LOOKING = "x'; DROP TABLE jobs_job;--"


def allowed(old: str, new: str) -> bool:
    return old == new or new in DOCS_TABLE[old]


def snapshot() -> tuple[list[dict[str, Any]], int]:
    """Every stored job value and the number of events: "nothing written" means this is equal."""
    return list(Job.objects.order_by("pk").values()), JobEvent.objects.count()


def make_jobs(count: int, **fields: Any) -> list[Job]:
    fields.setdefault("status", S.PENDING)
    Job.objects.bulk_create(Job(name=f"Job {n}", **fields) for n in range(count))
    return list(Job.objects.order_by("pk"))


def run(items: object, actor: Any = None) -> dict[str, Any]:
    """Call the function and check the one promise every response keeps: standard JSON."""
    response = bulk_update_status(items, actor=actor, origin="ui")
    json.dumps(response, allow_nan=False)
    return response


def codes(response: dict[str, Any]) -> list[str | None]:
    return [r["error"]["code"] if "error" in r else None for r in response["results"]]


# --- Request-level rules ----------------------------------------------------------------------


def test_empty_list_is_a_success_with_zero_counts(django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        assert run([]) == {"updated_count": 0, "failed_count": 0, "results": []}


@pytest.mark.parametrize("items", [None, {"id": 1, "status": "pending"}, "[]", 5, ({"id": 1},)])
def test_anything_but_a_list_is_a_validation_error(items: object) -> None:
    response = run(items)
    assert response["error"]["code"] == "VALIDATION_ERROR"
    assert response["error"]["retryable"] is False
    assert "list" in response["error"]["message"]


@pytest.mark.parametrize("bad_item", [5, "1", None, ["id", 1]])
def test_an_item_that_is_not_an_object_is_a_validation_error(make_job, bad_item) -> None:
    job = make_job()
    before = snapshot()
    response = run([{"id": job.pk, "status": "running"}, bad_item])
    assert response["error"]["code"] == "VALIDATION_ERROR"
    assert "Item 2" in response["error"]["message"]
    assert snapshot() == before


def test_one_hundred_items_are_accepted(admin_user) -> None:
    jobs = make_jobs(MAX_ITEMS)
    response = run([{"id": job.pk, "status": "scheduled"} for job in jobs], admin_user)
    assert (response["updated_count"], response["failed_count"]) == (100, 0)
    assert Job.objects.filter(status="scheduled").count() == 100
    assert JobEvent.objects.count() == 100


def test_one_hundred_and_one_items_are_refused_and_nothing_written(admin_user) -> None:
    jobs = make_jobs(MAX_ITEMS + 1)
    before = snapshot()
    response = run([{"id": job.pk, "status": "scheduled"} for job in jobs], admin_user)
    assert response == {
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "Too many items (101): one batch takes at most 100 jobs.",
            "retryable": False,
        }
    }
    assert snapshot() == before


def test_repeated_ids_are_refused_and_named(make_job) -> None:
    first, second, third = make_job(), make_job(), make_job()
    before = snapshot()
    items = [
        {"id": second.pk, "status": "running"},
        {"id": first.pk, "status": "running"},
        {"id": third.pk, "status": "running"},
        {"id": second.pk, "status": "cancelled"},
        {"id": first.pk, "status": "running"},
    ]
    error = run(items)["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["retryable"] is False
    assert f"Repeated ids: {first.pk}, {second.pk}." in error["message"]
    assert str(third.pk) not in error["message"].replace(f"{first.pk}, {second.pk}", "")
    assert snapshot() == before


def test_true_and_one_are_not_the_same_id(make_job) -> None:
    """Booleans are not ids (True == 1 in Python): one is invalid, not a repeat."""
    job = make_job()
    response = run([{"id": job.pk, "status": "running"}, {"id": True, "status": "running"}])
    assert codes(response) == ["ROLLED_BACK", "INVALID_ID"]


# --- Per-item rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id", ["1", 1.0, 2.5, True, False, None, 0, -1, -(2**70), "", "abc", [1], {"id": 1}]
)
def test_ids_that_are_not_positive_integers_are_rejected_per_item(make_job, bad_id) -> None:
    job = make_job()
    before = snapshot()
    response = run([{"id": job.pk, "status": "running"}, {"id": bad_id, "status": "running"}])
    assert codes(response) == ["ROLLED_BACK", "INVALID_ID"]
    assert response["results"][1]["error"]["message"] == "The id must be a positive whole number."
    assert (response["updated_count"], response["failed_count"]) == (0, 2)
    assert snapshot() == before


def test_a_missing_id_key_is_an_invalid_id() -> None:
    response = run([{"status": "running"}])
    assert response["results"] == [
        {
            "id": None,
            "success": False,
            "error": {"code": "INVALID_ID", "message": "The id must be a positive whole number."},
        }
    ]


@pytest.mark.parametrize("missing_id", [10**9, 2**63 - 1, 2**63, 2**80])
def test_ids_of_no_job_are_not_found(make_job, missing_id) -> None:
    job = make_job()
    response = run([{"id": missing_id, "status": "running"}, {"id": job.pk, "status": "running"}])
    assert codes(response) == ["NOT_FOUND", "ROLLED_BACK"]
    assert response["results"][0] == {
        "id": missing_id,
        "success": False,
        "error": {"code": "NOT_FOUND", "message": f"No job with id {missing_id}."},
    }


@pytest.mark.parametrize(
    "bad_status",
    [
        "completed ",
        " completed",
        "Completed",
        "COMPLETED",
        "",
        "done",
        SQL_LOOKING,
        "completed\n",
        None,
        3,
        True,
        ["completed"],
        {"status": "completed"},
    ],
)
def test_statuses_must_be_exactly_one_of_the_six(make_job, bad_status) -> None:
    job, other = make_job(status="running"), make_job()
    before = snapshot()
    response = run([{"id": other.pk, "status": "running"}, {"id": job.pk, "status": bad_status}])
    assert codes(response) == ["ROLLED_BACK", "INVALID_STATUS"]
    message = response["results"][1]["error"]["message"]
    assert message == (
        "The status must be exactly one of: "
        "pending, scheduled, running, completed, failed, cancelled."
    )
    assert snapshot() == before


def test_sql_looking_status_is_only_data(make_job) -> None:
    job = make_job()
    response = run([{"id": job.pk, "status": SQL_LOOKING}])
    assert codes(response) == ["INVALID_STATUS"]
    assert "DROP" not in json.dumps(response)
    assert Job.objects.filter(pk=job.pk, status="pending").exists()  # the table is still there


def test_forbidden_transitions_are_rejected_with_the_status_rule_message(make_job) -> None:
    done, fresh = make_job(status="completed"), make_job(status="pending")
    before = snapshot()
    response = run([{"id": fresh.pk, "status": "running"}, {"id": done.pk, "status": "running"}])
    assert codes(response) == ["ROLLED_BACK", "INVALID_TRANSITION"]
    assert response["results"][1]["error"]["message"] == (
        "A completed job cannot be moved to running."
    )
    assert snapshot() == before


def test_every_failing_item_is_reported_with_its_own_code(make_job) -> None:
    pending, completed = make_job(), make_job(status="completed")
    items = [
        {"id": pending.pk, "status": "scheduled"},
        {"id": -3, "status": "pending"},
        {"id": 10**9, "status": "pending"},
        {"id": completed.pk, "status": "failed"},
        {"id": "7", "status": "Pending"},
    ]
    response = run(items)
    assert codes(response) == [
        "ROLLED_BACK",
        "INVALID_ID",
        "NOT_FOUND",
        "INVALID_TRANSITION",
        "INVALID_ID",
    ]
    assert [r["id"] for r in response["results"]] == [pending.pk, -3, 10**9, completed.pk, "7"]
    assert all(r["success"] is False for r in response["results"])
    assert (response["updated_count"], response["failed_count"]) == (0, 5)


def test_one_bad_item_rolls_back_ninety_nine_good_ones(admin_user, make_job) -> None:
    good = make_jobs(99, status=S.RUNNING)
    bad = make_job(status="cancelled")
    items = [{"id": job.pk, "status": "completed"} for job in good]
    items.insert(57, {"id": bad.pk, "status": "running"})
    before = snapshot()
    response = run(items, admin_user)
    assert snapshot() == before
    assert (response["updated_count"], response["failed_count"]) == (0, 100)
    assert codes(response) == ["ROLLED_BACK"] * 57 + ["INVALID_TRANSITION"] + ["ROLLED_BACK"] * 42
    rolled_back = response["results"][0]["error"]
    assert rolled_back == {
        "code": "ROLLED_BACK",
        "message": "Not changed, because another item in this batch failed.",
    }


# --- What a successful batch writes ------------------------------------------------------------


def test_a_batch_is_written_with_one_timestamp_version_actor_and_event(admin_user) -> None:
    jobs = make_jobs(5, status=S.RUNNING)
    before = {job.pk: job.updated_at for job in jobs}
    response = run([{"id": job.pk, "status": "completed"} for job in jobs], admin_user)
    assert response == {
        "updated_count": 5,
        "failed_count": 0,
        "results": [{"id": job.pk, "success": True} for job in jobs],
    }
    stored = list(Job.objects.order_by("pk"))
    stamps = {job.updated_at for job in stored}
    assert len(stamps) == 1
    (stamp,) = stamps
    assert all(stamp > before[job.pk] for job in stored)
    for job in stored:
        assert (job.status, job.version, job.updated_by) == ("completed", 2, admin_user)
        assert job.completed_at == stamp
        event = job.events.get()
        assert (event.kind, event.actor, event.created_at) == ("status_changed", admin_user, stamp)
        assert event.changes == {"status": ["running", "completed"]}


def test_only_status_side_effects_and_bookkeeping_change(admin_user, printer, make_job) -> None:
    job = make_job(
        status="pending",
        priority=7,
        is_business=True,
        customer_name="Acme",
        notes="fragile",
        file_name="gear.3mf",
        printer=printer,
        reference="R-1",
    )
    before = Job.objects.filter(pk=job.pk).values().get()
    run([{"id": job.pk, "status": "running"}], admin_user)
    after = Job.objects.filter(pk=job.pk).values().get()
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"status", "started_at", "updated_at", "updated_by_id", "version"}


@pytest.mark.parametrize(
    ("start", "target", "expected"),
    [
        ("pending", "running", {"started_at": "AT"}),
        ("running", "completed", {"completed_at": "AT"}),
        ("running", "failed", {"completed_at": "AT"}),
        ("scheduled", "cancelled", {"cancelled_at": "AT", "cancelled_by": "ACTOR"}),
        ("completed", "pending", {"completed_at": None}),
    ],
)
def test_status_side_effects_come_from_the_status_rules(
    admin_user, make_job, start, target, expected
) -> None:
    job = make_job(status=start)
    if start == "completed":
        Job.objects.filter(pk=job.pk).update(completed_at=job.created_at)
    run([{"id": job.pk, "status": target}], admin_user)
    job.refresh_from_db()
    values = {"AT": job.updated_at, "ACTOR": admin_user}
    for name, value in expected.items():
        assert getattr(job, name) == values.get(value, value)
    kind = "cancelled" if target == "cancelled" else "status_changed"
    assert job.events.get().kind == kind


def test_each_job_gets_its_own_side_effects_in_one_batch(admin_user, make_job) -> None:
    """Jobs in one batch may need different side effects: a start time is set only if empty."""
    earlier = timezone.now() - timedelta(days=1)
    fresh, rerun = make_job(status="pending"), make_job(status="pending", started_at=earlier)
    failing = make_job(status="running")
    items = [
        {"id": fresh.pk, "status": "running"},
        {"id": rerun.pk, "status": "running"},
        {"id": failing.pk, "status": "failed"},
    ]
    assert run(items, admin_user)["updated_count"] == 3
    fresh, rerun, failing = (Job.objects.get(pk=job.pk) for job in (fresh, rerun, failing))
    assert fresh.started_at == fresh.updated_at == rerun.updated_at == failing.updated_at
    assert rerun.started_at == earlier and rerun.completed_at is None
    assert failing.completed_at == failing.updated_at and failing.status == "failed"
    assert [job.version for job in (fresh, rerun, failing)] == [2, 2, 2]


def test_reopening_a_cancelled_job_clears_the_cancellation(admin_user, make_job) -> None:
    job = make_job()
    job.cancel(actor=admin_user, origin="ui", reason="customer called")
    run([{"id": job.pk, "status": "pending"}], admin_user)
    job.refresh_from_db()
    assert job.status == "pending"
    assert (job.cancelled_at, job.cancelled_by, job.cancellation_reason) == (None, None, "")


def test_setting_the_same_status_again_succeeds_and_refreshes_updated_at(
    admin_user, make_job
) -> None:
    job = make_job(status="running")
    started = job.updated_at
    response = run([{"id": job.pk, "status": "running"}], admin_user)
    assert response["updated_count"] == 1 and response["results"][0]["success"] is True
    job.refresh_from_db()
    assert job.status == "running" and job.updated_at > started
    assert job.version == 2 and job.updated_by == admin_user
    assert job.events.get().changes == {"status": ["running", "running"]}


def test_the_system_may_act_without_a_user(make_job) -> None:
    job = make_job()
    run([{"id": job.pk, "status": "cancelled"}], None)
    job.refresh_from_db()
    assert job.updated_by is None and job.cancelled_by is None
    assert job.events.get().actor is None


def test_results_keep_the_input_order(make_job) -> None:
    jobs = [make_job() for _ in range(6)]
    order = [jobs[i] for i in (3, 0, 5, 1, 4, 2)]
    response = run([{"id": job.pk, "status": "scheduled"} for job in order])
    assert [r["id"] for r in response["results"]] == [job.pk for job in order]


def test_a_batch_costs_a_fixed_number_of_queries(admin_user, django_assert_max_num_queries) -> None:
    jobs = make_jobs(MAX_ITEMS, status=S.SCHEDULED)
    Job.objects.filter(pk__in=[job.pk for job in jobs[:50]]).update(
        status="running", cancelled_by=admin_user
    )
    items = [{"id": job.pk, "status": "cancelled"} for job in jobs]
    # savepoint, select (locked, with the users), one update per distinct set of new values
    # (here two: cancelled_by already the actor or not), one insert of events, release;
    # on PostgreSQL also the SET LOCAL lock_timeout
    budget = 6 + (connection.vendor == "postgresql")
    with django_assert_max_num_queries(budget):
        assert run(items, admin_user)["updated_count"] == MAX_ITEMS


def test_one_structured_log_line_per_call(admin_user, make_job, caplog) -> None:
    job = make_job()
    with caplog.at_level(logging.INFO, logger="jobs"):
        run([{"id": job.pk, "status": "running"}], admin_user)
    (record,) = [r for r in caplog.records if r.name.startswith("jobs")]
    assert record.actor == "admin" and record.ids == [job.pk]
    assert record.outcome == "updated"
    assert f"ids=[{job.pk}]" in record.getMessage()


# --- Top-level failures -----------------------------------------------------------------------


def test_an_unexpected_error_is_internal_error_and_nothing_written(
    admin_user, make_job, monkeypatch, caplog
) -> None:
    job = make_job()
    before = snapshot()

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("SELECT * FROM jobs_job at /srv/jobsite/jobs/bulk.py line 3")

    monkeypatch.setattr(JobEvent.objects, "bulk_create", explode)
    response = run([{"id": job.pk, "status": "running"}], admin_user)
    assert response == {
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "Something went wrong on the server. Nothing was changed.",
            "retryable": False,
        }
    }
    assert snapshot() == before  # the job UPDATE ran before the failure and was rolled back
    assert "SELECT * FROM jobs_job" in caplog.text  # the detail goes to the server log only


def test_a_database_error_that_is_not_a_busy_database_is_not_retryable(
    make_job, monkeypatch
) -> None:
    job = make_job()
    before = snapshot()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise IntegrityError('insert into "jobs_jobevent" violates check constraint')

    monkeypatch.setattr(JobEvent.objects, "bulk_create", refuse)
    error = run([{"id": job.pk, "status": "running"}])["error"]
    assert error["code"] == "DB_ERROR" and error["retryable"] is False
    assert "jobs_" not in error["message"] and "insert" not in error["message"]
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_a_locked_database_is_a_retryable_db_error_and_nothing_written(make_job) -> None:
    """Another connection holds the write lock (SQLite) or the rows (PostgreSQL) meanwhile."""
    job = make_job(status="running")
    before = snapshot()
    items = [{"id": job.pk, "status": "completed"}]
    if connection.vendor == "sqlite":
        response = _while_sqlite_write_locked(items)
    elif connection.vendor == "postgresql":
        response = _while_postgresql_rows_locked(job.pk, items)
    else:  # pragma: no cover - Jobsite runs on SQLite or PostgreSQL only
        pytest.fail(f"no lock test for {connection.vendor}")
    assert response == {
        "error": {
            "code": "DB_ERROR",
            "message": "The database is busy. Nothing was changed; please try again.",
            "retryable": True,
        }
    }
    assert snapshot() == before
    assert run(items)["updated_count"] == 1  # once the lock is gone the same call succeeds


def _while_sqlite_write_locked(items: list[dict[str, Any]]) -> dict[str, Any]:
    # The test database is a shared-cache in-memory database or a file (SQLITE_TEST_NAME);
    # a plain sqlite3 connection opens either. Wait 0.1 s, not the configured busy timeout.
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 100")
    other = sqlite3.connect(connection.settings_dict["NAME"], uri=True, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        return run(items)
    finally:
        other.execute("ROLLBACK")
        other.close()
        connection.close()  # drop the short busy timeout with the connection


def _while_postgresql_rows_locked(pk: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute("SELECT id FROM jobs_job WHERE id = %s FOR UPDATE", [pk])
        # bulk_update_status sets its own lock timeout; shorten it so the test is quick.
        with patch("jobs.bulk.POSTGRES_LOCK_TIMEOUT", "200ms"):
            return run(items)
    finally:
        other.rollback()
        other.close()


# --- Properties -------------------------------------------------------------------------------

BAD_IDS = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(),
    st.text(max_size=6),
    st.integers(max_value=0),
    st.lists(st.integers(), max_size=2),
)
BAD_STATUSES = st.one_of(
    st.none(),
    st.integers(),
    st.sampled_from(["completed ", "Completed", " pending", SQL_LOOKING]),
    st.text(max_size=12).filter(lambda text: text not in S.values),
)
NO_SUCH_JOB = st.integers(min_value=10**12, max_value=2**80)
HYPOTHESIS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def expected_code(item: dict[str, Any], jobs: dict[int, str]) -> str | None:
    """The per-item verdict, from docs/bulk-status.md rather than the code under test."""
    id_, status = item.get("id"), item.get("status")
    if type(id_) is not int or id_ <= 0:
        return "INVALID_ID"
    if id_ not in jobs:
        return "NOT_FOUND"
    if status not in DOCS_TABLE:
        return "INVALID_STATUS"
    if not allowed(jobs[id_], status):
        return "INVALID_TRANSITION"
    return None


@HYPOTHESIS
@given(data=st.data())
def test_property_any_batch_with_an_invalid_item_changes_nothing(
    data: st.DataObject, admin_user
) -> None:
    with transaction.atomic():
        starts = data.draw(st.lists(st.sampled_from(S.values), max_size=6), label="starts")
        jobs = {Job.objects.create(name="J", status=start).pk: start for start in starts}
        items: list[dict[str, Any]] = [
            {"id": pk, "status": data.draw(st.one_of(st.sampled_from(S.values), BAD_STATUSES))}
            for pk in jobs
        ]
        extras = data.draw(
            st.lists(
                st.fixed_dictionaries(
                    {"id": st.one_of(BAD_IDS, NO_SUCH_JOB), "status": st.sampled_from(S.values)}
                ),
                max_size=3,
                unique_by=lambda item: repr(item["id"]),
            ),
            label="extras",
        )
        batch = data.draw(st.permutations(items + extras), label="batch")
        if all(expected_code(item, jobs) is None for item in batch):
            batch.insert(data.draw(st.integers(0, len(batch))), {"id": 10**12, "status": "pending"})
        before = snapshot()

        response = run(batch, admin_user)

        assert snapshot() == before
        assert (response["updated_count"], response["failed_count"]) == (0, len(batch))
        expected = [expected_code(item, jobs) or "ROLLED_BACK" for item in batch]
        assert codes(response) == expected
        transaction.set_rollback(True)


@HYPOTHESIS
@given(data=st.data())
def test_property_a_valid_batch_is_written_whole_in_input_order(
    data: st.DataObject, admin_user
) -> None:
    with transaction.atomic():
        starts = data.draw(st.lists(st.sampled_from(S.values), min_size=1, max_size=8))
        jobs = {Job.objects.create(name="J", status=start).pk: start for start in starts}
        items = [
            {"id": pk, "status": data.draw(st.sampled_from(sorted(DOCS_TABLE[start] | {start})))}
            for pk, start in jobs.items()
        ]
        batch = data.draw(st.permutations(items))

        response = run(batch, admin_user)

        assert [r["id"] for r in response["results"]] == [item["id"] for item in batch]
        assert response["updated_count"] == len(batch) and response["failed_count"] == 0
        stored = {job.pk: job for job in Job.objects.filter(pk__in=jobs)}
        assert {job.updated_at for job in stored.values()} == {stored[batch[0]["id"]].updated_at}
        for item in batch:
            assert stored[item["id"]].status == item["status"]
            assert stored[item["id"]].version == 2
        transaction.set_rollback(True)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["id", "status", "x"]), children, max_size=3)
    ),
    max_leaves=12,
)


@HYPOTHESIS
@given(items=JSON_VALUES)
def test_property_any_input_gets_a_standard_json_response(items: object) -> None:
    response = run(items)
    assert set(response) in ({"error"}, {"updated_count", "failed_count", "results"})
    if "results" in response:
        assert len(response["results"]) == len(items)
