"""A date range whose "from" is after its "to" is explained, on the list page and in the
API's problem details, instead of giving an empty list."""

import pytest
from django.http import QueryDict
from django.urls import reverse

from jobs.filters import JobFilter
from jobs.models import Job

pytestmark = pytest.mark.django_db

REVERSED = "created_after=2026-02-01&created_before=2026-01-01"
MESSAGE = "The “from” date 2026-02-01 is after the “to” date 2026-01-01"


def test_from_after_to_is_an_error_of_its_range() -> None:
    filterset = JobFilter(QueryDict(REVERSED), queryset=Job.objects.all())
    assert filterset.error_messages == [f"Created: {MESSAGE}, so no job could match; swap them."]
    assert filterset.errors_by_parameter() == {
        "created": [f"{MESSAGE}, so no job could match; swap them."]
    }


@pytest.mark.parametrize(
    "query",
    [
        "created_after=2026-01-01&created_before=2026-01-01",
        "created_after=2026-01-01&created_before=2026-02-01",
        "updated_after=2026-01-01",
        "completed_before=2026-01-01",
    ],
)
def test_ordered_or_open_ranges_are_no_error(query) -> None:
    assert JobFilter(QueryDict(query), queryset=Job.objects.all()).error_messages == []


@pytest.mark.parametrize("name", ["updated", "started", "completed"])
def test_every_date_range_checks_its_order(name) -> None:
    query = f"{name}_after=2026-03-02&{name}_before=2026-03-01"
    filterset = JobFilter(QueryDict(query), queryset=Job.objects.all())
    assert list(filterset.errors_by_parameter()) == [name]


def test_the_list_page_says_why_it_shows_nothing(client_for, viewer, make_job) -> None:
    make_job(name="Bracket")
    body = client_for(viewer).get(f"{reverse('jobs:list')}?{REVERSED}").content.decode()
    assert MESSAGE in body and "No jobs are shown until the filter can be read" in body
    assert "Bracket" not in body


def test_the_api_names_the_range_in_its_problem_details(client_for, editor) -> None:
    response = client_for(editor).get(f"/api/v1/jobs?{REVERSED}")
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "VALIDATION_ERROR"
    assert MESSAGE in problem["errors"]["created"][0]
