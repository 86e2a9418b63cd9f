"""The dashboard at `/` (being built: for now it sends people to the jobs list)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


def dashboard(request: HttpRequest) -> HttpResponse:
    return redirect("jobs:list")
