"""SQLite's search index merges its segments between writes (jobs.search.merge_index), not
inside them: the migration turns FTS5's automatic merging off, and a merge step makes the
index smaller while it keeps finding the same jobs."""

import pytest
from django.db import connection, transaction

from jobs import search
from jobs.models import Job

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="FTS5 is SQLite's; PostgreSQL has no such index"
    ),
]


def segments() -> int:
    """The index's stored pieces (its segments' pages and their structure record)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM job_search_data")
        return cursor.fetchone()[0]


def test_automatic_merging_is_off() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT v FROM job_search_config WHERE k = 'automerge'")
        assert cursor.fetchone() == (0,)


def test_a_merge_step_merges_and_the_index_stays_right() -> None:
    for batch in range(8):  # each transaction leaves a segment of its own
        with transaction.atomic():
            Job.objects.bulk_create(Job(name=f"Bracket {batch}-{n}") for n in range(20))
    before = segments()

    search.merge_index()

    assert segments() < before
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO job_search(job_search, rank) VALUES ('integrity-check', 1)")
    found = search.text_filter(Job.objects.all(), "bracket 3-1")
    assert sorted(found.values_list("name", flat=True)) == sorted(
        [f"Bracket 3-{n}" for n in (1, *range(10, 20))]
    )
