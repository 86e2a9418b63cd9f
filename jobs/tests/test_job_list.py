"""The jobs list: filters, sort, pagination, bounded queries, permissions and escaping."""

import html
import re
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
    return [job.name for job in response.context["page"].items]


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
    # Nothing is shown rather than more than asked for (docs/search.md, "Errors").
    assert names(response) == []
    body = response.content.decode()
    assert "No jobs are shown until the filter can be read" in body
    assert "Status: Select a valid choice. bogus is not one of the available choices." in body
    assert "Priority: Select a valid choice." in body and "Created: Enter a valid date." in body


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


def link(response, rel: str) -> str:
    """The address of the page's `rel` ("next", "prev") link."""
    found = re.search(rf'<a href="([^"]+)"[^>]*rel="{rel}"', response.content.decode())
    assert found, f"no rel={rel} link"
    return html.unescape(found.group(1))


def test_pagination_follows_next_and_previous_links(
    client_for, viewer, make_job, monkeypatch
) -> None:
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for n in range(5):
        make_job(name=f"Job {n}", priority=n)
    client = client_for(viewer)
    first = client.get(URL, {"status": "pending", "sort": "priority"})
    assert names(first) == ["Job 0", "Job 1"]
    assert 'rel="prev"' not in first.content.decode()
    assert link(first, "next").startswith("/jobs/?status=pending&sort=priority&cursor=")
    second = client.get(link(first, "next"))
    assert names(second) == ["Job 2", "Job 3"]
    third = client.get(link(second, "next"))
    assert names(third) == ["Job 4"]
    assert 'rel="next"' not in third.content.decode()
    assert names(client.get(link(third, "prev"))) == ["Job 2", "Job 3"]
    assert names(client.get(link(second, "prev"))) == ["Job 0", "Job 1"]
    # Every page counts the same matches; "Last" walks back from the end.
    assert [r.context["count"] for r in (first, second, third)] == [5, 5, 5]
    last = re.search(r'<a href="([^"]+)"[^>]*>Last', first.content.decode()).group(1)
    assert names(client.get(html.unescape(last))) == ["Job 3", "Job 4"]
    # An old bookmark's page number shows the first page.
    assert names(client.get(URL, {"sort": "priority", "page": "2"})) == ["Job 0", "Job 1"]


def test_pages_go_past_the_count_cap(client_for, viewer, make_job, monkeypatch) -> None:
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    monkeypatch.setattr(views, "COUNT_CAP", 4)
    for n in range(7):
        make_job(name=f"Job {n}")
    client = client_for(viewer)
    response = client.get(URL)
    seen = names(response)
    while 'rel="next"' in response.content.decode():
        response = client.get(link(response, "next"))
        seen += names(response)
        assert response.context["count_is_capped"]
        assert "10,000+ jobs" in response.content.decode()
    assert sorted(seen) == [f"Job {n}" for n in range(7)]


def test_bad_cursor_shows_the_first_page_with_a_message(client_for, viewer, jobs) -> None:
    client = client_for(viewer)
    for cursor in ("not-a-cursor!", "eyJzb3J0IjoibmFtZSJ9", "e30"):
        response = client.get(URL, {"cursor": cursor})
        assert response.status_code == 200
        assert "The page cursor is not valid" in response.content.decode()
        assert names(response) == ["Alpha", "Bravo", "Charlie", "Delta"]


def test_htmx_next_page_gets_only_the_table(client_for, viewer, make_job, monkeypatch) -> None:
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for n in range(3):
        make_job(name=f"Job {n}", priority=n)
    client = client_for(viewer, htmx=True)
    first = client.get(URL, {"sort": "priority"})
    assert 'hx-push-url="true" rel="next"' in first.content.decode()
    second = client.get(link(first, "next"))
    assert second.content.decode().lstrip().startswith('<div id="job-table"')
    assert [job.name for job in second.context_data["page"].items] == ["Job 2"]


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
    assert len(response.context["page"].items) == rows
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
    # session, user, 2 x permissions, the page, capped count, the printers (the filter's
    # choices, which the selection bar's active printers reuse), and base.html's live parts
    # (jobs/live.py): the change token and the user's finished runs to announce
    assert many == 9


def test_filter_offers_every_printer_and_the_bar_the_active_ones(client_for, editor, jobs) -> None:
    Printer.objects.create(name="Retired Mk2", is_active=False)
    body = client_for(editor).get(URL).content.decode()

    def select(opening: str) -> str:
        return re.search(f'<select name="printer" {opening}.*?</select>', body, re.S).group()

    assert "Retired Mk2" in select('id="filter-printer"')
    bar = select('aria-label="Printer to assign"')
    assert "Bambu X1" in bar and "Retired Mk2" not in bar


def test_short_first_page_skips_the_count(client_for, editor, make_job) -> None:
    make_job()
    client = client_for(editor)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    assert response.context["count"] == 1
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
    """Search results page in the sort order, the search kept in the links."""
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for n in range(5):
        make_job(name=f"Gear {n}", priority=n)
    make_job(name="Bracket", priority=9)
    client = client_for(viewer)
    response = client.get(URL, {"q": "gear", "sort": "-priority"})
    pages = [names(response)]
    while 'rel="next"' in response.content.decode():
        response = client.get(link(response, "next"))
        pages.append(names(response))
    assert pages == [["Gear 4", "Gear 3"], ["Gear 2", "Gear 1"], ["Gear 0"]]


def test_capped_text_search_lists_the_same_rows(viewer, make_job, monkeypatch) -> None:
    """Over the count cap, the first page of a search is the same rows as without a cap."""
    monkeypatch.setattr(views, "COUNT_CAP", 2)
    for n in range(5):
        make_job(name=f"Gear {n}", priority=n)
    context = views.list_context(QueryDict("q=gear&sort=priority"))
    assert context["count_is_capped"]
    assert [job.name for job in context["page"].items] == [f"Gear {n}" for n in range(5)]


def test_skip_link_leads_to_the_results(client_for, viewer, jobs) -> None:
    body = client_for(viewer).get(URL).content.decode()
    assert body.index('href="#job-table"') < body.index('id="job-filters"')
    assert '<div id="job-table" class="job-table" data-live-list tabindex="-1">' in body


def test_row_actions_sit_in_a_table_cell_of_their_own(client_for, editor, jobs) -> None:
    """The cell stays a cell (stripes, borders, alignment); a block inside lays out the buttons."""
    body = client_for(editor).get(URL).content.decode()
    job = jobs["Alpha"]
    row = body[body.index(f'<tr id="job-{job.pk}"') :]
    row = row[: row.index("</tr>")]
    assert re.search(r'<td class="actions-col">\s*<div class="row-actions">', row)
    assert f'data-live-job="{job.pk}" data-version="{job.version}"' in row
