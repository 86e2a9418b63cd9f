"""`manage.py jobs`: find, show and export jobs from a shell (docs/cli.md).

    jobs search [--query Q | --filter QUERYSTRING] [--sort S] [--limit N] [--cursor C]
                [--output text|json|jsonl|csv|ids]
    jobs show ID [--output text|json]
    jobs export [--query Q | --filter QUERYSTRING] [--sort S] [--output csv|jsonl]

The filter is the jobs list's: `--filter` takes a list page's query string, `--query` the
search syntax (it goes into `q`). A search prints one page (jobs.paging) and its next cursor;
an export streams every match (jobs.export). Exit 0 ok, 1 no such job (`show`), 2 bad usage
(an unknown filter, a query or cursor that cannot be read); messages on stderr.
"""

import json
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.http import QueryDict

from jobs import export
from jobs.filters import POSITION_PARAMS, JobFilter
from jobs.models import Job, JobEvent
from jobs.paging import (
    DEFAULT_LIMIT,
    DEFAULT_SORT,
    MAX_LIMIT,
    InvalidCursor,
    paginate,
    parse_sort,
    sorted_by,
)
from jobs.templatetags.jobs_tags import change_value

NOT_FOUND = 1
USAGE_ERROR = 2
SEARCH_OUTPUTS = ("text", "json", "jsonl", "csv", "ids")
# The text table: (heading, width, the job's value).
TABLE = [
    ("ID", 8, lambda job: job.pk),
    ("STATUS", 10, lambda job: job.status),
    ("PRI", 3, lambda job: job.priority),
    ("NAME", 36, lambda job: job.name),
    ("CUSTOMER", 20, lambda job: job.customer_name),
    ("PRINTER", 16, lambda job: job.printer or ""),
    ("UPDATED", 16, lambda job: job.updated_at.strftime("%Y-%m-%d %H:%M")),
]


class Command(BaseCommand):
    help = (
        "Find, show and export jobs with the jobs list's filters and search syntax: "
        "`jobs search`, `jobs show ID`, `jobs export` (see docs/cli.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        search = actions.add_parser("search", help="One page of the jobs matching a filter.")
        _filter_options(search)
        search.add_argument(
            "--limit", default=str(DEFAULT_LIMIT), help=f"Jobs per page, 1 to {MAX_LIMIT}."
        )
        search.add_argument("--cursor", help="The next_cursor of the page before.")
        search.add_argument("--output", choices=SEARCH_OUTPUTS, default="text")
        show = actions.add_parser("show", help="One job with its history.")
        show.add_argument("id", help="The job's id.")
        show.add_argument("--output", choices=("text", "json"), default="text")
        export_parser = actions.add_parser(
            "export",
            help="Every job matching a filter, as CSV (the import's columns) or JSON lines.",
        )
        _filter_options(export_parser)
        export_parser.add_argument("--output", choices=("csv", "jsonl"), default="csv")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "show":
                self.show(options)
            elif options["action"] == "search":
                self.search(options)
            else:
                self.export(options)
        except BrokenPipeError:
            # The reader stopped early (`| head`): nothing more to say, and no traceback.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    def search(self, options: dict[str, Any]) -> None:
        filterset, params = _filterset(options)
        cursor = options["cursor"] or params.get("cursor") or None
        try:
            page = paginate(
                filterset.qs.select_related("printer"),
                sort=_sort(options, params),
                cursor=cursor,
                limit=_limit(options["limit"]),
            )
        except InvalidCursor as error:
            raise CommandError(str(error), returncode=USAGE_ERROR) from None
        output = options["output"]
        if output == "json":
            result = {
                "items": [export.job_record(job) for job in page.items],
                "next_cursor": page.next_cursor,
                "prev_cursor": page.prev_cursor,
            }
            self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2))
            return
        if output == "jsonl":
            for job in page.items:
                self.stdout.write(json.dumps(export.job_record(job), ensure_ascii=False))
        elif output == "csv":
            for line in export.csv_lines(page.items):
                self.stdout.write(line, ending="")
        elif output == "ids":
            for job in page.items:
                self.stdout.write(str(job.pk))
        else:
            self.write_table(page.items)
        if page.next_cursor:
            self.stderr.write(f"More jobs: --cursor {page.next_cursor}")

    def export(self, options: dict[str, Any]) -> None:
        filterset, params = _filterset(options)
        jobs = sorted_by(filterset.qs, _sort(options, params))
        writer = RawWriter(self)
        if options["output"] == "csv":
            export.write_csv(jobs, writer)
        else:
            export.write_jsonl(jobs, writer)

    def show(self, options: dict[str, Any]) -> None:
        job_id = options["id"]
        if not (job_id.isascii() and job_id.isdigit() and len(job_id) < 19):
            raise CommandError(f"{job_id!r} is not a job id.", returncode=USAGE_ERROR)
        job = Job.objects.with_related().filter(pk=int(job_id)).first()
        if job is None:
            raise CommandError(f"No job with id {job_id}.", returncode=NOT_FOUND)
        events = list(job.events.select_related("actor").order_by("created_at", "id"))
        if options["output"] == "json":
            record = {**export.job_record(job), "history": [_event_record(e) for e in events]}
            self.stdout.write(json.dumps(record, ensure_ascii=False, indent=2))
            return
        record = export.job_record(job)
        width = max(len(name) for name in record)
        for name, value in record.items():
            shown = "—" if value in (None, "") else value
            self.stdout.write(f"{name:<{width}}  {shown}")
        self.stdout.write("\nHistory:")
        for event in events:
            self.stdout.write(f"  {_event_line(event)}")

    def write_table(self, jobs: list[Job]) -> None:
        if not jobs:
            self.stdout.write("No jobs match.")
            return
        self.stdout.write("  ".join(f"{heading:<{width}}" for heading, width, _ in TABLE).rstrip())
        for job in jobs:
            cells = (_cell(value(job), width) for _, width, value in TABLE)
            self.stdout.write("  ".join(cells).rstrip())


class RawWriter:
    """A text file for jobs.export that writes to the command's stdout as it is."""

    def __init__(self, command: BaseCommand):
        self.stdout = command.stdout

    def write(self, text: str) -> None:
        self.stdout.write(text, ending="")


def _filter_options(parser: CommandParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--query", help='The search syntax, as in the list\'s box: "status:running gear".'
    )
    which.add_argument(
        "--filter", help="A jobs list query string: 'status=running&q=gear&sort=name'."
    )
    parser.add_argument("--sort", help=f"A sort key, - for descending (default {DEFAULT_SORT}).")


def _filterset(options: dict[str, Any]) -> tuple[JobFilter, QueryDict]:
    """The list's filter of --query or --filter; CommandError (2) when it cannot be read."""
    params = QueryDict(options["filter"] or "", mutable=True)
    if options["query"] is not None:
        params["q"] = options["query"]
    unknown = sorted(set(params) - _known_params())
    if unknown:
        raise CommandError(
            f"Unknown filter {', '.join(map(repr, unknown))}: use the jobs list's query "
            f"string parameters ({', '.join(sorted(_known_params()))}).",
            returncode=USAGE_ERROR,
        )
    filters = params.copy()
    for name in POSITION_PARAMS:
        filters.pop(name, None)
    filterset = JobFilter(filters, queryset=Job.objects.all())
    problems = filterset.error_messages
    if problems:
        raise CommandError(
            "The filter cannot be read: " + " ".join(problems), returncode=USAGE_ERROR
        )
    return filterset, params


def _known_params() -> set[str]:
    """The parameters the jobs list reads: its filter fields (a date range is two)."""
    names = set(POSITION_PARAMS)
    for name, field in JobFilter().form.fields.items():
        suffixes = getattr(field.widget, "suffixes", None)
        if suffixes:
            names.update(field.widget.suffixed(name, suffix) for suffix in suffixes)
        else:
            names.add(name)
    return names


def _sort(options: dict[str, Any], params: QueryDict) -> str:
    sort = options["sort"] or params.get("sort") or DEFAULT_SORT
    try:
        parse_sort(sort, Job)
    except ValueError as error:
        raise CommandError(str(error), returncode=USAGE_ERROR) from None
    return sort


def _limit(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
        raise CommandError(
            f"--limit must be a whole number from 1 to {MAX_LIMIT}, not {text!r}.",
            returncode=USAGE_ERROR,
        )
    return int(text)


def _cell(value: Any, width: int) -> str:
    text = str(value)
    return text[: width - 1] + "…" if len(text) > width else f"{text:<{width}}"


def _event_record(event: JobEvent) -> dict[str, Any]:
    return {
        "at": event.created_at.isoformat(),
        "kind": event.kind,
        "actor": event.actor.get_username() if event.actor else None,
        "origin": event.origin,
        "origin_ref": event.origin_ref,
        "changes": event.changes,
    }


def _event_line(event: JobEvent) -> str:
    changes = "; ".join(
        f"{field}: {change_value(old)} → {change_value(new)}"
        for field, (old, new) in event.changes.items()
    )
    origin = f", {event.origin}" if event.origin else ""
    when = event.created_at.strftime("%Y-%m-%d %H:%M")
    return f"{when}  {event.get_kind_display()} by {event.actor_label}{origin}: {changes or '—'}"
