"""The Job and JobEvent changelists at a million rows answer like the jobs list: a count that
stops at the cap, no whole-table COUNT, DISTINCT or facet counts, the list's indexed search;
an import's admin page links to its paged error records instead of listing them inline."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from imports.models import ImportErrorRecord, ImportJob
from jobs import admin as jobs_admin
from jobs.models import Job, JobEvent, Printer
from jobs.paging import CappedPaginator
from jobs.tests.plans import query_plan

pytestmark = pytest.mark.django_db
JOBS = reverse("admin:jobs_job_changelist")
EVENTS = reverse("admin:jobs_jobevent_changelist")


@pytest.fixture
def searches(monkeypatch) -> list[str]:
    """The texts the admin hands to the list's search (jobs_admin.text_filter), which still
    runs."""
    calls = []
    text_filter = jobs_admin.text_filter

    def spy(queryset, text):
        calls.append(text)
        return text_filter(queryset, text)

    monkeypatch.setattr(jobs_admin, "text_filter", spy)
    return calls


def make_jobs(count: int, **fields) -> None:
    printers = [Printer.objects.get_or_create(name=f"P{n}")[0] for n in range(2)]
    for n in range(count):
        job = Job(name=f"Job {n}", printer=printers[n % 2], file_name=f"part-{n}.3mf", **fields)
        job.insert(actor=None, origin=JobEvent.Origin.ADMIN)


def changelist_queries(client, url: str, query: str = "") -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{url}?{query}" if query else url)
    assert response.status_code == 200
    return [q["sql"] for q in queries]


def assert_no_whole_table_reads(queries: list[str]) -> None:
    for sql in queries:
        if "COUNT(" in sql.upper():
            assert "LIMIT" in sql.upper(), f"a COUNT without a LIMIT: {sql}"
        assert "DISTINCT" not in sql.upper(), f"a DISTINCT over the table: {sql}"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "status__exact=pending",
        "priority=3",
        "created_at__gte=2026-01-01T00:00:00%2B00:00",
        "o=2",
        "q=job",
    ],
)
def test_job_changelist_queries_are_bounded(
    client_for, admin_user, django_assert_max_num_queries, query
) -> None:
    make_jobs(30)
    client = client_for(admin_user)
    with django_assert_max_num_queries(12):
        queries = changelist_queries(client, JOBS, query)
    assert_no_whole_table_reads(queries)


def test_job_changelist_query_count_does_not_grow_with_rows(client_for, admin_user) -> None:
    make_jobs(3)
    client = client_for(admin_user)
    few = len(changelist_queries(client, JOBS))
    make_jobs(150)
    assert len(changelist_queries(client, JOBS)) == few


def test_capped_count_says_so_and_offers_pages_up_to_the_cap(
    client_for, admin_user, monkeypatch
) -> None:
    monkeypatch.setattr(CappedPaginator, "cap", 4)
    monkeypatch.setattr(jobs_admin.JobAdmin, "list_per_page", 2)
    make_jobs(9)
    client = client_for(admin_user)
    page = client.get(JOBS).content.decode()
    assert "4+ jobs" in page
    assert not re.search(r"Select all \d", page)  # no total to select across
    assert re.search(r"\?p=2\b", page) and not re.search(r"\?p=3\b", page)
    assert client.get(JOBS, {"q": "job"}).content.decode().count("4+ results") == 1
    # Under the cap the count is exact.
    monkeypatch.setattr(CappedPaginator, "cap", 100)
    assert "9 jobs" in client.get(JOBS).content.decode()


def test_job_search_goes_through_the_list_search(client_for, admin_user, searches) -> None:
    make_jobs(5)
    Job.objects.create(name="Big gear", customer_name="Acme")
    client = client_for(admin_user)
    response = client.get(JOBS, {"q": "gear acme"})
    assert searches == ["gear acme"]
    assert [job.name for job in response.context["cl"].result_list] == ["Big gear"]
    # The file name is searched too, which the admin's own search fields would not say.
    assert [job.name for job in client.get(JOBS, {"q": "part-3"}).context["cl"].result_list] == [
        "Job 3"
    ]


def test_job_search_asks_the_index(client_for, admin_user) -> None:
    """SQLite: the FTS5 table. PostgreSQL: the trigram indexes can answer the page's query
    (a table this small would be read whole, so the other plans are off for the EXPLAIN)."""
    make_jobs(3)
    queries = changelist_queries(client_for(admin_user), JOBS, "q=part-2")
    if connection.vendor == "sqlite":
        assert any("job_search" in sql and "MATCH" in sql for sql in queries)
        return
    page = next(sql for sql in queries if "UPPER(" in sql and "ORDER BY" in sql)
    plan = query_plan(page, without=("seqscan", "indexscan"))
    assert "job_file_name_trgm_idx" in plan, plan


def test_sorting_is_offered_only_on_indexed_columns(client_for, admin_user) -> None:
    make_jobs(2)
    response = client_for(admin_user).get(JOBS)
    sortable = {
        header["text"] for header in response.context["result_headers"] if header["sortable"]
    }
    assert sortable == {"ID", "name", "status", "priority", "customer name", "updated at"}


def test_event_changelist_is_bounded_and_newest_first(client_for, admin_user) -> None:
    make_jobs(20)
    client = client_for(admin_user)
    for query in ("", "kind__exact=created", "origin__exact=admin", "q=job"):
        queries = changelist_queries(client, EVENTS, query)
        assert_no_whole_table_reads(queries)
    response = client.get(EVENTS)
    ids = [event.pk for event in response.context["cl"].result_list]
    assert ids == sorted(ids, reverse=True)
    assert not [h for h in response.context["result_headers"] if h["sortable"]]


def test_event_search_finds_the_events_of_matching_jobs(client_for, admin_user, searches):
    make_jobs(4)
    response = client_for(admin_user).get(EVENTS, {"q": "part-2"})
    assert searches == ["part-2"]
    assert [event.job.name for event in response.context["cl"].result_list] == ["Job 2"]


def test_import_page_links_to_its_paged_error_records(client_for, admin_user) -> None:
    import_job = ImportJob.objects.create(
        original_filename="big.csv", file_hash="b" * 64, created_by=admin_user, error_count=150
    )
    ImportErrorRecord.objects.bulk_create(
        ImportErrorRecord(
            import_job=import_job, row=n, field="name", error_type="validation", message=f"bad {n}"
        )
        for n in range(2, 152)
    )
    client = client_for(admin_user)
    page = client.get(reverse("admin:imports_importjob_change", args=[import_job.pk]))
    html = page.content.decode()
    assert "bad 2" not in html  # no inline rows
    listed = reverse("admin:imports_importerrorrecord_changelist")
    link = f"{listed}?import_job__id__exact={import_job.pk}"
    assert f'href="{link}">150 row errors, 100 a page</a>' in html
    errors = client.get(link)
    rows = [record.row for record in errors.context["cl"].result_list]
    assert rows == list(range(2, 102))
    assert [r.row for r in client.get(link + "&p=2").context["cl"].result_list] == list(
        range(102, 152)
    )
