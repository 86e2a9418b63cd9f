"""The tags the jobs list renders in every row (jobs/templatetags/jobs_tags.py): each job's
links, reversed once per page, and its update time."""

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from jobs.templatetags.jobs_tags import when

ROW_LINKS = Template(
    "{% load jobs_tags %}{% for job in jobs %}{% job_url 'detail' job %} "
    "{% job_url 'edit' job as edit %}{{ edit }} {% job_url 'cancel' job %};{% endfor %}"
)


@pytest.mark.django_db
def test_each_row_links_to_its_own_job() -> None:
    jobs = [Job.objects.create(name=f"Job {n}") for n in range(3)]
    rendered = ROW_LINKS.render(Context({"jobs": jobs}))
    expected = "".join(
        f"{reverse('jobs:detail', args=[job.pk])} {reverse('jobs:edit', args=[job.pk])} "
        f"{reverse('jobs:cancel', args=[job.pk])};"
        for job in jobs
    )
    assert rendered == expected


@override_settings(TIME_ZONE="Europe/Berlin")
def test_when_reads_as_an_age_with_the_local_time_as_title() -> None:
    moment = timezone.now() - timedelta(hours=3)
    html = str(when(moment))
    assert html.startswith(f'<time datetime="{moment.isoformat()}"')
    assert "3\xa0hours ago" in html
    assert f'title="{timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")} CE' in html


@override_settings(TIME_ZONE="Europe/Berlin")
def test_when_reads_as_the_local_date_after_a_week() -> None:
    moment = timezone.now() - timedelta(days=8)
    html = str(when(moment))
    local = timezone.localtime(moment)
    assert f">{local.strftime('%Y-%m-%d')}</time>" in html
    assert "ago" not in html
    assert "6\xa0days ago" in str(when(timezone.now() - timedelta(days=6)))


def test_when_of_nothing_is_a_dash() -> None:
    assert when(None) == "—"
