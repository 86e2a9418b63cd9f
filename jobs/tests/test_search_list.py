"""The search syntax and the filter form against a real database, and on the list page:
every key and its negation, text through the index (each of its ways of finding a page),
short words, quotes and FTS operators taken literally, errors on the page, chips, and the
form and the box giving the same jobs."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs import search
from jobs.filters import JobFilter
from jobs.models import Job, Printer
from jobs.search import text_filter
from jobs.tests.plans import query_plan

pytestmark = pytest.mark.django_db
URL = reverse("jobs:list")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def floor() -> dict[str, Job]:
    """Four jobs that differ in every field the keys read."""
    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    prusa = Printer.objects.create(name="Prusa 1")
    bambu = Printer.objects.create(name="Bambu X1")
    now = timezone.now()
    rows = {
        "Gear housing": dict(
            status="running", priority=7, printer=prusa, is_business=True,
            customer_name="Acme Corp", reference="ABC-1", file_name="gear.3mf",
            created_by=alice, updated_by=alice, created_at=at("2025-12-31T23:30"),
            updated_at=now - timedelta(days=2), started_at=at("2026-01-10T08:00"),
        ),
        "Bracket": dict(
            status="failed", priority=3, printer=bambu, file_name="bracket.stl",
            created_by=bob, updated_by=alice, created_at=at("2026-01-01T00:00"),
            updated_at=now - timedelta(days=10), started_at=at("2026-01-20T09:00"),
        ),
        "Lid": dict(
            status="completed", priority=5, is_business=True, customer_name="Globex",
            reference="XY", created_by=alice, updated_by=bob,
            created_at=at("2026-01-31T23:59"), updated_at=now - timedelta(hours=1),
            started_at=at("2026-01-10T12:00"), completed_at=at("2026-02-01T10:00"),
        ),
        "Cancelled knob": dict(
            status="cancelled", priority=0, printer=prusa, reference="",
            created_at=at("2026-02-01T00:00"), updated_at=now - timedelta(days=30),
        ),
    }  # fmt: skip
    return {name: Job.objects.create(name=name, **fields) for name, fields in rows.items()}


@pytest.fixture(params=["every match named", "matches gathered", "sort order walked"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each way the SQLite index finds a page (search._indexed_condition); on PostgreSQL the
    same searches run three times."""
    if request.param != "every match named":
        monkeypatch.setattr(search, "PROBE_MATCHES", 1)
        walk = request.param == "sort order walked"
        monkeypatch.setattr(search, "WALK_ROWS_PER_MATCH", 10**9 if walk else 0)
    return request.param


def names(query: str | dict) -> set[str]:
    params = QueryDict(query) if isinstance(query, str) else QueryDict(mutable=True)
    if isinstance(query, dict):
        for key, value in query.items():
            params.setlist(key, value if isinstance(value, list) else [value])
    filterset = JobFilter(params, queryset=Job.objects.all())
    assert filterset.search_errors == [] and not filterset.errors, filterset.error_messages
    return set(filterset.qs.values_list("name", flat=True))


def q(text: str) -> set[str]:
    return names({"q": text})


ALL = {"Gear housing", "Bracket", "Lid", "Cancelled knob"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ALL),
        ("status:running,failed", {"Gear housing", "Bracket"}),
        ("-status:running,failed", {"Lid", "Cancelled knob"}),
        ('printer:"prusa 1"', {"Gear housing", "Cancelled knob"}),
        ("printer:none", {"Lid"}),
        ('-printer:"Prusa 1"', {"Bracket", "Lid"}),
        ('printer:none,"Bambu X1"', {"Bracket", "Lid"}),
        ("priority:>=5", {"Gear housing", "Lid"}),
        ("priority:>5", {"Gear housing"}),
        ("priority:<3", {"Cancelled knob"}),
        ("priority:<=3", {"Bracket", "Cancelled knob"}),
        ("priority:3..5", {"Bracket", "Lid"}),
        ("priority:5..3", {"Bracket", "Lid"}),
        ("priority:0,7", {"Gear housing", "Cancelled knob"}),
        ("-priority:3..5", {"Gear housing", "Cancelled knob"}),
        ("business:yes", {"Gear housing", "Lid"}),
        ("-business:yes", {"Bracket", "Cancelled knob"}),
        ("customer:acme", {"Gear housing"}),
        ("customer:ac", {"Gear housing"}),  # short: scanned
        ("customer:ACME,glob", {"Gear housing", "Lid"}),
        ("-customer:globex", {"Gear housing", "Bracket", "Cancelled knob"}),
        ("name:knob", {"Cancelled knob"}),
        ("name:acme", set()),  # the customer's text is not in the name
        ("file:.stl", {"Bracket"}),
        ("ref:abc", {"Gear housing"}),
        ("ref:xy", {"Lid"}),
        ("ref:none", {"Bracket", "Cancelled knob"}),  # NULL and empty both count as none
        ("-ref:none", {"Gear housing", "Lid"}),
        ("has:reference", {"Gear housing", "Lid"}),
        ("-has:reference", {"Bracket", "Cancelled knob"}),
        ("has:printer", {"Gear housing", "Bracket", "Cancelled knob"}),
        ("by:alice", {"Gear housing", "Lid"}),
        ("by:ALICE,bob", {"Gear housing", "Bracket", "Lid"}),
        ("-by:alice", {"Bracket", "Cancelled knob"}),  # nobody created the knob: not alice's
        ("updatedby:alice", {"Gear housing", "Bracket"}),
        ("created:2026-01-01", {"Bracket"}),
        ("created:>=2026-01-01", {"Bracket", "Lid", "Cancelled knob"}),
        ("created:>2026-01-01", {"Lid", "Cancelled knob"}),
        ("created:<2026-01-01", {"Gear housing"}),
        ("created:<=2026-01-31", {"Gear housing", "Bracket", "Lid"}),
        ("created:2026-01-01..2026-01-31", {"Bracket", "Lid"}),
        ("created:2026-01-31..2026-01-01", {"Bracket", "Lid"}),
        ("created:>=2026-01-31T23:59", {"Lid", "Cancelled knob"}),
        ("created:2026-01-31T23:59", {"Lid"}),
        ("created:<2025-12-31T23:30:01", {"Gear housing"}),
        ("created:2025-12-31T23:30:01", set()),
        ("updated:<7d", {"Gear housing", "Lid"}),
        ("updated:7d", {"Gear housing", "Lid"}),
        ("updated:>7d", {"Bracket", "Cancelled knob"}),
        ("updated:>=1w", {"Bracket", "Cancelled knob"}),
        ("updated:<3h", {"Lid"}),
        ("updated:1d..14d", {"Gear housing", "Bracket"}),
        ("-updated:<7d", {"Bracket", "Cancelled knob"}),
        ("started:2026-01-10", {"Gear housing", "Lid"}),
        ("-started:2026-01-10", {"Bracket", "Cancelled knob"}),  # never started: not then
        ("completed:>=2026-01-01", {"Lid"}),
        ("-completed:>=2026-01-01", {"Gear housing", "Bracket", "Cancelled knob"}),
        ("status:running,completed business:yes priority:>5", {"Gear housing"}),
    ],
)
def test_each_key_and_its_negation(floor, text: str, expected: set[str]) -> None:
    assert q(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gear", {"Gear housing"}),
        ("GEAR", {"Gear housing"}),
        ("acme", {"Gear housing"}),  # customer
        ("abc-1", {"Gear housing"}),  # reference
        ("3mf", {"Gear housing"}),  # file name
        ("gear acme", {"Gear housing"}),  # every word, each anywhere
        ("gear globex", set()),
        ('"gear housing"', {"Gear housing"}),
        ('"housing gear"', set()),  # a phrase as written
        ("knob -cancelled", set()),
        ("-gear -knob", {"Bracket", "Lid"}),
        ("o", {"Gear housing", "Cancelled knob", "Lid"}),  # one letter: scanned (Globex)
        ("ob", {"Lid", "Cancelled knob"}),
        ("ob knob", {"Cancelled knob"}),  # short with an indexed word
        ("ob -knob", {"Lid"}),
        ("ck status:failed", {"Bracket"}),
        ("housing status:running", {"Gear housing"}),
        ("housing status:failed", set()),
        ("zzzz", set()),
    ],
)
def test_free_text(floor, way, text: str, expected: set[str]) -> None:
    assert q(text) == expected


@pytest.mark.parametrize(
    "name",
    [
        'Say "hi" twice',
        "Part A*B",
        "NEAR OR AND NOT",
        "col : umn",
        "a^b (c) {d} + - ~ [e]",
        "Ünïcödé façade",
    ],
)
def test_quotes_stars_and_fts_operators_are_literal(make_job, way, name: str) -> None:
    job = make_job(name=name)
    make_job(name="Other")
    for text in (
        '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"',
        *[word for word in name.split() if '"' not in word],
    ):
        assert q(text) == {name}, text
    assert q(name.lower()) == {name}  # case folds, beyond ASCII too
    assert set(text_filter(Job.objects.all(), name).values_list("pk", flat=True)) == {job.pk}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"hi"', {'Say "hi" twice'}),
        ('"hi" twice', {'Say "hi" twice'}),
        ('"\\"hi\\""', {'Say "hi" twice'}),  # the quotes themselves, in the name
        ("A*B", {"Part A*B"}),
        ("*", {"Part A*B"}),
        ("OR", {"NEAR OR AND NOT"}),
        ("NEAR", {"NEAR OR AND NOT"}),
        ("NOT", {"NEAR OR AND NOT"}),
        ("AND", {"NEAR OR AND NOT"}),
        ('"OR AND"', {"NEAR OR AND NOT"}),
        ('"AND OR"', set()),
        ('"', {'Say "hi" twice', "Part A*B", "NEAR OR AND NOT", "Plain"}),  # no term at all
    ],
)
def test_operator_words_match_only_as_text(make_job, way, text: str, expected: set) -> None:
    for name in ('Say "hi" twice', "Part A*B", "NEAR OR AND NOT", "Plain"):
        make_job(name=name)
    assert q(text) == expected


def test_the_index_serves_the_list_query(floor) -> None:
    """SQLite: the search goes through the FTS table. PostgreSQL: the planner can answer
    Django's `icontains` with the trigram indexes (the expressions match); the other plans
    are switched off for the EXPLAIN, since on a table this small a scan is cheaper
    (docs/search.md, "How the index works", has the plans at a million jobs)."""
    with CaptureQueriesContext(connection) as queries:
        jobs = JobFilter(QueryDict("q=housing"), queryset=Job.objects.all()).qs
        assert list(jobs.values_list("name", flat=True)) == ["Gear housing"]
    if connection.vendor == "sqlite":
        assert any("job_search MATCH" in query["sql"] for query in queries)
        return
    # Leave the planner no other way to read the table than a bitmap over an index that the
    # condition itself can search.
    sql, params = jobs.order_by().query.sql_with_params()
    plan = query_plan(sql, params, without=("seqscan", "indexscan"))
    for column in ("name", "customer_name", "reference", "file_name"):
        assert f"job_{column}_trgm_idx" in plan, plan


# The list page --------------------------------------------------------------------------------


def page_names(response) -> list[str]:
    return [job.name for job in response.context["page"].items]


def test_errors_are_shown_and_nothing_is_listed(client_for, viewer, floor) -> None:
    client = client_for(viewer)
    response = client.get(URL, {"q": 'gear foo:bar status:runing printer:"Nope" by:nobody'})
    assert response.status_code == 200
    assert page_names(response) == []
    body = response.content.decode()
    assert "No jobs are shown until the filter can be read" in body
    assert "“foo:bar”: unknown key “foo”" in body
    assert "“status:runing”: unknown status “runing”" in body
    assert "no printer is named “Nope”" in body
    assert "no user is named “nobody”" in body
    assert "No jobs match these filters" not in body  # the reason is said above instead
    partial = client.get(URL, {"q": "status:runing"}, HTTP_HX_REQUEST="true")
    assert "unknown status" in partial.content.decode()


def test_a_bad_search_gives_no_jobs_to_bulk_or_export(client_for, editor, floor) -> None:
    client = client_for(editor)
    response = client.post(
        reverse("jobs:bulk-status"),
        {"scope": "matching", "query": "q=-status:cancelld", "status": "cancelled"},
    )
    assert response.status_code in (200, 302)
    assert Job.objects.filter(status="cancelled").count() == 1
    export = client.get(reverse("jobs:export-csv"), {"q": "-status:cancelld"})
    rows = b"".join(export.streaming_content).decode("utf-8-sig").splitlines()
    assert len(rows) == 1  # the header only


def test_form_fields_and_syntax_give_the_same_jobs(floor) -> None:
    """Each form field against the search term it stands for."""
    prusa = Printer.objects.get(name="Prusa 1")
    week_ago = str(timezone.localdate() - timedelta(days=7))
    pairs = [
        ({"status": "running"}, "status:running"),
        ({"status": ["running", "failed"]}, "status:running,failed"),
        ({"printer": str(prusa.pk)}, 'printer:"Prusa 1"'),
        ({"is_business": "true"}, "business:yes"),
        ({"is_business": "false"}, "business:no"),
        ({"priority": "5"}, "priority:5"),
        (
            {"created_after": "2026-01-01", "created_before": "2026-01-31"},
            "created:2026-01-01..2026-01-31",
        ),
        ({"created_after": "2026-01-01"}, "created:>=2026-01-01"),
        ({"updated_before": week_ago}, f"updated:<={week_ago}"),
        ({"started_after": "2026-01-11"}, "started:>=2026-01-11"),
        ({"completed_before": "2026-02-01"}, "completed:<=2026-02-01"),
        ({"created_by": "alice"}, "by:alice"),
        ({"updated_by": "bob"}, "updatedby:bob"),
        ({"has_reference": "yes"}, "has:reference"),
        ({"has_reference": "no"}, "-has:reference"),
    ]  # fmt: skip
    for fields, text in pairs:
        assert names(fields) == q(text), (fields, text)
        filterset = JobFilter(_params(fields), queryset=Job.objects.all())
        assert [chip["label"] for chip in filterset.chips] == [text]


def _params(fields: dict) -> QueryDict:
    params = QueryDict(mutable=True)
    for key, value in fields.items():
        params.setlist(key, value if isinstance(value, list) else [value])
    return params


def test_form_and_box_combine(client_for, viewer, floor) -> None:
    client = client_for(viewer)
    response = client.get(
        URL, {"status": ["running", "completed"], "q": "-business:no priority:>5"}
    )
    assert page_names(response) == ["Gear housing"]


def test_chips_name_every_part_and_link_to_the_list_without_it(client_for, viewer, floor) -> None:
    client = client_for(viewer)
    params = {"status": "running", "q": 'housing -printer:none "acme corp"', "sort": "name"}
    response = client.get(URL, {**params, "cursor": "x"})
    chips = response.context["filter"].chips
    assert [chip["label"] for chip in chips] == [
        "status:running",
        "housing",
        "-printer:none",
        '"acme corp"',
    ]
    by_label = {chip["label"]: QueryDict(chip["query"]) for chip in chips}
    assert by_label["status:running"].dict() == {"q": params["q"], "sort": "name"}
    assert by_label["-printer:none"].dict() == {
        "status": "running",
        "q": 'housing "acme corp"',
        "sort": "name",
    }
    body = response.content.decode()
    assert 'aria-label="Active filters"' in body
    assert "<code>-printer:none</code>" in body
    # Following a chip's link drops that part, and only that part.
    response = client.get(URL + "?" + chips[2]["query"])
    assert [chip["label"] for chip in response.context["filter"].chips] == [
        "status:running",
        "housing",
        '"acme corp"',
    ]
    assert page_names(response) == ["Gear housing"]
    last = client.get(URL + "?" + QueryDict(chips[1]["query"]).urlencode())
    assert "housing" not in [chip["label"] for chip in last.context["filter"].chips]


def test_a_part_in_error_has_a_chip_too_and_other_chips_keep_it(client_for, viewer, floor) -> None:
    client = client_for(viewer)
    text = 'gear  foo:bar "two  spaces"'
    response = client.get(URL, {"q": text})
    chips = {chip["label"]: chip for chip in response.context["filter"].chips}
    assert list(chips) == ["gear", "foo:bar", '"two  spaces"']
    assert chips["foo:bar"]["error"].startswith("“foo:bar”: unknown key “foo”")
    assert chips["gear"]["error"] == ""
    # The rest of the box as written: the bad part stays until it is removed itself.
    assert QueryDict(chips["gear"]["query"])["q"] == 'foo:bar "two  spaces"'
    assert QueryDict(chips["foo:bar"]["query"])["q"] == 'gear "two  spaces"'
    assert 'class="chip-error"' in response.content.decode()
    assert page_names(client.get(URL + "?" + chips["foo:bar"]["query"])) == []  # no "two  spaces"
    assert page_names(client.get(URL, {"q": "gear"})) == ["Gear housing"]


def test_the_page_has_the_new_fields_and_the_help(client_for, viewer, floor) -> None:
    client = client_for(viewer)
    body = client.get(URL).content.decode()
    for name in (
        "updated_after",
        "started_before",
        "completed_after",
        "created_by",
        "updated_by",
        "has_reference",
    ):
        assert f'name="{name}"' in body, name
    assert '<details class="search-help">' in body
    assert 'aria-describedby="search-hint"' in body
    assert '<details class="more-filters">' in body
    opened = client.get(URL, {"created_by": "alice"}).content.decode()
    assert '<details class="more-filters" open>' in opened
    assert 'aria-label="Active filters"' not in body  # no filter, no chips


def test_dense_text_counts_in_the_index(floor, monkeypatch) -> None:
    """A text-only search counts in the FTS table; with another filter, through the jobs."""
    monkeypatch.setattr(search, "PROBE_MATCHES", 1)
    monkeypatch.setattr(search, "WALK_ROWS_PER_MATCH", 10**9)
    text_only = JobFilter(QueryDict("q=o"), queryset=Job.objects.all())
    assert text_only.count(10) == 3
    indexed = JobFilter(QueryDict("q=housing+knob"), queryset=Job.objects.all())
    assert indexed.count(10) == 0
    assert JobFilter(QueryDict("q=cket"), queryset=Job.objects.all()).count(10) == 1
    mixed = JobFilter(QueryDict("q=cket&status=running"), queryset=Job.objects.all())
    assert mixed.count(10) == 0
    with CaptureQueriesContext(connection) as queries:
        assert JobFilter(QueryDict("q=gear"), queryset=Job.objects.all()).count(0) == 1
    if connection.vendor == "sqlite":
        assert "FROM job_search" in queries[-1]["sql"]
