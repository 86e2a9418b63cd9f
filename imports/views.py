from uuid import UUID

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from imports.models import ImportJob


@require_GET
@login_required
@permission_required("imports.view_importjob", raise_exception=True)
def import_list(request: HttpRequest) -> TemplateResponse:
    imports = ImportJob.objects.select_related("created_by")[:50]
    return TemplateResponse(request, "imports/import_list.html", {"imports": imports})


@require_GET
@login_required
@permission_required("imports.view_importjob", raise_exception=True)
def import_detail(request: HttpRequest, pk: UUID) -> TemplateResponse:
    import_job = get_object_or_404(ImportJob, pk=pk)
    return TemplateResponse(request, "imports/import_detail.html", {"import_job": import_job})
