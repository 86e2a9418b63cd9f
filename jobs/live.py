"""Live pages: the polls that keep an open jobs list, job page and edit dialog up to date, and
the notices of finished runs ("toasts"). static/js/live.js drives them (docs/live.md).

The change token. Every write of a job writes a JobEvent, and every status change of a run the
live pages follow (jobs.runs.follow_runs: bulk runs, and imports, which the imports app
registers) writes its run event, so the newest id of each of those tables says whether anything
changed: the token is those ids, `<job event>.<run event>.<run event>` (`0` for an empty
table), read in ONE query of `MAX(id)`s, each answered by the primary key's index alone. A page
carries the token it was rendered with (`data-live-token` on `<body>`); a poll sends it back.

The idle poll: `GET /jobs/live/?since=<token>&jobs=<id>:<version>,…&query=<list query string>`
(the jobs list) or `GET /jobs/<id>/live/?since=<token>&version=<n>&view=detail|edit` (a job's
page or its edit dialog). When nothing changed since `since`, it runs that one query (beside
the session and permission look-ups of any logged-in request) and answers `204 No Content`
with an empty body. Otherwise `200` with JSON: the new `token` and what changed (see each
view). Bad parameters answer `400` with `{"error": "<what is wrong>"}`.

A poll that finds a change also brings the toasts of the user's finished runs (jobs.toasts).
"""

import re

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobs.filters import JobFilter
from jobs.models import Job, JobEvent
from jobs.runs import FOLLOWED_RUNS
from jobs.toasts import announcements
from jobs.views import PAGE_SIZE, filter_params, permission_required

# New jobs are counted up to this many; more read as "1,000+".
NEW_JOBS_CAP = 1000
# A poll names at most this many rows (a page holds PAGE_SIZE; room for a page grown by swaps).
MAX_ROWS = 4 * PAGE_SIZE
# The edit dialog's notice lists at most this many of the changes made meanwhile.
NOTICE_CHANGES = 5

TOKEN_PART = re.compile(r"\d{1,19}")
JOB_VERSION_PATTERN = re.compile(r"(\d{1,19}):(\d{1,10})")


class BadPoll(ValueError):
    """A poll's parameter that cannot be read: answered 400 with this message."""


def change_token() -> str:
    """The newest id of each event table, `<job event>.<run event>…` (the followed runs'
    events in the order they were registered): one query, a primary-key look-up each."""
    models = [JobEvent, *(kind.event_model for kind in FOLLOWED_RUNS)]
    tables = [model._meta.db_table for model in models]
    quote = connection.ops.quote_name
    sql = "SELECT " + ", ".join(f"(SELECT MAX(id) FROM {quote(table)})" for table in tables)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    return ".".join(str(value or 0) for value in row)


def parse_token(raw: str, name: str = "since") -> str:
    parts, count = raw.split("."), 1 + len(FOLLOWED_RUNS)
    if len(parts) != count or not all(map(TOKEN_PART.fullmatch, parts)):
        example = ".".join(["12"] + ["0"] * (count - 1))
        raise BadPoll(
            f"'{name}' must be the change token the page was given ({count} numbers joined"
            f" by dots, such as {example}), not {raw[:40]!r}."
        )
    return raw


def job_event_id(token: str) -> int:
    """The newest job event id a token names."""
    return int(token.split(".", 1)[0])


def parse_versions(raw: str) -> dict[int, int]:
    """`12:3,15:7` (rows of a page: job id and the version shown) as {12: 3, 15: 7}."""
    versions: dict[int, int] = {}
    for part in filter(None, raw.split(",")):
        match = JOB_VERSION_PATTERN.fullmatch(part)
        if match is None:
            raise BadPoll(
                f"'jobs' lists id:version pairs such as 12:3,15:7; {part[:40]!r} is not one."
            )
        versions[int(match[1])] = int(match[2])
    if len(versions) > MAX_ROWS:
        raise BadPoll(f"'jobs' names at most {MAX_ROWS} rows, not {len(versions)}.")
    return versions


def bad_poll(error: BadPoll) -> JsonResponse:
    return JsonResponse({"error": str(error)}, status=400)


def idle() -> HttpResponse:
    return HttpResponse(status=204)


@never_cache
@require_GET
@login_required
@permission_required("jobs.view_job")
def jobs_list_poll(request: HttpRequest) -> HttpResponse:
    """The open jobs list's poll. Parameters: `since` (the token of the last answer, or the
    page's), `base` (the token of the moment the table was shown: new jobs are those created
    after it; default `since`), `jobs` (the page's rows as id:version) and `query` (the list's
    query string: filters, search, sort).

    Answers 204 when nothing changed, else `{"token", "rows": {id: the row's new HTML}, "gone":
    [ids of rows whose job no longer exists], "new": count, "new_label", "toasts"}`. Rows are
    only those the page has open; the new jobs match the list's filter and are not on the page.
    """
    try:
        since = parse_token(request.GET.get("since", ""))
        base = parse_token(request.GET.get("base") or since, "base")
        shown = parse_versions(request.GET.get("jobs", ""))
    except BadPoll as error:
        return bad_poll(error)
    token = change_token()
    if token == since:
        return idle()
    current = dict(Job.objects.filter(pk__in=shown).values_list("pk", "version"))
    changed = [pk for pk, version in current.items() if shown[pk] != version]
    jobs = Job.objects.for_list().filter(pk__in=changed)
    rows = {
        str(job.pk): render_to_string("jobs/job_list.html#row", {"job": job}, request=request)
        for job in jobs
    }
    new = count_new_jobs(QueryDict(request.GET.get("query", "")), job_event_id(base), shown)
    return JsonResponse(
        {
            "token": token,
            "rows": rows,
            "gone": sorted(pk for pk in shown if pk not in current),
            "new": new,
            "new_label": new_jobs_label(new),
            "toasts": announcements(request),
        }
    )


def count_new_jobs(params: QueryDict, after_event: int, shown: dict[int, int]) -> int:
    """Jobs created after the job event `after_event` that the list's filter (`params`, its
    query string) selects and the page does not show, counted up to NEW_JOBS_CAP + 1."""
    created = JobEvent.objects.filter(
        pk__gt=after_event, kind__in=[JobEvent.Kind.CREATED, JobEvent.Kind.IMPORTED]
    ).values("job_id")
    filterset = JobFilter(filter_params(params), queryset=Job.objects.all())
    jobs = filterset.qs.filter(pk__in=created).exclude(pk__in=list(shown))
    return jobs.order_by().values("pk")[: NEW_JOBS_CAP + 1].count()


def new_jobs_label(count: int) -> str:
    if count > NEW_JOBS_CAP:
        return f"{NEW_JOBS_CAP:,}+ new jobs"
    return f"{count} new job{pluralize(count)}" if count else ""


@never_cache
@require_GET
@login_required
@permission_required("jobs.view_job")
def job_poll(request: HttpRequest, pk: int) -> HttpResponse:
    """A job's page (`view=detail`) or its edit dialog (`view=edit`), showing `version`.

    Answers 204 when nothing changed, else `{"token", "version", "html", "toasts"}`: `html`
    is "" while the job is still at `version`; otherwise the page's live section
    (jobs/job_detail.html#live) or the dialog's notice of the changes made meanwhile.
    """
    try:
        since = parse_token(request.GET.get("since", ""))
        version = parse_version(request.GET.get("version", ""))
        view = request.GET.get("view", "")
        if view not in ("detail", "edit"):
            raise BadPoll(f"'view' is detail or edit, not {view[:40]!r}.")
    except BadPoll as error:
        return bad_poll(error)
    token = change_token()
    if token == since:
        return idle()
    job = get_object_or_404(Job.objects.with_related(), pk=pk)
    html = ""
    if job.version != version:
        html = detail_html(request, job) if view == "detail" else notice_html(request, job, version)
    return JsonResponse(
        {"token": token, "version": job.version, "html": html, "toasts": announcements(request)}
    )


def parse_version(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 10:
        raise BadPoll(f"'version' is the version the page shows (a number), not {raw[:40]!r}.")
    return int(raw)


def detail_html(request: HttpRequest, job: Job) -> str:
    events = job.events.select_related("actor")[:50]
    return render_to_string(
        "jobs/job_detail.html#live", {"job": job, "events": events}, request=request
    )


def notice_html(request: HttpRequest, job: Job, version: int) -> str:
    """Who changed the job since `version` and when, with what they changed (each version
    past it is one event, newest first)."""
    since_count = max(job.version - version, 1)
    events = list(job.events.select_related("actor")[: min(since_count, NOTICE_CHANGES)])
    context = {"job": job, "events": events, "more": since_count - len(events)}
    return render_to_string("jobs/_live_changed.html", context, request=request)
