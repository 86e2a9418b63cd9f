from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from jobs.models import Job

PAGE_SIZE = 50


@require_GET
@login_required
@permission_required("jobs.view_job", raise_exception=True)
def job_list(request: HttpRequest) -> TemplateResponse:
    jobs = Job.objects.with_related()
    page = Paginator(jobs, PAGE_SIZE).get_page(request.GET.get("page"))
    return TemplateResponse(request, "jobs/job_list.html", {"page": page})


@require_GET
@login_required
@permission_required("jobs.view_job", raise_exception=True)
def job_detail(request: HttpRequest, pk: int) -> TemplateResponse:
    job = get_object_or_404(Job.objects.with_related(), pk=pk)
    events = job.events.select_related("actor")[:50]
    return TemplateResponse(request, "jobs/job_detail.html", {"job": job, "events": events})
