"""Export of the filtered jobs list (jobs/export.py and /jobs/export.csv|jsonl): the same
filters, search and sort as the page, every matching job, the import's columns, formula-safe
cells, JSON lines that parse; permissions. (The export re-imports: imports/tests/
test_export_reimport.py. Its speed and memory: bench/bench_jobs_list.py.)"""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs import export
from jobs.csv_safety import formula_safe_csv_lines
from jobs.models import Job, Printer

pytestmark = pytest.mark.django_db
CSV_URL = reverse("jobs:export-csv")
JSONL_URL = reverse("jobs:export-jsonl")
# The public column order (docs/csv-import.md, "Columns"), written out rather than read from
# jobs.export so that a change to it fails here.
HEADER = [
    "name",
    "status",
    "priority",
    "is_business",
    "customer_name",
    "notes",
    "file_name",
    "printer",
    "reference",
]


@pytest.fixture
def jobs(printer):
    now = timezone.now()
    rows = [
        ("Alpha", "pending", 1, printer, False, "", "REF-1", "", 1),
        ("Bravo", "running", 5, None, True, "Acme Corp", None, 'two\nlines, "quoted"', 2),
        ('=HYPERLINK("x")', "failed", 9, printer, True, "@Globex", "-REF-3", "+1", 3),
        ("Delta", "completed", 0, None, False, "", None, "", 4),
    ]
    return [
        Job.objects.create(
            name=name,
            status=status,
            priority=priority,
            printer=prn,
            is_business=business,
            customer_name=customer,
            reference=reference,
            notes=notes,
            updated_at=now - timedelta(minutes=minutes),
        )
        for name, status, priority, prn, business, customer, reference, notes, minutes in rows
    ]


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode("utf-8")


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def test_csv_has_the_import_columns_and_every_job(client_for, viewer, jobs) -> None:
    response = client_for(viewer).get(CSV_URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="jobs-')
    text = body(response)
    assert text.startswith("\ufeff")
    header, *rows = csv_rows(text)
    assert header == HEADER
    assert rows == [
        ["Alpha", "pending", "1", "no", "", "", "", "Prusa MK4 #1", "REF-1"],
        ["Bravo", "running", "5", "yes", "Acme Corp", 'two\nlines, "quoted"', "", "", ""],
        ["'=HYPERLINK(\"x\")", "failed", "9", "yes", "'@Globex", "'+1", "", "Prusa MK4 #1",
         "'-REF-3"],
        ["Delta", "completed", "0", "no", "", "", "", "", ""],
    ]  # fmt: skip
    # Every field quoted, so no spreadsheet splits or runs a cell.
    assert text.splitlines()[1].startswith('"Alpha","pending","1","no"')


def test_export_follows_the_filters_search_and_sort(client_for, viewer, jobs, printer) -> None:
    client = client_for(viewer)
    names = lambda response: [row[0] for row in csv_rows(body(response))[1:]]  # noqa: E731
    assert names(client.get(CSV_URL, {"is_business": "true", "sort": "-priority"})) == [
        '\'=HYPERLINK("x")',
        "Bravo",
    ]
    assert names(client.get(CSV_URL, {"q": "acme"})) == ["Bravo"]
    assert names(client.get(CSV_URL, {"printer": printer.pk, "sort": "-priority"})) == [
        '\'=HYPERLINK("x")',
        "Alpha",
    ]
    # The list page's paging position does not narrow the export: every page goes out.
    assert len(names(client.get(CSV_URL, {"cursor": "whatever", "page": "3"}))) == 4


def test_jsonl_lines_parse(client_for, viewer, jobs) -> None:
    response = client_for(viewer).get(JSONL_URL, {"sort": "-priority"})
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    records = [json.loads(line) for line in body(response).splitlines()]
    assert [record["name"] for record in records] == [
        '=HYPERLINK("x")',
        "Bravo",
        "Alpha",
        "Delta",
    ]
    bravo = records[1]
    assert bravo == {
        "id": jobs[1].pk,
        "version": 1,
        "name": "Bravo",
        "status": "running",
        "priority": 5,
        "is_business": True,
        "customer_name": "Acme Corp",
        "notes": 'two\nlines, "quoted"',
        "file_name": "",
        "printer": None,
        "reference": None,
        "created_at": jobs[1].created_at.isoformat(),
        "updated_at": jobs[1].updated_at.isoformat(),
        "started_at": None,
        "completed_at": None,
        "cancelled_at": None,
    }
    assert records[2]["printer"] == "Prusa MK4 #1"


def test_an_empty_result_is_just_the_header(client_for, viewer, jobs) -> None:
    client = client_for(viewer)
    assert csv_rows(body(client.get(CSV_URL, {"q": "no such job"}))) == [HEADER]
    assert body(client.get(JSONL_URL, {"q": "no such job"})) == ""


def test_export_needs_login_and_view_permission(client, client_for, outsider) -> None:
    for url in (CSV_URL, JSONL_URL):
        assert client.get(url).status_code == 302
        assert client_for(outsider).get(url).status_code == 403
        assert client_for(outsider).post(url).status_code in (403, 405)


def test_list_page_links_to_the_export_of_its_filters(client_for, viewer, jobs) -> None:
    html = client_for(viewer).get(reverse("jobs:list"), {"status": "running", "sort": "name"})
    page = html.content.decode()
    assert f'href="{CSV_URL}?status=running&amp;sort=name" download>Export CSV' in page
    assert f'href="{JSONL_URL}?status=running&amp;sort=name" download>Export JSON lines' in page


def test_write_functions_read_one_query_of_values(jobs) -> None:
    queryset = Job.objects.order_by("pk")
    out = io.StringIO()
    with CaptureQueriesContext(connection) as queries:
        assert export.write_csv(queryset, out) == 4
    # One statement (on PostgreSQL a server-side cursor's DECLARE … FOR SELECT), printer
    # names by a join.
    selects = [q["sql"] for q in queries if "SELECT" in q["sql"]]
    assert len(selects) == 1 and "jobs_printer" in selects[0]
    assert csv_rows(out.getvalue())[0] == HEADER
    out = io.StringIO()
    assert export.write_jsonl(queryset, out) == 4
    assert len(out.getvalue().splitlines()) == 4


def test_chunks_stream_in_pieces(jobs, monkeypatch) -> None:
    monkeypatch.setattr(export, "ROWS_PER_CHUNK", 2)
    monkeypatch.setattr(export, "FETCH_ROWS", 1)
    chunks = list(export.csv_chunks(Job.objects.order_by("pk")))
    assert len(chunks) == 3  # header + 4 rows, two lines a piece
    assert len(list(export.jsonl_chunks(Job.objects.order_by("pk")))) == 2


def test_job_record_and_csv_lines_match_the_export(jobs) -> None:
    queryset = Job.objects.select_related("printer").order_by("pk")
    out = io.StringIO()
    export.write_jsonl(queryset, out)
    assert [export.job_record(job) for job in queryset] == [
        json.loads(line) for line in out.getvalue().splitlines()
    ]
    out = io.StringIO()
    export.write_csv(queryset, out)
    assert "".join(export.csv_lines(queryset)) == out.getvalue()


def test_an_inactive_printer_is_exported_by_name(client_for, viewer) -> None:
    old = Printer.objects.create(name="Retired", is_active=False)
    Job.objects.create(name="Old job", printer=old)
    rows = csv_rows(body(client_for(viewer).get(CSV_URL)))
    assert rows[1][HEADER.index("printer")] == "Retired"


@pytest.mark.parametrize(
    "text",
    ["plain", "=1+1", "+x", "-x", "@x", "\tx", "\rx", "a,=b", 'a;"=b', "a|-b", "x\n+y", "1-2", ""],
)
def test_csv_lines_are_what_csv_safety_writes(text) -> None:
    """The export runs formula_safe only on text holding a character it guards; the lines
    are still exactly those of csv_safety.formula_safe_csv_lines."""
    row = (text, "pending", 3, True, text, text, text, text or None, text or None)
    expected = list(formula_safe_csv_lines([export.CSV_HEADER, [*row[:3], "yes", *row[4:]]]))
    assert list(export._csv_lines([row])) == expected
