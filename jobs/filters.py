"""The filters and sort of the jobs list, read from the query string.

The form's fields and the search box (`q`, the syntax of jobs/search.py) are one filter: each
field becomes the search term it stands for (`status=running` is `status:running`) and every
term goes through `search.apply`. The fields stay in their own parameters and the box holds
the rest; `chips` lists every active part with a link to the list without it
(docs/search.md, "The box and the form").
"""

from typing import Any

import django_filters
from django import forms
from django.db import connections
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils.functional import cached_property

from jobs import search
from jobs.models import Job, JobEvent, Printer
from jobs.search import SearchQuery, Span, Term
from jobs.status import JobStatus
from jobs.validation import PRIORITY_MAX, PRIORITY_MIN

# Sortable columns: query-string key -> model field. Each has an index (see Job.Meta.indexes).
SORT_FIELDS = {
    "name": "name",
    "status": "status",
    "priority": "priority",
    "customer": "customer_name",
    "created": "created_at",
    "updated": "updated_at",
}
# Parameters that say where in the list you are, not what it holds: a new filter starts over.
POSITION_PARAMS = ("page", "cursor")
DATE_RANGES = ("created", "updated", "started", "completed")
DATE_ENDS = ("after", "before")  # a date range's parameters: created_after, created_before
# The parameters of the fields the page folds under "More filters".
MORE_FILTERS = tuple(f"{name}_{end}" for name in DATE_RANGES[1:] for end in DATE_ENDS) + (
    "created_by",
    "updated_by",
    "origin",
)


class JobOrdering(django_filters.OrderingFilter):
    """One sort key from the whitelist, with `id` as the tie-breaker so pages never overlap.

    The tie-breaker runs in the same direction as the key, so one (field, id) index serves
    both directions.
    """

    def filter(self, qs: QuerySet, value: list[str] | None) -> QuerySet:
        if not value:
            return qs
        ordering = self.get_ordering_value(value[0])
        return qs.order_by(ordering, "-id" if ordering.startswith("-") else "id")


class OrderedDateRangeField(django_filters.fields.DateRangeField):
    """A from–to pair of dates whose "from" is not after its "to": reversed, it would match
    nothing, so it is refused with a message saying so (on the page and in an API's or a
    tool's error details) rather than showing an empty list."""

    def compress(self, data_list: list[Any]) -> slice | None:
        span = super().compress(data_list)
        if span and span.start and span.stop and span.start > span.stop:
            first, last = span.start.date().isoformat(), span.stop.date().isoformat()
            raise forms.ValidationError(
                "The “from” date %(first)s is after the “to” date %(last)s, so no job could "
                "match; swap them.",
                code="reversed",
                params={"first": first, "last": last},
            )
        return span


class OrderedDateRangeFilter(django_filters.DateFromToRangeFilter):
    field_class = OrderedDateRangeField


def _date_range(label: str) -> OrderedDateRangeFilter:
    widget = django_filters.widgets.DateRangeWidget(attrs={"type": "date"})
    # The page shows one legend for the pair; each input still needs a name of its own.
    for end, input_widget in zip(("from", "to"), widget.widgets, strict=True):
        input_widget.attrs["aria-label"] = f"{label} {end}"
    return OrderedDateRangeFilter(label=label, widget=widget)


class _ReadOnceChoices(forms.models.ModelChoiceIterator):
    """The choices from the queryset's own result: one plain query per form, read again at
    no cost (the list's bulk bar offers the active ones). Django's iterator queries anew for
    each reading, through a server-side cursor on PostgreSQL (four round trips)."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for instance in self.queryset:
            yield self.choice(instance)


class _PrinterField(django_filters.fields.ModelChoiceField):
    iterator = _ReadOnceChoices


class PrinterFilter(django_filters.ModelChoiceFilter):
    field_class = _PrinterField


class JobFilter(django_filters.FilterSet):
    """`JobFilter(query_string, queryset=...)`: `.qs` the jobs, `.form` the filter form.

    Anything that cannot be read (a form field's `errors`, the box's `search_errors`) shows
    no jobs at all rather than more than asked for: see `qs`.
    """

    # The fields only read and validate the query string; `filter_queryset` does the filtering.
    q = django_filters.CharFilter(
        label="Search",
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": 'Words, "a phrase", status:running …',
                "aria-describedby": "search-hint",
                "autocomplete": "off",
                "spellcheck": "false",
            }
        ),
    )
    status = django_filters.MultipleChoiceFilter(
        choices=JobStatus.choices, widget=forms.CheckboxSelectMultiple
    )
    printer = PrinterFilter(queryset=Printer.objects.all(), empty_label="Any printer")
    is_business = django_filters.BooleanFilter(
        label="Business",
        widget=forms.Select(choices=[("", "Any"), ("true", "Business"), ("false", "Private")]),
    )
    priority = django_filters.ChoiceFilter(
        choices=[(n, str(n)) for n in range(PRIORITY_MIN, PRIORITY_MAX + 1)],
        empty_label="Any priority",
    )
    created = _date_range("Created")
    updated = _date_range("Updated")
    started = _date_range("Started")
    completed = _date_range("Completed")
    created_by = django_filters.CharFilter(
        label="Created by", widget=forms.TextInput(attrs={"placeholder": "Username"})
    )
    updated_by = django_filters.CharFilter(
        label="Updated by", widget=forms.TextInput(attrs={"placeholder": "Username"})
    )
    has_reference = django_filters.ChoiceFilter(
        label="Reference",
        choices=[("yes", "With a reference"), ("no", "Without a reference")],
        empty_label="Any",
    )
    # Jobs with a change from that surface (docs/jobs.md, "History"); `import` is below.
    origin = django_filters.ChoiceFilter(
        label="Changed from", choices=JobEvent.Origin.choices, empty_label="Anywhere"
    )
    sort = JobOrdering(fields=[(field, key) for key, field in SORT_FIELDS.items()])

    class Meta:
        model = Job
        fields: list[str] = []

    @property
    def printers(self) -> QuerySet[Printer]:
        """Every printer, by name: the printer field's choices, read once for the page."""
        return self.form.fields["printer"].queryset

    @property
    def form(self) -> forms.Form:
        form = super().form
        # The edit modal's fields share these names; keep the ids on the page unique.
        form.auto_id = "filter-%s"
        return form

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        if self.filter_errors or self.search_errors:
            return queryset.none()
        queryset = search.apply(queryset, self.search_query)
        return self.filters["sort"].filter(queryset, self.form.cleaned_data.get("sort"))

    def count(self, cap: int) -> int:
        """How many jobs `qs` holds, counting no further than `cap` + 1 (so more than `cap`
        reads as `cap` + 1). Text alone is counted in the search index when it can be."""
        if self.is_bound and not (self.filter_errors or self.search_errors):
            counted = search.count_in_index(self.queryset, self.search_query, cap)
            if counted is not None:
                return counted
        return self.qs.select_related(None).order_by().values("pk")[: cap + 1].count()

    @property
    def counts_slowly(self) -> bool:
        """Whether counting the matches may take longer than listing a page: a text search,
        whose count gathers its matches from the text index and, on PostgreSQL, reads each
        one (a common word: every tenth job, and the count stops only at 10,001). The list
        shows its page first and fetches such a count after (views.job_count)."""
        return any(
            search.KEYS[term.key].text_column is not None for term in self.search_query.terms
        )

    @cached_property
    def parts(self) -> list[Q]:
        """One condition per status when the filter chooses several (and nothing else rules
        the statuses) and the list is sorted by update: pieces of `qs` that the (status,
        updated) index lists in order (paging.paginate)."""
        if self.filter_errors or self.search_errors:
            return []
        if (self.data.get("sort") or "-updated") not in ("updated", "-updated"):
            return []
        terms = self.search_query.terms
        chosen = [term for term in terms if term.key == "status"]
        if len(chosen) != 1 or chosen[0].negated or len(chosen[0].values) < 2:
            return []
        if connections[self.queryset.db].vendor == "postgresql" and any(
            search.KEYS[term.key].text_column is not None for term in terms
        ):
            # PostgreSQL finds text through its trigram indexes, once for all the statuses;
            # once per status measured a quarter slower (bench/bench_api.py).
            return []
        return [Q(status=status) for status in chosen[0].values]

    @cached_property
    def box_query(self) -> SearchQuery:
        """What the search box holds."""
        return search.parse(self.data.get("q", "") if self.is_bound else "")

    @cached_property
    def _form_parts(self) -> list[tuple[Term, tuple[str, ...]]]:
        """Each filled form field as its search term, with the parameters it came from."""
        if not self.is_bound:
            return []
        self.form.is_valid()  # cleans the fields; the ones in error are left out
        data = self.form.cleaned_data
        parts: list[tuple[Term, tuple[str, ...]]] = []
        if data.get("status"):
            parts.append((Term("status", tuple(data["status"])), ("status",)))
        if data.get("printer"):
            parts.append((Term("printer", (data["printer"].name,)), ("printer",)))
        if data.get("is_business") is not None:
            parts.append((Term("business", (data["is_business"],)), ("is_business",)))
        if data.get("priority") not in (None, ""):
            parts.append((Term("priority", (Span("=", int(data["priority"])),)), ("priority",)))
        for name in DATE_RANGES:
            span = _date_span(data.get(name))
            if span is not None:
                parts.append((Term(name, (span,)), tuple(f"{name}_{end}" for end in DATE_ENDS)))
        for name, key in (("created_by", "by"), ("updated_by", "updatedby")):
            if data.get(name, "").strip():
                parts.append((Term(key, (data[name].strip(),)), (name,)))
        if data.get("has_reference"):
            has = Term("has", ("reference",), negated=data["has_reference"] == "no")
            parts.append((has, ("has_reference",)))
        if data.get("import"):
            parts.append((Term("import", (str(data["import"]),)), ("import",)))
        if data.get("origin"):
            parts.append((Term("origin", (data["origin"],)), ("origin",)))
        return parts

    @cached_property
    def search_query(self) -> SearchQuery:
        """The whole filter, form and box, as one query."""
        return SearchQuery(tuple(term for term, _ in self._form_parts)) + self.box_query

    @cached_property
    def search_errors(self) -> list[str]:
        """What the search box, or a name given in a field, says that cannot be read."""
        named = SearchQuery(tuple(t for t, _ in self._form_parts if t.key in ("by", "updatedby")))
        return list(self.box_query.errors) + search.unknown_names(named + self.box_query)

    @property
    def filter_errors(self) -> dict[str, Any]:
        """The form's errors on filters; an unknown sort is not one (the default sort holds)."""
        return {name: errors for name, errors in self.errors.items() if name != "sort"}

    def errors_by_parameter(self, *, search: str = "q") -> dict[str, list[str]]:
        """What cannot be read, by parameter (the search box's under `search`): the details
        of an API's or a tool's error answer."""
        errors = {
            name: [str(message) for message in messages]
            for name, messages in self.filter_errors.items()
        }
        if self.search_errors:
            errors[search] = self.search_errors
        return errors

    @property
    def error_messages(self) -> list[str]:
        """Every reason the list shows nothing, for the page."""
        fields = self.form.fields
        messages = [
            f"{fields[name].label or name.capitalize()}: {' '.join(errors)}"
            for name, errors in self.filter_errors.items()
        ]
        return messages + self.search_errors

    @property
    def chips(self) -> list[dict[str, str]]:
        """Every part of the filter, a form field or a part of the box: its text (`label`),
        the query string without it (`query`), and why it cannot be read (`error`), if so.
        A part of the box is taken out of the box's text as written, the rest left as it is."""
        if not self.is_bound:
            return []
        params: QueryDict = (
            self.data.copy() if isinstance(self.data, QueryDict) else QueryDict(mutable=True)
        )
        for name in POSITION_PARAMS:
            params.pop(name, None)
        chips = []
        for term, names in self._form_parts:
            link = params.copy()
            for name in names:
                link.pop(name, None)
            chips.append({"label": term.format(), "query": link.urlencode(), "error": ""})
        text = params.get("q", "")
        for part in search.split(text):
            if part.term is None and part.error is None:
                continue
            link = params.copy()
            rest = part.removed_from(text)
            if rest:
                link["q"] = rest
            else:
                link.pop("q", None)
            label = part.term.format() if part.term else part.source
            chips.append({"label": label, "query": link.urlencode(), "error": part.error or ""})
        return chips

    @property
    def more_filters_active(self) -> bool:
        """Whether a field under "More filters" is filled, so the page shows them open."""
        return any(self.data.get(name) for name in MORE_FILTERS)

    @property
    def is_filtered(self) -> bool:
        """Whether the query string narrows the list (sorting and paging do not)."""
        data: Any = self.data
        return any(
            value
            for key, values in data.lists()
            if key not in ("sort", *POSITION_PARAMS)
            for value in values
        )


# The jobs an import created or updated: `import=<id>`, what an import's page links to. The
# parameter is a Python keyword, so the filter cannot be declared in the class body. Hidden:
# the import's page sets it, and the filter form carries it along.
JobFilter.base_filters["import"] = django_filters.UUIDFilter(
    label="Import", widget=forms.HiddenInput
)


def _date_span(value: slice | None) -> Span | None:
    """A date range field's value (a slice of the first and last moments) as a span of days."""
    if not value or (value.start is None and value.stop is None):
        return None
    first = value.start.date() if value.start else None
    last = value.stop.date() if value.stop else None
    if first and last:
        return Span("..", first, last)
    return Span(">=", first) if first else Span("<=", last)
