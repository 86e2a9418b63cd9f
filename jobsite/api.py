"""The JSON API v1 (docs/api.md): one NinjaAPI object assembling the apps' routers, token and
session authentication, a per-token rate limit, and every error as application/problem+json
(RFC 9457) with a machine-readable `code`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache, wraps
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.http.request import RawPostDataException
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.security import HttpBearer, django_auth
from ninja.throttling import AuthRateThrottle

from jobs.api import PROBLEM_TYPE, ApiError, problem
from jobsite.models import ApiToken

logger = logging.getLogger(__name__)


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`. A wrong, expired or revoked token is refused even
    when a session cookie is sent too."""

    def __call__(self, request: HttpRequest) -> ApiToken | None:
        header = request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError(401, "Send the token as: Authorization: Bearer <token>.")
        return self.authenticate(request, secret.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        found = ApiToken.authenticate(token)
        if found is None:
            raise ApiError(401, "The token is unknown, expired or revoked.")
        request.user = found.user
        _load_permissions(found.user)
        return found


def _load_permissions(user: Any) -> None:
    """The user's permissions, its own and its groups', in one query instead of ModelBackend's
    two, read into the cache ModelBackend keeps on the user object, which `has_perm` then
    reads. Every request authenticates a fresh user object, so a changed permission applies
    at the next request. A superuser holds every permission without a query."""
    if user.is_superuser:
        return
    with connection.cursor() as cursor:
        cursor.execute(_permissions_sql(), [user.pk, user.pk])
        user._perm_cache = {f"{app_label}.{codename}" for app_label, codename in cursor}


@cache
def _permissions_sql() -> str:
    # Written once as SQL: the ORM's query building cost more than both of its queries.
    user_model = get_user_model()
    user_permissions = user_model.user_permissions.through._meta
    user_groups = user_model.groups.through._meta
    group_permissions = Group.permissions.through._meta
    user_field = user_model._meta.model_name  # the user's column in both link tables

    def name(meta: Any, field: str | None = None) -> str:
        return connection.ops.quote_name(meta.get_field(field).column if field else meta.db_table)

    permission, content_type = Permission._meta, ContentType._meta
    return (
        f"SELECT ct.{name(content_type, 'app_label')}, p.{name(permission, 'codename')} "
        f"FROM {name(permission)} p JOIN {name(content_type)} ct "
        f"ON p.{name(permission, 'content_type')} = ct.{name(content_type, 'id')} "
        f"WHERE p.{name(permission, 'id')} IN ("
        f"SELECT {name(user_permissions, 'permission')} FROM {name(user_permissions)} "
        f"WHERE {name(user_permissions, user_field)} = %s) "
        f"OR p.{name(permission, 'id')} IN ("
        f"SELECT gp.{name(group_permissions, 'permission')} FROM {name(group_permissions)} gp "
        f"JOIN {name(user_groups)} ug "
        f"ON gp.{name(group_permissions, 'group')} = ug.{name(user_groups, 'group')} "
        f"WHERE ug.{name(user_groups, user_field)} = %s)"
    )


class TokenRateThrottle(AuthRateThrottle):
    """Requests per token (per user for a session) and period: API_RATE_LIMIT, read at each
    request so tests and deployments can change it."""

    def __init__(self) -> None:
        super().__init__(rate=settings.API_RATE_LIMIT)

    def allow_request(self, request: HttpRequest) -> bool:
        self.rate = settings.API_RATE_LIMIT
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request)
        except Exception:
            # The limit protects the service; an unreachable cache must not take it down.
            logger.warning("API rate limit not checked: the cache failed", exc_info=True)
            return True

    def get_cache_key(self, request: HttpRequest) -> str:
        auth = getattr(request, "auth", None)
        ident = f"token-{auth.pk}" if isinstance(auth, ApiToken) else f"user-{request.user.pk}"
        return self.cache_format % {"scope": "api", "ident": ident}


class JobsiteAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs: Any) -> Any:
        """Error answers are application/problem+json, as they are sent."""
        schema = super().get_openapi_schema(**kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content")
                    if content and "text/csv" in content:  # a download declares only its type
                        content.pop("application/json", None)
                    if int(status) >= 400 and content and "application/json" in content:
                        answer["content"] = {PROBLEM_TYPE: content.pop("application/json")}
        return schema

    @property
    def urls(self) -> Any:
        """Each view wrapped so a wrong method is a problem too (ninja answers a plain 405)."""
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            pattern.callback = _problem_405(pattern.callback)
        # Any other path under the API (an unknown one, a negative id) is a 404 problem too.
        patterns.append(re_path(r"", _not_found_path, name="not-found"))
        return patterns, app_name, namespace


@csrf_exempt
def _not_found_path(request: HttpRequest) -> HttpResponse:
    return problem(ApiError(404, f"There is no {request.path} in this API (docs/api.md)."))


def _problem_405(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            allowed = response["Allow"]
            answer = problem(ApiError(405, f"{request.method} is not allowed here; use {allowed}."))
            answer["Allow"] = allowed
            return answer
        return response

    return wrapped


api = JobsiteAPI(
    title="Jobsite API",
    version="1.0.0",
    description="Jobs, bulk status changes and CSV imports for programs (docs/api.md).",
    auth=[TokenAuth(), django_auth],
    throttle=[TokenRateThrottle()],
    urls_namespace="api",
)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, error: ApiError) -> HttpResponse:
    return problem(error)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return problem(ApiError(401, "Send a token: Authorization: Bearer <token>."))


def _with_bearer_challenge(response: HttpResponse) -> HttpResponse:
    if response.status_code == 401:
        response["WWW-Authenticate"] = 'Bearer realm="jobsite"'
    return response


@api.exception_handler(Throttled)
def _throttled(request: HttpRequest, error: Throttled) -> HttpResponse:
    wait = max(int(error.wait or 1), 1)
    return problem(
        ApiError(
            429,
            f"Too many requests for this token; try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    )


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, error: ValidationError) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    for item in error.errors:
        # ("query", "limit"), ("body", "payload", "name"), ("file", "file"): the source, then
        # the parameter, then the field inside it, if any.
        location = [str(part) for part in item.get("loc", ())][1:]
        field = ".".join(location[1:] if len(location) > 1 else location)
        if field == "payload":  # the body as a whole
            field = "body"
        errors.setdefault(field or "body", []).append(str(item.get("msg", "Invalid.")))
    listed = ", ".join(errors)
    return problem(ApiError(422, f"Invalid value in: {listed}.", errors=errors))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return problem(ApiError(404, str(error) or "Not found."))


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, error: PermissionDenied) -> HttpResponse:
    return problem(ApiError(403, "You do not have the permission for this."))


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, error: RequestDataTooBig) -> HttpResponse:
    return problem(ApiError(413, "The request body is too large."))


@api.exception_handler(RawPostDataException)
def _unreadable(request: HttpRequest, error: RawPostDataException) -> HttpResponse:
    return problem(ApiError(400, "The request body could not be read."))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    status = error.status_code
    detail = str(error)
    if status == 403 and "CSRF" in detail:
        detail = "CSRF check failed: a session needs the X-CSRFToken header (or use a token)."
    return problem(ApiError(status, detail))


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, error: Exception) -> HttpResponse:
    logger.exception("API: unexpected error on %s %s", request.method, request.path)
    return problem(ApiError(500, "Something went wrong on the server. Nothing was changed."))


# A 401 always carries the Bearer challenge, whichever handler wrote it.
for _exception_type, _handler in list(api._exception_handlers.items()):
    api._exception_handlers[_exception_type] = lambda request, error, _handler=_handler: (
        _with_bearer_challenge(_handler(request, error))
    )

api.add_router("/jobs", "jobs.api.router")
api.add_router("/imports", "imports.api.router")
api.add_router("/bulk-runs", "jobs.bulk_runs_api.router")
