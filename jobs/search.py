"""The jobs list's search syntax and its text index (docs/search.md).

`parse(text)` reads what an operator types in the search box into a `SearchQuery` (its terms,
and `errors` for the parts it could not read); `SearchQuery.format()` writes the canonical
text back; `apply(queryset, query)` narrows a Job queryset by it. `text_filter` is plain text
search (words and quoted phrases, no keys) for the admin.

Text matching is a case-insensitive substring match. It is served by an index on both
databases (jobs/migrations/0003_job_search.py): on SQLite the FTS5 trigram table `job_search`
(rowid = job id), on PostgreSQL pg_trgm GIN indexes on the expressions `icontains` compiles to.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from jobs.models import Job, JobEvent, Printer, changed_from
from jobs.status import JobStatus
from jobs.validation import PRIORITY_MAX, PRIORITY_MIN

# Trigrams need three characters: a shorter term is matched by scanning (see `_text_condition`).
MIN_INDEXED_LENGTH = 3
MAX_TERMS = 30
MAX_LENGTH = 1000
MAX_AGE = timedelta(days=100 * 366)

# A key is letters then a colon, at the start of a term: `status:`, `-printer:`.
KEY_PREFIX = re.compile(r"([A-Za-z]+):")
SPAN_OPERATORS = (">=", "<=", ">", "<")
AGE = re.compile(r"(\d{1,6})([hdw])", re.IGNORECASE | re.ASCII)
AGE_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
MOMENT = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?", re.ASCII)


# Values ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Age:
    """`7d`: a time that many hours, days or weeks before now."""

    amount: int
    unit: str

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def delta(self) -> timedelta:
        return self.amount * AGE_UNITS[self.unit]


Point = int | date | datetime | Age


@dataclass(frozen=True)
class Span:
    """A point (`5`, `2026-01-01`), a comparison (`>=5`, `<7d`) or a range (`a..b`, both ends
    included, in either order)."""

    op: str  # "=", ">=", ">", "<=", "<" or ".."
    first: Point
    second: Point | None = None

    def __str__(self) -> str:
        if self.op == "=":
            return _point_text(self.first)
        if self.op == "..":
            return f"{_point_text(self.first)}..{_point_text(self.second)}"
        return f"{self.op}{_point_text(self.first)}"


def _point_text(point: Point | None) -> str:
    if isinstance(point, datetime):
        return point.isoformat(timespec="seconds" if point.second else "minutes")
    if isinstance(point, date):
        return point.isoformat()
    return str(point)


NONE = "none"  # `printer:none`, `ref:none`: the field is empty.


# Terms and queries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One part of a query: free text (key "") or `key:value,value` (any of the values), or
    its negation (`-key:value`: none of them)."""

    key: str
    values: tuple[Any, ...]
    negated: bool = False

    def format(self) -> str:
        sign = "-" if self.negated else ""
        if not self.key:
            return sign + _quoted(self.values[0], _bare_free_text)
        spec = KEYS[self.key]
        items = ",".join(_quoted(spec.show(value), _bare_item) for value in self.values)
        return f"{sign}{self.key}:{items}"


@dataclass(frozen=True)
class SearchQuery:
    terms: tuple[Term, ...] = ()
    errors: tuple[str, ...] = ()

    def format(self) -> str:
        """The canonical text of the terms (parts in error are left out)."""
        return " ".join(term.format() for term in self.terms)

    def without(self, index: int) -> SearchQuery:
        return replace(self, terms=self.terms[:index] + self.terms[index + 1 :])

    def __add__(self, other: SearchQuery) -> SearchQuery:
        return SearchQuery(self.terms + other.terms, self.errors + other.errors)


def _bare_free_text(text: str) -> bool:
    """Whether free text reads back as itself unquoted."""
    return (
        bool(text)
        and not any(c.isspace() or c == '"' for c in text)
        and not text.startswith("-")
        and not KEY_PREFIX.match(text)
    )


def _bare_item(text: str) -> bool:
    return bool(text) and not any(c.isspace() or c in '",' for c in text)


def _quoted(text: str, is_bare: Callable[[str], bool]) -> str:
    if is_bare(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Keys -----------------------------------------------------------------------------------------


class BadValue(ValueError):
    """A value a key cannot read; the message says what it takes."""


@dataclass(frozen=True)
class Context:
    now: datetime
    index: bool = False  # match text through the SQLite FTS table


@dataclass(frozen=True)
class Key:
    """What a key reads (`read`: one comma-separated item to a value), how it writes a value
    back (`show`) and how a set of values narrows jobs (`condition`, any of them)."""

    read: Callable[[str], Any]
    condition: Callable[[tuple[Any, ...], Context], Q]
    show: Callable[[Any], str] = str
    example: str = ""
    # For text keys: the column searched ("" for all four), so the index can serve it.
    text_column: str | None = None
    # The condition of `-key:…`, for a key whose `~condition` the database runs slowly.
    negated_condition: Callable[[tuple[Any, ...], Context], Q] | None = None


TEXT_COLUMNS = {
    "name": "name",
    "customer": "customer_name",
    "ref": "reference",
    "file": "file_name",
}
SEARCHED_COLUMNS = tuple(TEXT_COLUMNS.values())


def _read_text(item: str) -> str:
    return item


def _read_text_or_none(item: str) -> str:
    return NONE if item.lower() == NONE else item


def _text_key(key: str) -> Key:
    column = TEXT_COLUMNS[key]
    read = _read_text_or_none if key == "ref" else _read_text
    example = f"{key}:ABC-1" if key == "ref" else f'{key}:"some text"'
    return Key(
        read=read,
        condition=lambda values, ctx: _text_condition(values, ctx, column),
        example=example,
        text_column=column,
    )


def _read_status(item: str) -> str:
    value = item.lower()
    if value not in JobStatus.values:
        raise BadValue(f"unknown status “{item}” (one of {', '.join(JobStatus.values)})")
    return value


def _read_yes_no(item: str) -> bool:
    value = item.lower()
    if value in ("yes", "true", "y", "1"):
        return True
    if value in ("no", "false", "n", "0"):
        return False
    raise BadValue(f"“{item}” is not yes or no")


def _read_has(item: str) -> str:
    value = {"ref": "reference"}.get(item.lower(), item.lower())
    if value not in ("reference", "printer"):
        raise BadValue(f"“{item}” is not something a job has here (reference or printer)")
    return value


def _read_span(item: str, read_point: Callable[[str], Point]) -> Span:
    if ".." in item:
        first, _, second = item.partition("..")
        if not first and not second:
            raise BadValue("a range needs at least one end")
        if not second:
            return Span(">=", read_point(first))
        if not first:
            return Span("<=", read_point(second))
        return Span("..", read_point(first), read_point(second))
    for op in SPAN_OPERATORS:
        if item.startswith(op):
            return Span(op, read_point(item[len(op) :]))
    point = read_point(item)
    # A bare age (`updated:7d`) means "within the last 7 days", like `<7d`.
    return Span("<" if isinstance(point, Age) else "=", point)


def _read_priority_point(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not PRIORITY_MIN <= int(text) <= PRIORITY_MAX:
        raise BadValue(
            f"“{text}” is not a priority: a whole number from {PRIORITY_MIN} to {PRIORITY_MAX},"
            " or a range such as >=5 or 3..7"
        )
    return int(text)


def _read_time_point(text: str) -> Point:
    age = AGE.fullmatch(text)
    if age:
        result = Age(int(age.group(1)), age.group(2).lower())
        if result.delta > MAX_AGE:
            raise BadValue(f"“{text}” is more than 100 years")
        return result
    try:
        if DAY.fullmatch(text):
            day = date.fromisoformat(text)
            if day.year < 1900:
                raise ValueError
            return day
        moment = MOMENT.fullmatch(text)
        if moment:
            day_text, hour, minute, second = moment.groups()
            day = date.fromisoformat(day_text)
            if day.year < 1900:
                raise ValueError
            return datetime.combine(day, datetime.min.time()).replace(
                hour=int(hour), minute=int(minute), second=int(second or 0)
            )
    except ValueError:
        pass
    raise BadValue(
        f"“{text}” is not a date (2026-01-31), a date and time (2026-01-31T14:30) or an age"
        " (12h, 7d, 2w)"
    )


def _read_priority(item: str) -> Span:
    return _read_span(item, _read_priority_point)


def _read_time(item: str) -> Span:
    return _read_span(item, _read_time_point)


def _any_of(conditions: Iterable[Q]) -> Q:
    result = Q()
    for condition in conditions:
        result |= condition
    return result


def _all_of(conditions: Iterable[Q]) -> Q:
    result = Q()
    for condition in conditions:
        result &= condition
    return result


def _time_key(column: str) -> Key:
    return Key(
        read=_read_time,
        condition=lambda values, ctx: _any_of(
            _time_condition(column, span, ctx) for span in values
        ),
        example=f"{column.removesuffix('_at')}:>=2026-01-01",
    )


def _printer_condition(values: tuple[str, ...], ctx: Context) -> Q:
    conditions = [Q(printer__isnull=True) for value in values if value == NONE]
    names = _any_of(Q(name__iexact=value) for value in values if value != NONE)
    if names:
        conditions.append(Q(printer__in=Printer.objects.filter(names).values("pk")))
    return _any_of(conditions)


def _user_condition(column: str) -> Callable[[tuple[str, ...], Context], Q]:
    def condition(values: tuple[str, ...], ctx: Context) -> Q:
        names = _any_of(Q(username__iexact=value) for value in values)
        return Q(**{f"{column}__in": get_user_model().objects.filter(names).values("pk")})

    return condition


def _has_condition(values: tuple[str, ...], ctx: Context) -> Q:
    conditions = {
        "reference": Q(reference__isnull=False) & ~Q(reference=""),
        "printer": Q(printer__isnull=False),
    }
    return _any_of(conditions[value] for value in values)


def _priority_condition(values: tuple[Span, ...], ctx: Context) -> Q:
    lookups = {"=": "exact", ">=": "gte", ">": "gt", "<=": "lte", "<": "lt"}
    conditions = []
    for span in values:
        if span.op == "..":
            low, high = sorted((span.first, span.second))
            conditions.append(Q(priority__gte=low, priority__lte=high))
        else:
            conditions.append(Q(**{f"priority__{lookups[span.op]}": span.first}))
    return _any_of(conditions)


def _read_import(item: str) -> str:
    try:
        return str(uuid.UUID(item))
    except ValueError:
        raise BadValue(
            f"“{item}” is not an import's id (the long one in the address of the import's page)"
        ) from None


def _read_origin(item: str) -> str:
    value = item.lower()
    if value not in JobEvent.Origin.values:
        raise BadValue(f"unknown origin “{item}” (one of {', '.join(JobEvent.Origin.values)})")
    return value


# The keys, in the order the help and the "unknown key" message list them.
KEYS: dict[str, Key] = {
    "": Key(read=_read_text, condition=lambda v, ctx: _text_condition(v, ctx, ""), text_column=""),
    "status": Key(
        read=_read_status,
        condition=lambda values, ctx: Q(status__in=values),
        example="status:running,failed",
    ),
    "printer": Key(
        read=_read_text_or_none, condition=_printer_condition, example='printer:"Prusa 1"'
    ),
    "priority": Key(read=_read_priority, condition=_priority_condition, example="priority:>=5"),
    "business": Key(
        read=_read_yes_no,
        condition=lambda values, ctx: Q(is_business__in=values),
        show=lambda value: "yes" if value else "no",
        example="business:yes",
    ),
    "customer": _text_key("customer"),
    "ref": _text_key("ref"),
    "name": _text_key("name"),
    "file": _text_key("file"),
    "created": _time_key("created_at"),
    "updated": _time_key("updated_at"),
    "started": _time_key("started_at"),
    "completed": _time_key("completed_at"),
    "by": Key(read=_read_text, condition=_user_condition("created_by"), example="by:alice"),
    "updatedby": Key(
        read=_read_text, condition=_user_condition("updated_by"), example="updatedby:alice"
    ),
    "has": Key(read=_read_has, condition=_has_condition, example="has:reference"),
    # A change's origin (docs/jobs.md, "History"): the jobs an import created or updated, the
    # jobs changed at least once from a surface.
    "import": Key(
        read=_read_import,
        condition=lambda values, ctx: changed_from(
            [JobEvent.Origin.IMPORT], refs=values, gather=True
        ),
        negated_condition=lambda values, ctx: ~changed_from([JobEvent.Origin.IMPORT], refs=values),
        example="import:0b5ad2c4-1f0e-4c7a-9a53-6d2f3e8b7a10",
    ),
    "origin": Key(
        read=_read_origin,
        condition=lambda values, ctx: changed_from(values),
        example="origin:admin",
    ),
}
ALIASES = {"reference": "ref", "createdby": "by", "customer_name": "customer"}


# Reading --------------------------------------------------------------------------------------


@dataclass
class _Token:
    source: str
    start: int  # where `source` is in the text
    negated: bool
    key: str | None
    items: list[str]


def _tokens(text: str, *, keys: bool = True) -> Iterable[_Token]:
    """Split on whitespace outside quotes. A term is an optional `-`, an optional `key:`, and
    a value: bare characters and "quoted" runs (where \\" and \\\\ stand for " and \\), side
    by side; a key's value is split on commas outside quotes. An unclosed quote runs to the
    end. Without `keys`, every term is one piece of text, `-` and colons included."""
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        negated = keys and text[i] == "-" and i + 1 < n and not text[i + 1].isspace()
        if negated:
            i += 1
        key_match = KEY_PREFIX.match(text, i) if keys else None
        key = key_match.group(1) if key_match else None
        if key_match:
            i = key_match.end()
        items: list[str] = []
        current: list[str] = []
        while i < n and not text[i].isspace():
            char = text[i]
            if char == '"':
                i += 1
                while i < n and text[i] != '"':
                    if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\':
                        i += 1
                    current.append(text[i])
                    i += 1
                i += 1  # the closing quote
            elif char == "," and key is not None:
                items.append("".join(current))
                current = []
                i += 1
            else:
                current.append(char)
                i += 1
        items.append("".join(current))
        yield _Token(text[start:i], start, negated, key, items)


def parse(text: str) -> SearchQuery:
    """Read the search box. Parts it cannot read are left out and named in `errors`."""
    if len(text) > MAX_LENGTH:
        return SearchQuery(errors=(f"The search is longer than {MAX_LENGTH} characters.",))
    control = _has_control(text)
    if control:
        return SearchQuery(
            errors=(f"The search contains a control character (U+{ord(control):04X}).",)
        )
    parts = split(text)
    terms = [part.term for part in parts if part.term is not None]
    errors = [part.error for part in parts if part.error is not None]
    if len(terms) > MAX_TERMS:
        errors.append(f"The search has {len(terms)} parts; at most {MAX_TERMS} are read.")
        terms = terms[:MAX_TERMS]
    return SearchQuery(tuple(terms), tuple(errors))


@dataclass(frozen=True)
class Part:
    """A part of the search box's text as written (`source`, from `start`): its term, or
    the error that says why it cannot be read."""

    source: str
    start: int
    term: Term | None = None
    error: str | None = None

    def removed_from(self, text: str) -> str:
        """`text` without this part, the rest as written."""
        before, after = text[: self.start].rstrip(), text[self.start + len(self.source) :].strip()
        return f"{before} {after}".strip()


def split(text: str) -> list[Part]:
    """The parts of `text`, each with its term or its error (an empty phrase has neither);
    none when the text as a whole cannot be read (see `parse`)."""
    if len(text) > MAX_LENGTH or _has_control(text):
        return []
    parts = []
    for token in _tokens(text):
        try:
            parts.append(Part(token.source, token.start, term=_term(token)))
        except BadValue as error:
            parts.append(Part(token.source, token.start, error=f"“{token.source}”: {error}."))
    return parts


def _has_control(text: str) -> str:
    """The first control character (C0, DEL, C1) in `text` other than a tab or a line break
    (whitespace, between terms), or ""."""
    return next(
        (c for c in text if (ord(c) < 0x20 and c not in "\t\n\r") or 0x7F <= ord(c) < 0xA0), ""
    )


def _term(token: _Token) -> Term | None:
    if token.key is None:
        text = token.items[0]
        return Term("", (text,), token.negated) if text else None
    name = ALIASES.get(token.key.lower(), token.key.lower())
    spec = KEYS.get(name) if name else None
    if spec is None:
        raise BadValue(
            f"unknown key “{token.key}” (keys: {', '.join(key for key in KEYS if key)};"
            " put text with a colon in quotes)"
        )
    items = [item for item in token.items if item]
    if not items:
        raise BadValue(f"{name}: needs a value, such as {spec.example}")
    values = tuple(dict.fromkeys(spec.read(item) for item in items))
    return Term(name, values, token.negated)


# Narrowing ------------------------------------------------------------------------------------


def apply(queryset: QuerySet, query: SearchQuery, *, now: datetime | None = None) -> QuerySet:
    """The jobs of `queryset` that match every term of `query`.

    On PostgreSQL every term is a plain condition; the trigram indexes serve the text. On
    SQLite the text terms the FTS table serves (docs/search.md, "How the index works") are
    matched there together, and the way the list then finds its page depends on how many
    they match (`_indexed_condition`).
    """
    ctx = Context(now or timezone.now(), index=connections[queryset.db].vendor == "sqlite")
    indexed = [term for term in query.terms if ctx.index and _fts_term(term) is not None]
    rest = [term for term in query.terms if term not in indexed]
    queryset = queryset.filter(*(_condition(term, ctx) for term in rest))
    short_words = [
        term for term in rest if KEYS[term.key].text_column is not None and not term.negated
    ]
    if indexed:
        return queryset.filter(_indexed_condition(queryset.db, indexed, ctx, walk=not short_words))
    if ctx.index and short_words and len(short_words) == len(query.terms):
        # Words too short for the index, and nothing else: scan the table once for the
        # matches and sort only them, rather than test row after row of the sort index.
        return queryset.filter(pk__in=queryset.order_by().values("pk"))
    return queryset


def count_in_index(queryset: QuerySet, query: SearchQuery, cap: int) -> int | None:
    """How many of all jobs match `query`, counting no further than `cap` + 1, from the
    SQLite index alone when the query is only text it serves; None otherwise.

    The index hands out matches one by one and stops at the cap, where a COUNT through the
    jobs table gathers every match first (a common word: every fifth job)."""
    if connections[queryset.db].vendor != "sqlite" or queryset.query.where or not query.terms:
        return None
    expressions = [_fts_term(term) for term in query.terms]
    if None in expressions:
        return None
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT rowid FROM job_search WHERE job_search MATCH %s"
            " LIMIT %s)",
            [" AND ".join(expressions), cap + 1],  # type: ignore[arg-type]
        )
        return cursor.fetchone()[0]


# Pages of the SQLite index one call of `merge_index` writes at most: tens of milliseconds.
MERGE_PAGES = 300


def merge_index(using: str = DEFAULT_DB_ALIAS) -> None:
    """Merge some of the SQLite search index's segments, in a transaction of its own.

    FTS5 adds each write transaction's entries to the index as a new segment, and by default
    merges segments inside the next write transactions: at a million jobs one such merge held
    an import batch's transaction, and with it SQLite's write lock, for 300-500 ms. The
    migration jobs 0007 turns that off; writers of many jobs (the import) call this between
    their transactions instead, each call a bounded piece of work. The small segments of
    single edits are still merged by FTS5 itself once 16 pile up at one level."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO job_search(job_search, rank) VALUES ('merge', %s)", [MERGE_PAGES]
        )


# The newest matches the index is asked for, to judge how dense the matches are.
PROBE_MATCHES = 200
# Walk the sort index when it holds a match at least every this many rows.
WALK_ROWS_PER_MATCH = 100


def _indexed_condition(db: str, terms: list[Term], ctx: Context, *, walk: bool) -> Q:
    """The SQLite condition for text terms the FTS table serves (all of them, one MATCH).

    The index first hands out the newest PROBE_MATCHES matches. Fewer than that is every
    match: the condition names them. Otherwise the list either gathers every match from the
    index and sorts them (`id IN (SELECT rowid ... MATCH ...)`, in proportion to the
    matches), or, when the matches are dense, walks its sort index and tests each row with
    LIKE, stopping at a page (in proportion to the rows passed over). At a million jobs the
    two meet near one match in a hundred rows. Only ASCII terms walk (LIKE folds the case of
    ASCII letters only), and only when no shorter word has to be tested row by row as well.
    """
    expression = " AND ".join(_fts_term(term) or "" for term in terms)
    with connections[db].cursor() as cursor:
        cursor.execute(
            f"SELECT rowid, (SELECT max(id) FROM {Job._meta.db_table}) FROM job_search"
            " WHERE job_search MATCH %s ORDER BY rowid DESC LIMIT %s",
            [expression, PROBE_MATCHES],
        )
        newest = cursor.fetchall()
    if len(newest) < PROBE_MATCHES:
        return Q(pk__in=[rowid for rowid, _ in newest])
    (_, last_id), (oldest_probed, _) = newest[0], newest[-1]
    dense = last_id - oldest_probed < PROBE_MATCHES * WALK_ROWS_PER_MATCH
    if walk and dense and all(value.isascii() for term in terms for value in term.values):
        scan = replace(ctx, index=False)
        return _all_of(_condition(term, scan) for term in terms)
    return _fts_match(expression)


def _condition(term: Term, ctx: Context) -> Q:
    spec = KEYS[term.key]
    if term.negated and spec.negated_condition is not None:
        return spec.negated_condition(term.values, ctx)
    condition = spec.condition(term.values, ctx)
    return ~condition if term.negated else condition


def text_filter(queryset: QuerySet, text: str) -> QuerySet:
    """Jobs whose name, customer name, reference or file name contain each word of `text`
    (a "quoted phrase" as one), through the index. Keys are not read: `a:b` is text."""
    words = [token.items[0] for token in _tokens(text[:MAX_LENGTH], keys=False)]
    terms = tuple(Term("", (word,)) for word in words if word and not _has_control(word))
    return apply(queryset, SearchQuery(terms[:MAX_TERMS]))


def _fts_string(text: str) -> str:
    """An FTS5 string: every character literal (operators, `*`, `:` included)."""
    return '"' + text.replace('"', '""') + '"'


def _fts_term(term: Term) -> str | None:
    """The FTS5 expression of a text term, or None when the index cannot serve it by
    itself (a negation narrows nothing: it is tested with the rest of the conditions)."""
    column = KEYS[term.key].text_column
    return None if column is None or term.negated else _fts_any(term.values, column)


def _fts_any(values: tuple[str, ...], column: str) -> str | None:
    """An FTS5 expression matching any of `values` in `column` (all four when ""), or None
    when a value cannot use the index (too short, or `none`)."""
    parts = []
    for value in values:
        if len(value) < MIN_INDEXED_LENGTH or (column == "reference" and value == NONE):
            return None
        parts.append(f"{column} : {_fts_string(value)}" if column else _fts_string(value))
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _fts_match(expression: str) -> Q:
    return Q(pk__in=RawSQL("SELECT rowid FROM job_search WHERE job_search MATCH %s", [expression]))


def _text_condition(values: tuple[str, ...], ctx: Context, column: str) -> Q:
    """Any of `values` as a substring of `column` (all four when "").

    On PostgreSQL `icontains` is what the trigram indexes are built for. On SQLite (`index`)
    a value of three characters or more goes through the FTS table, a shorter one is a LIKE,
    which the rest of the query's conditions narrow first when they can."""
    conditions = []
    for value in values:
        if column == "reference" and value == NONE:
            conditions.append(Q(reference__isnull=True) | Q(reference=""))
        elif ctx.index and len(value) >= MIN_INDEXED_LENGTH:
            conditions.append(_fts_match(_fts_any((value,), column) or ""))
        else:
            columns = (column,) if column else SEARCHED_COLUMNS
            conditions.append(_any_of(Q(**{f"{name}__icontains": value}) for name in columns))
    return _any_of(conditions)


def _time_condition(column: str, span: Span, ctx: Context) -> Q:
    """`column` within `span`. A date stands for its whole (local) day, a time for its minute
    (or second, when it has seconds), an age for the instant that long before now; an age
    compares the other way round: `<7d` is after the instant 7 days ago."""
    if span.op == "..":
        lows = [_bounds(point, ctx)[0] for point in (span.first, span.second)]
        highs = [_bounds(point, ctx)[1] for point in (span.first, span.second)]
        low = min(lows, key=lambda bound: bound[0])
        high = max(highs, key=lambda bound: (bound[0], bound[1]))
        return _after(column, low) & _before(column, high)
    (start, start_inclusive), (end, end_inclusive) = _bounds(span.first, ctx)
    if isinstance(span.first, Age):
        span = replace(span, op={"<": ">", "<=": ">=", ">": "<", ">=": "<="}[span.op])
    if span.op == "=":
        return _after(column, (start, start_inclusive)) & _before(column, (end, end_inclusive))
    if span.op == ">=":
        return _after(column, (start, start_inclusive))
    if span.op == ">":
        return _after(column, (end, not end_inclusive))
    if span.op == "<=":
        return _before(column, (end, end_inclusive))
    return _before(column, (start, not start_inclusive))


def _bounds(point: Point, ctx: Context) -> tuple[tuple[datetime, bool], tuple[datetime, bool]]:
    """(start, inclusive), (end, inclusive) of the instants `point` names."""
    if isinstance(point, Age):
        instant = ctx.now - point.delta
        return (instant, True), (instant, True)
    if isinstance(point, datetime):
        start = timezone.make_aware(point)
        return (start, True), (start + timedelta(seconds=1 if point.second else 60), False)
    assert isinstance(point, date)
    start = timezone.make_aware(datetime.combine(point, datetime.min.time()))
    if point == date.max:
        return (start, True), (datetime.max.replace(tzinfo=start.tzinfo), True)
    following = timezone.make_aware(
        datetime.combine(point + timedelta(days=1), datetime.min.time())
    )
    return (start, True), (following, False)


def _after(column: str, bound: tuple[datetime, bool]) -> Q:
    moment, inclusive = bound
    return Q(**{f"{column}__{'gte' if inclusive else 'gt'}": moment})


def _before(column: str, bound: tuple[datetime, bool]) -> Q:
    moment, inclusive = bound
    return Q(**{f"{column}__{'lte' if inclusive else 'lt'}": moment})


def unknown_names(query: SearchQuery) -> list[str]:
    """Errors for printer and user names in `query` that nothing has, so a typo is reported
    rather than matching nothing (or, negated, excluding nothing) without a word."""
    errors = []
    lookups = {
        "printer": (Printer.objects, "name", "no printer is named"),
        "by": (get_user_model().objects, "username", "no user is named"),
        "updatedby": (get_user_model().objects, "username", "no user is named"),
    }
    for term in query.terms:
        if term.key not in lookups:
            continue
        manager, column, message = lookups[term.key]
        for value in term.values:
            if value == NONE and term.key == "printer":
                continue
            if not manager.filter(**{f"{column}__iexact": value}).exists():
                errors.append(f"“{term.format()}”: {message} “{value}”.")
    return errors
