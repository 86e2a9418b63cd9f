"""The filters and sort of the jobs list, read from the query string."""

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from jobs.models import Job, Printer
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


class JobFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Name, customer or reference"}
        ),
    )
    status = django_filters.MultipleChoiceFilter(
        choices=JobStatus.choices, widget=forms.CheckboxSelectMultiple, method="filter_status"
    )
    printer = django_filters.ModelChoiceFilter(
        queryset=Printer.objects.all(), empty_label="Any printer"
    )
    is_business = django_filters.BooleanFilter(
        label="Business",
        widget=forms.Select(choices=[("", "Any"), ("true", "Business"), ("false", "Private")]),
    )
    priority = django_filters.ChoiceFilter(
        choices=[(n, str(n)) for n in range(PRIORITY_MIN, PRIORITY_MAX + 1)],
        empty_label="Any priority",
    )
    created = django_filters.DateFromToRangeFilter(
        field_name="created_at",
        label="Created",
        widget=django_filters.widgets.DateRangeWidget(attrs={"type": "date"}),
    )
    sort = JobOrdering(fields=[(field, key) for key, field in SORT_FIELDS.items()])

    class Meta:
        model = Job
        fields: list[str] = []

    def filter_status(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        # One IN over the (status, updated_at) index, not django-filter's OR + DISTINCT.
        return queryset.filter(status__in=value) if value else queryset

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        text = value.strip()
        if not text:
            return queryset
        return queryset.filter(
            Q(name__icontains=text)
            | Q(customer_name__icontains=text)
            | Q(reference__icontains=text)
        )

    @property
    def form(self) -> forms.Form:
        form = super().form
        # The edit modal's fields share these names; keep the ids on the page unique.
        form.auto_id = "filter-%s"
        return form

    @property
    def has_text_search(self) -> bool:
        """Whether the list is narrowed by `q`, which no index serves (it matches substrings)."""
        return bool(self.is_bound and self.form.is_valid() and self.form.cleaned_data["q"].strip())

    @property
    def is_filtered(self) -> bool:
        """Whether the query string narrows the list (sorting and paging do not)."""
        data: Any = self.data
        return any(
            value for key, values in data.lists() if key not in ("sort", "page") for value in values
        )
