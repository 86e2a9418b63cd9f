"""Login throttling on top of django-axes (settings: "Login throttling").

Axes counts failed logins per username and address and locks that pair at AXES_FAILURE_LIMIT.
It has one limit for all its lockout parameters, so the second, address-wide limit
(LOGIN_FAILURES_PER_ADDRESS failures across all usernames) is added here.
"""

from datetime import timedelta
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class LoginThrottleHandler(AxesDatabaseHandler):
    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        """Failures of this username from this address; at least the limit once the address
        as a whole has failed LOGIN_FAILURES_PER_ADDRESS times, so every username is locked."""
        failures = super().get_failures(request, credentials)
        if address_failures(request) >= settings.LOGIN_FAILURES_PER_ADDRESS:
            return max(failures, get_failure_limit(request, credentials))
        return failures


def address_failures(request: HttpRequest) -> int:
    """Failed logins from the request's address, any username, within the cool-off time."""
    attempts = AccessAttempt.objects.filter(
        ip_address=request.axes_ip_address,
        attempt_time__gte=get_cool_off_threshold(request),
    )
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any
) -> HttpResponse:
    """The page a locked-out login gets (429), instead of axes's one line of text."""
    cool_off = get_cool_off(request) or timedelta()
    context = {
        "username": get_client_username(request, credentials) or "",
        "minutes": max(1, round(cool_off.total_seconds() / 60)),
    }
    return render(request, "registration/locked_out.html", context, status=429)
