"""The list's count of a text search comes after its page: the page leaves it out (a count
of a common word reads up to 10,001 matches) and fetches it from /jobs/count/."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs.views import PAGE_SIZE

pytestmark = pytest.mark.django_db
LIST, COUNT = reverse("jobs:list"), reverse("jobs:count")


@pytest.fixture
def gears(make_job) -> None:
    for number in range(PAGE_SIZE + 5):
        make_job(name=f"Gear {number}", priority=number % 3)


def count_queries(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in captured if "COUNT(" in query["sql"].upper()]


def test_a_text_search_shows_its_page_and_fetches_its_count(client_for, viewer, gears) -> None:
    client = client_for(viewer)
    with CaptureQueriesContext(connection) as captured:
        html = client.get(LIST, {"q": "gear priority:>=0"}).content.decode()
    assert count_queries(captured) == []
    assert "More than one page of jobs match these filters (counting…)" in html
    assert f'hx-get="{COUNT}?q=gear+priority%3A%3E%3D0"' in html
    answer = client.get(COUNT, {"q": "gear priority:>=0"}).content.decode()
    assert f"{PAGE_SIZE + 5} jobs" in answer and "match these filters" in answer
    assert 'id="result-count"' in answer
    answer = client.get(COUNT, {"q": "gear priority:2"}).content.decode()
    assert f"{(PAGE_SIZE + 5) // 3} jobs" in answer


def test_the_selection_bar_offers_every_match_before_the_count_is_known(
    client_for, editor, gears
) -> None:
    html = client_for(editor).get(LIST, {"q": "gear"}).content.decode()
    assert "Select all jobs matching these filters" in html
    assert 'data-select-matching data-count=""' in html and "None" not in html


def test_other_filters_and_a_single_page_are_counted_at_once(client_for, viewer, gears) -> None:
    client = client_for(viewer)
    html = client.get(LIST, {"status": "pending"}).content.decode()  # more than a page
    assert "counting" not in html and f"{PAGE_SIZE + 5} jobs" in html
    html = client.get(LIST, {"q": "gear 7"}).content.decode()  # Gear 7 and Gear 17..47
    assert "counting" not in html and "5 jobs" in html


def test_the_count_needs_the_view_permission_and_reads_bad_filters(
    client_for, outsider, viewer
) -> None:
    assert client_for(outsider).get(COUNT, {"q": "gear"}).status_code == 403
    answer = client_for(viewer).get(COUNT, {"q": "priority:lots"})
    assert answer.status_code == 200 and "0 jobs" in answer.content.decode()
