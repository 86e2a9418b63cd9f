"""Logging filters named in settings.LOGGING."""

import logging

from django.core.exceptions import PermissionDenied


class PermissionDeniedInOneLine(logging.Filter):
    """django.request logs every refused request (403) as a warning with the traceback of the
    PermissionDenied. Nothing went wrong in the code, so it becomes one line: who, which
    request, and the missing permission the view named (PermissionDenied("jobs.change_job"))."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if getattr(record, "status_code", None) != 403 or not isinstance(error, PermissionDenied):
            return True
        request = getattr(record, "request", None)
        user = getattr(request, "user", None)
        username = user.get_username() if user is not None and user.is_authenticated else "-"
        record.msg = "Permission denied: user %s, %s %s, missing %s"
        record.args = (
            username,
            getattr(request, "method", "-"),
            # As Django logs paths: escaped, so a %0A in a URL cannot start a forged line.
            getattr(request, "path", "-").encode("unicode_escape").decode("ascii"),
            str(error) or "a permission the view does not name",
        )
        record.exc_info = None
        record.exc_text = None
        return True
