"""The jobs list: filters, sort, pagination, bounded queries, permissions and escaping."""

from datetime import timedelta

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs import views
from jobs.models import Job, Printer

pytestmark = pytest.mark.django_db
URL = reverse("jobs:list")


def names(response) -> list[str]:
    return [job.name for job in response.context["page"].object_list]


@pytest.fixture
def jobs(printer):
    now = timezone.now()
    other = Printer.objects.create(name="Bambu X1")
    rows = [
        ("Alpha", "pending", 1, printer, False, "", "REF-1", 10),
        ("Bravo", "running", 5, other, True, "Acme Corp", None, 20),
        ("Charlie", "completed", 9, printer, True, "Globex", "REF-3", 30),
        ("Delta", "failed", 5, None, False, "", None, 40),
    ]
    made = {}
    for name, status, priority, prn, business, customer, ref, days_ago in rows:
        made[name] = Job.objects.create(
            name=name,
            status=status,
            priority=priority,
            printer=prn,
            is_business=business,
            customer_name=customer,
            reference=ref,
            created_at=now - timedelta(days=days_ago),
            updated_at=now - timedelta(minutes=days_ago),
        )
    return made


def test_default_list_is_newest_update_first(client_for, viewer, jobs) -> None:
    client = client_for(viewer)
    response = client.get(URL)
    assert response.status_code == 200
    assert names(response) == ["Alpha", "Bravo", "Charlie", "Delta"]
    assert "jobs/job_list.html" in [t.name for t in response.templates]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "running"}, ["Bravo"]),
        ({"status": ["running", "failed"]}, ["Bravo", "Delta"]),
        ({"is_business": "true"}, ["Bravo", "Charlie"]),
        ({"is_business": "false"}, ["Alpha", "Delta"]),
        ({"priority": "5"}, ["Bravo", "Delta"]),
        ({"q": "acme"}, ["Bravo"]),  # customer, case-insensitive
        ({"q": "charl"}, ["Charlie"]),  # name
        ({"q": "ref-1"}, ["Alpha"]),  # reference
        ({"q": "  "}, ["Alpha", "Bravo", "Charlie", "Delta"]),
    ],
)
def test_each_filter_narrows(client_for, viewer, jobs, query, expected) -> None:
    client = client_for(viewer)
    assert names(client.get(URL, query)) == expected


def test_printer_filter(client_for, viewer, jobs, printer) -> None:
    client = client_for(viewer)
    assert names(client.get(URL, {"printer": printer.pk})) == ["Alpha", "Charlie"]


def test_created_range_filter(client_for, viewer, jobs) -> None:
    client = client_for(viewer)
    today = timezone.localdate()
    query = {
        "created_after": str(today - timedelta(days=35)),
        "created_before": str(today - timedelta(days=15)),
    }
    assert names(client.get(URL, query)) == ["Bravo", "Charlie"]


def test_filters_combine(client_for, viewer, jobs) -> None:
    client = client_for(viewer)
    query = {"status": ["running", "completed", "failed"], "priority": "5", "is_business": "true"}
    assert names(client.get(URL, query)) == ["Bravo"]


def test_invalid_filter_values_are_reported_not_500(client_for, viewer, jobs) -> None:
    client = client_for(viewer)
    response = client.get(
        URL, {"status": "bogus", "priority": "99", "created_after": "nope", "page": "x"}
    )
    assert response.status_code == 200
    assert "Some filters were ignored" in response.content.decode()


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["Alpha", "Bravo", "Charlie", "Delta"]),
        ("-name", ["Delta", "Charlie", "Bravo", "Alpha"]),
        ("-priority", ["Charlie", "Delta", "Bravo", "Alpha"]),  # ties broken by id, same direction
        ("priority", ["Alpha", "Bravo", "Delta", "Charlie"]),
        ("updated", ["Delta", "Charlie", "Bravo", "Alpha"]),
        ("status", ["Charlie", "Delta", "Alpha", "Bravo"]),
        ("-customer", ["Charlie", "Bravo", "Delta", "Alpha"]),
    ],
)
def test_sort(client_for, viewer, jobs, sort, expected) -> None:
    client = client_for(viewer)
    assert names(client.get(URL, {"sort": sort})) == expected


def test_sort_outside_the_whitelist_is_ignored(client_for, viewer, jobs) -> None:
    client = client_for(viewer)
    response = client.get(URL, {"sort": "notes"})
    assert response.status_code == 200
    assert names(response) == ["Alpha", "Bravo", "Charlie", "Delta"]


def test_sort_header_links_keep_filters_and_toggle(client_for, viewer, jobs) -> None:
    client = client_for(viewer)
    response = client.get(URL, {"status": "running", "sort": "name", "page": "1"})
    headers = {h["key"]: h for h in response.context["headers"] if h["key"]}
    assert headers["name"]["aria_sort"] == "ascending"
    assert headers["name"]["url"] == "?status=running&sort=-name"
    assert headers["priority"]["url"] == "?status=running&sort=-priority"


def test_pagination(client_for, viewer, make_job, monkeypatch) -> None:
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for n in range(5):
        make_job(name=f"Job {n}", priority=n)
    client = client_for(viewer)
    response = client.get(URL, {"sort": "priority", "page": "2"})
    assert names(response) == ["Job 2", "Job 3"]
    page = response.context["page"]
    assert (page.number, page.paginator.num_pages, page.paginator.count) == (2, 3, 5)
    body = response.content.decode()
    assert 'href="/jobs/?sort=priority&amp;page=3"' in body
    assert 'href="/jobs/?sort=priority&amp;page=1"' in body
    # Out-of-range and junk pages fall back instead of failing.
    assert names(client.get(URL, {"sort": "priority", "page": "99"})) == ["Job 4"]
    assert names(client.get(URL, {"sort": "priority", "page": "x"})) == ["Job 0", "Job 1"]


def test_count_is_capped_and_pages_stop_at_the_cap(
    client_for, viewer, make_job, monkeypatch
) -> None:
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    monkeypatch.setattr(views.CappedPaginator, "cap", 4)
    for n in range(7):
        make_job(name=f"Job {n}")
    client = client_for(viewer)
    response = client.get(URL, {"page": "9"})
    paginator = response.context["page"].paginator
    assert paginator.count == 5 and paginator.is_capped and paginator.num_pages == 2
    assert response.context["page"].number == 2
    body = response.content.decode()
    assert "10,000+ jobs" in body
    assert "Narrow the filters" in body


def test_htmx_request_gets_only_the_table(client_for, viewer, jobs) -> None:
    client = client_for(viewer)
    response = client.get(URL, {"status": "running"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="job-table"')
    assert "<html" not in body and 'job-filters" class' not in body
    assert "Bravo" in body and "Alpha" not in body
    assert "HX-Request" in response["Vary"]


def test_htmx_history_restore_gets_the_whole_page(client_for, viewer, jobs) -> None:
    client = client_for(viewer)
    response = client.get(URL, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in response.content.decode()


def test_empty_states(client_for, viewer, jobs) -> None:
    client = client_for(viewer)
    body = client.get(URL, {"q": "no such job"}).content.decode()
    assert "No jobs match these filters" in body and "Clear filters" in body
    Job.objects.all().delete()
    assert "No jobs yet" in client.get(URL).content.decode()


def _list_queries(client, monkeypatch, rows: int) -> int:
    monkeypatch.setattr(views, "PAGE_SIZE", rows)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, {"sort": "name"})
    assert len(response.context["page"].object_list) == rows
    return len(queries)


def test_query_count_does_not_grow_with_rows(client_for, editor, admin_user, monkeypatch) -> None:
    printers = [Printer.objects.create(name=f"P{n}") for n in range(3)]
    for n in range(60):
        job = Job(name=f"Job {n}", printer=printers[n % 3], is_business=n % 2, customer_name="C")
        job.insert(actor=admin_user if n % 2 else editor, origin="ui")
    client = client_for(editor)
    few = _list_queries(client, monkeypatch, 5)
    many = _list_queries(client, monkeypatch, 50)
    assert few == many
    # session, user, 2 x permissions, capped count, page ids, page rows, printer choices
    assert many == 8


def test_short_first_page_skips_the_count(client_for, editor, make_job) -> None:
    make_job()
    client = client_for(editor)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    assert response.context["page"].paginator.count == 1
    assert not [q for q in queries if "COUNT(" in q["sql"]]


def test_permission_and_login(client, client_for, outsider) -> None:
    assert client.get(URL).status_code == 302
    assert client.get(URL)["Location"].startswith(reverse("login"))
    client = client_for(outsider)
    assert client.get(URL).status_code == 403


def test_viewer_sees_no_edit_controls(client_for, viewer, editor, jobs) -> None:
    client = client_for(viewer)
    body = client.get(URL).content.decode()
    assert "/edit/" not in body and "/cancel/" not in body and 'name="ids"' not in body
    client = client_for(editor)
    body = client.get(URL).content.decode()
    assert reverse("jobs:edit", args=[jobs["Alpha"].pk]) in body
    assert reverse("jobs:cancel", args=[jobs["Alpha"].pk]) in body
    # A completed job cannot be cancelled, so it has no Cancel button.
    assert reverse("jobs:cancel", args=[jobs["Charlie"].pk]) not in body


def test_script_in_job_name_is_escaped(client_for, editor, make_job) -> None:
    job = make_job(name="<script>alert(1)</script>", customer_name="<b>x</b>", is_business=True)
    job.apply_changes({"priority": 3}, actor=editor, origin="ui")
    client = client_for(editor)
    pages = [
        client.get(URL),
        client.get(URL, HTTP_HX_REQUEST="true"),
        client.get(reverse("jobs:detail", args=[job.pk])),
        client.get(reverse("jobs:edit", args=[job.pk]), HTTP_HX_REQUEST="true"),
        client.get(reverse("jobs:edit", args=[job.pk])),
        client.get(reverse("jobs:cancel", args=[job.pk]), HTTP_HX_REQUEST="true"),
    ]
    for response in pages:
        body = response.content.decode()
        assert response.status_code == 200
        assert "<script>alert(1)</script>" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "<b>x</b>" not in body


def test_unknown_sort_marks_the_default_column(client_for, viewer, jobs) -> None:
    client = client_for(viewer)
    headers = {h["key"]: h for h in client.get(URL, {"sort": "notes"}).context["headers"]}
    assert headers["updated"]["aria_sort"] == "descending"


def test_text_search_pages_in_order(client_for, viewer, make_job, monkeypatch) -> None:
    """Search results are paged through the scan-then-sort path and keep the sort order."""
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for n in range(5):
        make_job(name=f"Gear {n}", priority=n)
    make_job(name="Bracket", priority=9)
    client = client_for(viewer)
    pages = [names(client.get(URL, {"q": "gear", "sort": "-priority", "page": p})) for p in "123"]
    assert pages == [["Gear 4", "Gear 3"], ["Gear 2", "Gear 1"], ["Gear 0"]]


def test_dense_text_search_first_page_uses_the_sort_index(viewer, make_job, monkeypatch) -> None:
    """Over the count cap, the first page walks the sort index instead of scanning: same rows."""
    monkeypatch.setattr(views.CappedPaginator, "cap", 2)
    for n in range(5):
        make_job(name=f"Gear {n}", priority=n)
    context = views.list_context(QueryDict("q=gear&sort=priority"))
    assert context["page"].paginator.is_capped
    assert [job.name for job in context["page"].object_list] == [f"Gear {n}" for n in range(5)]
