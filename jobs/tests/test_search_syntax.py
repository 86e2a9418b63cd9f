"""The search syntax (jobs/search.py): what `parse` reads, what it refuses and why, and that
`format` writes a canonical text that reads back as the same query."""

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.models import JobEvent
from jobs.search import KEYS, Age, SearchQuery, Span, Term, parse
from jobs.status import JobStatus


def terms(text: str) -> tuple[Term, ...]:
    query = parse(text)
    assert query.errors == (), query.errors
    return query.terms


def test_the_documented_example() -> None:
    text = (
        'status:running,failed printer:"Prusa 1" priority:>=5 business:yes created:>=2026-01-01'
        ' updated:<7d customer:acme ref:ABC-1 -status:cancelled "exact phrase" bracket'
    )
    assert terms(text) == (
        Term("status", ("running", "failed")),
        Term("printer", ("Prusa 1",)),
        Term("priority", (Span(">=", 5),)),
        Term("business", (True,)),
        Term("created", (Span(">=", date(2026, 1, 1)),)),
        Term("updated", (Span("<", Age(7, "d")),)),
        Term("customer", ("acme",)),
        Term("ref", ("ABC-1",)),
        Term("status", ("cancelled",), negated=True),
        Term("", ("exact phrase",)),
        Term("", ("bracket",)),
    )
    assert parse(text).format() == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Status:RUNNING", Term("status", ("running",))),
        ("reference:abc", Term("ref", ("abc",))),  # an alias
        ("createdby:alice", Term("by", ("alice",))),
        ("business:no", Term("business", (False,))),
        ("business:TRUE", Term("business", (True,))),
        ("priority:5", Term("priority", (Span("=", 5),))),
        ("priority:3..7", Term("priority", (Span("..", 3, 7),))),
        ("priority:7..3", Term("priority", (Span("..", 7, 3),))),
        ("priority:3..", Term("priority", (Span(">=", 3),))),
        ("priority:..3", Term("priority", (Span("<=", 3),))),
        ("priority:<2,>8", Term("priority", (Span("<", 2), Span(">", 8)))),
        ("created:2026-01-31", Term("created", (Span("=", date(2026, 1, 31)),))),
        (
            "started:2026-01-01..2026-01-31",
            Term("started", (Span("..", date(2026, 1, 1), date(2026, 1, 31)),)),
        ),
        (
            'completed:">2026-01-31 14:30"',
            Term("completed", (Span(">", datetime(2026, 1, 31, 14, 30)),)),
        ),
        (
            "updated:>=2026-01-31T14:30:15",
            Term("updated", (Span(">=", datetime(2026, 1, 31, 14, 30, 15)),)),
        ),
        ("updated:12h", Term("updated", (Span("<", Age(12, "h")),))),  # bare age: within
        ("updated:>2W", Term("updated", (Span(">", Age(2, "w")),))),
        ("updated:1d..7d", Term("updated", (Span("..", Age(1, "d"), Age(7, "d")),))),
        ("has:ref", Term("has", ("reference",))),
        ("-has:reference", Term("has", ("reference",), negated=True)),
        ("ref:none", Term("ref", ("none",))),
        ("printer:NONE", Term("printer", ("none",))),
        ("status:running,,running,", Term("status", ("running",))),  # empties and repeats
        ('name:"a,b"', Term("name", ("a,b",))),
        ('customer:"Acme, Inc",Globex', Term("customer", ("Acme, Inc", "Globex"))),
        ('name:ab"c d"e', Term("name", ("abc de",))),  # quoted runs join their neighbours
        ('"a \\"quoted\\" word"', Term("", ('a "quoted" word',))),
        ('"back\\\\slash"', Term("", ("back\\slash",))),
        ('"C:\\temp"', Term("", ("C:\\temp",))),  # a lone backslash stays
        ('"status:running"', Term("", ("status:running",))),  # quoted: text, not a key
        ("-word", Term("", ("word",), negated=True)),
        ('-"two words"', Term("", ("two words",), negated=True)),
        ("-", Term("", ("-",))),
        ("10:30", Term("", ("10:30",))),  # digits before a colon are no key
        ('"unclosed phrase', Term("", ("unclosed phrase",))),
        ("NEAR(a b) OR *", Term("", ("NEAR(a",))),
    ],
)
def test_reads(text: str, expected: Term) -> None:
    assert terms(text)[0] == expected


def test_words_are_separate_terms_and_whitespace_does_not_matter() -> None:
    assert terms("  gear \t bracket\n") == (Term("", ("gear",)), Term("", ("bracket",)))
    assert terms("") == terms("   ") == ()
    assert terms('""') == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo:bar", "“foo:bar”: unknown key “foo” (keys: status, printer, priority"),
        ("http://example.com", "unknown key “http”"),
        ("status:runing", "“status:runing”: unknown status “runing” (one of pending, scheduled"),
        ("status:", "“status:”: status: needs a value, such as status:running,failed."),
        ("-status:", "status: needs a value"),
        ('name:""', "name: needs a value"),
        ("priority:11", "“11” is not a priority: a whole number from 0 to 10"),
        ("priority:>=x", "“x” is not a priority"),
        ("priority:..", "a range needs at least one end"),
        ("priority:1..2..3", "“2..3” is not a priority"),
        ("business:maybe", "“maybe” is not yes or no"),
        ("has:notes", "“notes” is not something a job has here (reference or printer)"),
        ("created:2026-02-30", "“2026-02-30” is not a date (2026-01-31)"),
        ("created:2026-1-1", "is not a date"),
        ("created:1850-01-01", "is not a date"),
        ("created:2026-01-01T25:00", "is not a date"),
        ("updated:<7y", "“7y” is not a date"),
        ("updated:<999999w", "“999999w” is more than 100 years"),
        ("created:>=٢٠٢٦-01-01", "is not a date"),
        ("priority:٥", "is not a priority"),
    ],
)
def test_refuses_with_a_message(text: str, message: str) -> None:
    query = parse(text)
    assert query.terms == ()
    assert len(query.errors) == 1
    assert message in query.errors[0]


def test_only_the_bad_part_is_refused() -> None:
    query = parse("gear status:nope -printer:none")
    assert query.terms == (Term("", ("gear",)), Term("printer", ("none",), negated=True))
    assert [error.split(":")[0] for error in query.errors] == ["“status"]
    assert query.format() == "gear -printer:none"


def test_control_characters_and_size_limits() -> None:
    assert parse("gear\x00").errors == ("The search contains a control character (U+0000).",)
    assert parse("gear\x85").errors == ("The search contains a control character (U+0085).",)
    assert "longer than 1000 characters" in parse("x" * 1001).errors[0]
    query = parse(" ".join(f"w{n}" for n in range(40)))
    assert len(query.terms) == 30
    assert query.errors == ("The search has 40 parts; at most 30 are read.",)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("STATUS:Running", "status:running"),
        ('"gear"', "gear"),
        ('name:"gear"', "name:gear"),
        ("business:true", "business:yes"),
        ("priority:05", "priority:5"),
        ("priority:3..", "priority:>=3"),
        ("updated:7D", "updated:<7d"),
        ('created:"2026-01-31 14:30"', "created:2026-01-31T14:30"),
        ("reference:x", "ref:x"),
        ('"-dash"', '"-dash"'),
        ('"a:b"', '"a:b"'),
        ('name:"a b",c', 'name:"a b",c'),
        ('"say \\"hi\\""', '"say \\"hi\\""'),
    ],
)
def test_format_is_canonical(text: str, canonical: str) -> None:
    assert parse(text).format() == canonical
    assert parse(canonical).format() == canonical


def test_without_drops_one_term() -> None:
    query = parse("gear status:running -has:reference")
    assert query.without(1).format() == "gear -has:reference"


# Round trips over queries generated from the grammar -----------------------------------------

KEY_NAMES = [key for key in KEYS if key]
WORD = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs"), blacklist_characters="\x85", max_codepoint=0x2FFF
    ),
    min_size=1,
    max_size=12,
)
DAY = st.dates(min_value=date(1900, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat)
MOMENT = st.builds(
    lambda moment, layout: moment.strftime(layout),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31)),
    st.sampled_from(["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]),
)
AGE = st.builds(lambda n, unit: f"{n}{unit}", st.integers(0, 5000), st.sampled_from("hdwHDW"))
POINTS = {
    "priority": st.integers(0, 10).map(str),
    "time": st.one_of(DAY, MOMENT, AGE),
}


def _span(point: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    operators = st.sampled_from(["", ">=", ">", "<=", "<"])
    comparison = st.builds(lambda op, p: op + p, operators, point)
    both = st.builds(lambda a, b: f"{a}..{b}", point, point)
    open_range = st.one_of(point.map(lambda p: f"{p}.."), point.map(lambda p: f"..{p}"))
    return st.one_of(comparison, both, open_range)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _item(text: str, draw_quote: bool) -> str:
    """`text` as one comma-separated item, quoted when it must be (or when asked to)."""
    needs = not text or any(c.isspace() or c in '",' for c in text)
    return _quote(text) if needs or draw_quote else text


@st.composite
def key_term(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from(KEY_NAMES))
    if key == "status":
        value = st.sampled_from(JobStatus.values + ["RUNNING", "Failed"])
    elif key == "business":
        value = st.sampled_from(["yes", "no", "true", "false", "Y", "0"])
    elif key == "has":
        value = st.sampled_from(["reference", "ref", "printer"])
    elif key == "priority":
        value = _span(POINTS["priority"])
    elif key in ("created", "updated", "started", "completed"):
        value = _span(POINTS["time"])
    elif key == "import":
        value = st.one_of(st.uuids().map(str), st.uuids().map(lambda id_: id_.hex.upper()))
    elif key == "origin":
        value = st.sampled_from(JobEvent.Origin.values + ["UI", "Admin"])
    else:
        value = st.one_of(WORD, st.just("none"))
    items = draw(st.lists(value, min_size=1, max_size=3))
    written = ",".join(_item(item, draw(st.booleans())) for item in items)
    sign = "-" if draw(st.booleans()) else ""
    spelled = key.upper() if draw(st.booleans()) else key
    return f"{sign}{spelled}:{written}"


@st.composite
def free_term(draw: st.DrawFn) -> str:
    text = draw(WORD)
    sign = "-" if draw(st.booleans()) else ""
    bare = (
        not any(c.isspace() or c == '"' for c in text)
        and not text.startswith("-")
        and not (":" in text and text.split(":")[0].isascii() and text.split(":")[0].isalpha())
    )
    return sign + (text if bare and draw(st.booleans()) else _quote(text))


GRAMMAR = st.lists(st.one_of(key_term(), free_term()), max_size=8).map(" ".join)


@settings(max_examples=400, deadline=None)
@given(GRAMMAR)
def test_round_trip_of_generated_queries(text: str) -> None:
    query = parse(text)
    assert query.errors == ()
    canonical = query.format()
    assert parse(canonical) == query
    assert parse(canonical).format() == canonical


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120))
def test_any_text_reads_without_failing_and_its_readable_part_round_trips(text: str) -> None:
    query = parse(text)
    canonical = query.format()
    assert parse(canonical) == SearchQuery(query.terms)
    assert parse(canonical).format() == canonical
