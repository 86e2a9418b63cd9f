"""Prometheus metrics at `/metrics` (being built)."""

from django.http import Http404, HttpRequest, HttpResponse


def metrics(request: HttpRequest) -> HttpResponse:
    raise Http404("Metrics are not available yet.")
