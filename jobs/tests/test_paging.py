"""Cursor paging (jobs/paging.py): every sort in both directions, rows inserted between page
loads, one indexed query per page, and cursors that are not valid."""

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from jobs.filters import SORT_FIELDS
from jobs.models import Job
from jobs.paging import (
    MAX_LIMIT,
    CappedPaginator,
    CursorPage,
    InvalidCursor,
    count_capped,
    last_page_cursor,
    paginate,
    sorted_by,
)
from jobs.tests.plans import query_plan

SORTS = [prefix + key for key in SORT_FIELDS for prefix in ("", "-")]
BASE = datetime(2026, 1, 1, tzinfo=UTC)

# Few distinct values, so that many rows tie on the sort key and the id decides.
job_values = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["Bracket", "bracket", "Gear", "Zahnrad", "Ölwanne", "a b"]),
        "status": st.sampled_from(["pending", "running", "failed", "completed"]),
        "priority": st.integers(0, 3),
        "customer_name": st.sampled_from(["", "", "Acme", "Globex"]),
        "created_at": st.integers(0, 3).map(lambda minutes: BASE + timedelta(minutes=minutes)),
        "updated_at": st.integers(0, 3).map(lambda minutes: BASE + timedelta(seconds=minutes)),
    }
)


def make_jobs(values: list[dict[str, Any]]) -> list[int]:
    return [Job.objects.create(**fields).pk for fields in values]


def walk(
    sort: str, limit: int, inserts: list[list[dict[str, Any]]], *, backwards: bool
) -> list[list[int]]:
    """The ids of every page, first to last (walking forward from the first page) or last to
    first (walking back from the last page); before each page after the first, the next batch
    of `inserts` is added."""
    batches = iter(inserts)
    cursor = last_page_cursor(sort) if backwards else None
    pages = []
    most_pages = Job.objects.count() + sum(len(batch) for batch in inserts) + 1
    while True:
        page = paginate(Job.objects.all(), sort=sort, cursor=cursor, limit=limit)
        pages.append([job.pk for job in page.items])
        assert len(pages) <= most_pages, "the pages do not end"
        cursor = page.prev_cursor if backwards else page.next_cursor
        if cursor is None:
            return pages
        make_jobs(next(batches, []))


class TestPagesNeitherRepeatNorSkip(TestCase):
    """Whatever rows there are and are inserted meanwhile, walking the pages in either
    direction shows every row that was there from the start exactly once, in the database's
    own order, and no row twice."""

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        sort=st.sampled_from(SORTS),
        limit=st.integers(1, 5),
        backwards=st.booleans(),
        existing=st.lists(job_values, min_size=0, max_size=25),
        inserts=st.lists(st.lists(job_values, max_size=4), max_size=10),
    )
    def test_every_row_once_in_order(
        self,
        sort: str,
        limit: int,
        backwards: bool,
        existing: list[dict[str, Any]],
        inserts: list[list[dict[str, Any]]],
    ) -> None:
        original = set(make_jobs(existing))
        pages = walk(sort, limit, inserts, backwards=backwards)
        if backwards:
            pages.reverse()
        shown = [pk for page in pages for pk in page]
        assert len(shown) == len(set(shown)), "a row was shown twice"
        assert original <= set(shown), "a row was skipped"
        in_order = list(sorted_by(Job.objects.all(), sort).values_list("pk", flat=True))
        assert [pk for pk in shown if pk in original] == [pk for pk in in_order if pk in original]
        assert all(len(page) <= limit for page in pages)
        # Every page but the first one (walking back: the last one) is full.
        full = pages[1:] if backwards else pages[:-1]
        assert all(len(page) == limit for page in full)


@pytest.mark.django_db
@pytest.mark.parametrize("sort", SORTS)
def test_forward_and_back_give_the_same_pages(sort: str) -> None:
    make_jobs(
        [
            {"name": f"Job {n % 4}", "priority": n % 3, "customer_name": ["", "Acme"][n % 2]}
            for n in range(11)
        ]
    )
    forward = walk(sort, 4, [], backwards=False)
    pages: list[CursorPage] = [paginate(Job.objects.all(), sort=sort, limit=4)]
    while pages[-1].has_next:
        pages.append(paginate(Job.objects.all(), sort=sort, cursor=pages[-1].next_cursor, limit=4))
    assert [[job.pk for job in page.items] for page in pages] == forward
    # Previous from each page is the page before it.
    for before, page in zip(pages, pages[1:], strict=False):
        back = paginate(Job.objects.all(), sort=sort, cursor=page.prev_cursor, limit=4)
        assert [job.pk for job in back.items] == [job.pk for job in before.items]
        assert back.has_next and back.has_prev == before.has_prev
    assert not pages[0].has_prev and pages[0].prev_cursor is None
    assert not pages[-1].has_next and pages[-1].next_cursor is None


@pytest.mark.django_db
def test_nullable_sort_column_puts_null_last_ascending(monkeypatch) -> None:
    """`started_at` can be NULL: NULL sorts after every value ascending, before descending,
    and paging crosses from values to NULLs and back without losing a row."""
    monkeypatch.setitem(SORT_FIELDS, "started", "started_at")
    times = [None, BASE, None, BASE + timedelta(hours=1), BASE, None, BASE + timedelta(hours=2)]
    ids = make_jobs([{"name": f"Job {n}", "started_at": t} for n, t in enumerate(times)])
    for sort in ("started", "-started"):
        for backwards in (False, True):
            pages = walk(sort, 2, [], backwards=backwards)
            shown = [pk for page in (reversed(pages) if backwards else pages) for pk in page]
            assert sorted(shown) == sorted(ids)
            nulls = [pk for pk in shown if Job.objects.get(pk=pk).started_at is None]
            if sort == "started":
                assert shown[-3:] == nulls == sorted(nulls)
            else:
                assert shown[:3] == nulls == sorted(nulls, reverse=True)


@pytest.mark.django_db
def test_a_page_is_one_query_of_limit_plus_one_rows() -> None:
    make_jobs([{"name": f"Job {n}"} for n in range(5)])
    first = paginate(Job.objects.all(), sort="name", limit=2)
    with CaptureQueriesContext(connection) as queries:
        page = paginate(Job.objects.all(), sort="name", cursor=first.next_cursor, limit=2)
    assert [job.name for job in page.items] == ["Job 2", "Job 3"]
    assert len(queries) == 1
    assert "LIMIT 3" in queries[0]["sql"]
    assert "OFFSET" not in queries[0]["sql"]


@pytest.mark.django_db
@pytest.mark.parametrize("sort", SORTS)
def test_pages_walk_an_index_without_sorting(sort: str) -> None:
    """The page query seeks an index that is in the sort order: no sort of the matches.
    PostgreSQL would read a table this small whole, so its other plans are switched off for
    the EXPLAIN (bench/bench_jobs_list.py times the pages at a million jobs)."""
    make_jobs([{"name": f"Job {n}"} for n in range(3)])
    first = paginate(Job.objects.all(), sort=sort, limit=1)
    for cursor in (first.next_cursor, last_page_cursor(sort)):
        with CaptureQueriesContext(connection) as queries:
            paginate(Job.objects.all(), sort=sort, cursor=cursor, limit=1)
        plan = query_plan(queries[0]["sql"], without=("seqscan", "bitmapscan"))
        if connection.vendor == "sqlite":
            assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, plan
            continue
        # An index on created_at alone is in (created_at, id) order but for ties, which an
        # Incremental Sort puts right a few rows at a time; a plain Sort would read every match.
        assert "Index Scan" in plan, plan
        assert not re.search(r"(?<!Incremental )Sort  \(cost", plan), plan


@pytest.mark.django_db
def test_filters_and_related_rows_come_through() -> None:
    make_jobs([{"name": f"Job {n}", "status": ["pending", "failed"][n % 2]} for n in range(7)])
    failed = Job.objects.filter(status="failed").select_related("printer")
    page = paginate(failed, sort="name", limit=2)
    page = paginate(failed, sort="name", cursor=page.next_cursor, limit=2)
    assert [job.name for job in page.items] == ["Job 5"]
    assert not page.has_next and page.has_prev


def encode(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "!!!!",
        "é",
        "x" * 5000,
        encode("just a string"),
        encode([1, 2]),
        encode({"sort": "name"}),
        encode({"sort": "name", "after": ["Job", 1], "before": ["Job", 1]}),
        encode({"sort": "name", "after": None}),
        encode({"sort": "name", "after": ["Job"]}),
        encode({"sort": "name", "after": [3, 1]}),
        encode({"sort": "name", "after": [None, 1]}),
        encode({"sort": "name", "after": ["Job", "1"]}),
        encode({"sort": "name", "after": ["Job", True]}),
        encode({"sort": "name", "after": ["Job", -4]}),
        encode({"sort": "name", "after": ["x" * 300, 1]}),
        encode({"sort": ["name"], "after": ["Job", 1]}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        encode({"sort": "name", "after": ["Job", 1]})[:-3],  # cut short
    ],
)
def test_a_damaged_cursor_is_a_clear_error(cursor: str) -> None:
    with pytest.raises(InvalidCursor, match="The page cursor is not valid"):
        paginate(Job.objects.all(), sort="name", cursor=cursor)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sort", "position"),
    [
        ("priority", ["3", 1]),
        ("priority", [2.5, 1]),
        ("-updated", ["yesterday", 1]),
        ("-updated", ["2026-01-01T00:00:00", 1]),  # no time zone
        ("-updated", [1767225600, 1]),
    ],
)
def test_a_cursor_value_of_the_wrong_type_is_a_clear_error(sort: str, position: list) -> None:
    with pytest.raises(InvalidCursor, match="The page cursor is not valid"):
        paginate(Job.objects.all(), sort=sort, cursor=encode({"sort": sort, "after": position}))


@pytest.mark.django_db
def test_a_cursor_of_another_sort_says_so() -> None:
    make_jobs([{"name": f"Job {n}"} for n in range(3)])
    page = paginate(Job.objects.all(), sort="name", limit=1)
    with pytest.raises(InvalidCursor, match="another sort order"):
        paginate(Job.objects.all(), sort="-name", cursor=page.next_cursor)


@pytest.mark.django_db
def test_unknown_sort_and_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="Unknown sort 'notes'"):
        paginate(Job.objects.all(), sort="notes")
    for limit in (0, MAX_LIMIT + 1):
        with pytest.raises(ValueError, match="between 1 and"):
            paginate(Job.objects.all(), limit=limit)


@pytest.mark.django_db
def test_capped_count_and_paginator() -> None:
    make_jobs([{"name": f"Job {n}"} for n in range(7)])
    assert count_capped(Job.objects.all(), 10) == 7
    assert count_capped(Job.objects.all(), 4) == 5
    paginator = CappedPaginator(Job.objects.order_by("pk"), 2)
    paginator.cap = 4
    assert (paginator.count, paginator.is_capped, paginator.num_pages) == (5, True, 2)
    with CaptureQueriesContext(connection) as queries:
        CappedPaginator(Job.objects.order_by("pk"), 2).count  # noqa: B018 - the query is the test
    assert "LIMIT" in queries[0]["sql"]


class TestPagesFoundPieceByPiece(TestCase):
    """A filter on several statuses is paged one status at a time (`parts`): the pages are
    exactly those of the plain query, in both directions."""

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        sort=st.sampled_from(["updated", "-updated"]),
        limit=st.integers(1, 4),
        statuses=st.lists(
            st.sampled_from(["pending", "running", "failed"]), min_size=2, max_size=3, unique=True
        ),
        existing=st.lists(job_values, min_size=0, max_size=20),
    )
    def test_same_pages_as_the_plain_query(
        self, sort: str, limit: int, statuses: list[str], existing: list[dict[str, Any]]
    ) -> None:
        make_jobs(existing)
        chosen = Job.objects.filter(status__in=statuses)
        parts = [Q(status=status) for status in statuses]
        for start in (None, last_page_cursor(sort)):
            cursor, plain_cursor = start, start
            while True:
                page = paginate(chosen, sort=sort, cursor=cursor, limit=limit, parts=parts)
                plain = paginate(chosen, sort=sort, cursor=plain_cursor, limit=limit)
                assert [job.pk for job in page.items] == [job.pk for job in plain.items]
                assert (page.has_next, page.has_prev) == (plain.has_next, plain.has_prev)
                backwards = start is not None
                cursor = page.prev_cursor if backwards else page.next_cursor
                plain_cursor = plain.prev_cursor if backwards else plain.next_cursor
                if cursor is None:
                    break
