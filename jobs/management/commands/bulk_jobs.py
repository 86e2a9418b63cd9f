"""`manage.py bulk_jobs --filter QUERYSTRING ACTION`: a bulk run for scripts
(docs/bulk-runs.md, "The command").

Enqueues the run on the cluster and prints it (JSON by default, with its id); `--wait`
follows it to the end. Exit 0 finished with every selected job changed, 3 finished with
skipped jobs, 1 failed or cancelled, 2 bad usage (unreadable filter, bad value, unknown user).
"""

import json
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.bulk_runs import BulkRunRefused, draft_bulk_run, run_as_json, start_bulk_run
from jobs.cli import user_from_option
from jobs.models import BulkAction, BulkRun, JobEvent
from jobs.runs import RunStatus

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SKIPPED = 0, 1, 2, 3
POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = (
        "Apply one action to every job matching a filter (the jobs list's query string), as a "
        "bulk run on the cluster. Prints the run; --wait follows it to the end. Exit 0 every "
        "job changed, 3 finished with skips, 1 failed or cancelled, 2 bad usage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--filter",
            required=True,
            metavar="QUERYSTRING",
            help="The jobs list's query string, e.g. 'status=failed&q=printer:\"Prusa 1\"' "
            "('' selects every job).",
        )
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--set-status", metavar="S", help="Set this status (status rules).")
        action.add_argument("--cancel", action="store_true", help="Cancel the jobs.")
        action.add_argument("--set-priority", metavar="N", help="Set this priority (0-10).")
        action.add_argument("--set-printer", metavar="NAME", help="Assign this active printer.")
        action.add_argument(
            "--retry-failed", action="store_true", help="Move failed jobs back to pending."
        )
        parser.add_argument("--reason", default="", help="The reason recorded with --cancel.")
        parser.add_argument("--user", help="Username recorded as the run's author.")
        parser.add_argument("--wait", action="store_true", help="Follow the run to its end.")
        parser.add_argument("--output", choices=("text", "json"), default="json")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_from_option(options["user"], returncode=EXIT_USAGE)
        if options["reason"] and not options["cancel"]:
            raise CommandError("--reason goes with --cancel.", returncode=EXIT_USAGE)
        request: dict[str, Any]
        if options["set_status"] is not None:
            request = {"action": BulkAction.SET_STATUS, "status": options["set_status"]}
        elif options["cancel"]:
            request = {"action": BulkAction.CANCEL, "reason": options["reason"]}
        elif options["set_priority"] is not None:
            request = {"action": BulkAction.SET_PRIORITY, "priority": options["set_priority"]}
        elif options["set_printer"] is not None:
            request = {"action": BulkAction.SET_PRINTER, "printer": options["set_printer"]}
        else:
            request = {"action": BulkAction.RETRY_FAILED}
        try:
            run = draft_bulk_run(
                actor=user, origin=JobEvent.Origin.CLI, query=options["filter"], **request
            )
        except BulkRunRefused as refused:
            raise CommandError(str(refused), returncode=EXIT_USAGE) from None
        start_bulk_run(run)
        if options["wait"]:
            self.follow(run)
        run.refresh_from_db()
        if options["output"] == "json":
            self.stdout.write(json.dumps(run_as_json(run), indent=2))
        else:
            self.stdout.write(result_text(run))
        if options["wait"] and (code := exit_code(run)):
            sys.exit(code)

    def follow(self, run: BulkRun) -> None:
        """Poll the run until it ends, a progress line on stderr whenever the count moves."""
        last = None
        while True:
            run.refresh_from_db()
            line = progress_line(run)
            if line != last:
                self.stderr.write(line)
                last = line
            if run.is_finished:
                return
            time.sleep(POLL_SECONDS)


def progress_line(run: BulkRun) -> str:
    total = "?" if run.total_count is None else f"{run.total_count:,}"
    parts = [f"{run.progress_percent:3d}%", run.status, f"{run.processed_count:,}/{total} jobs"]
    if run.skipped_count:
        parts.append(f"{run.skipped_count:,} skipped")
    return "  ".join(parts)


def exit_code(run: BulkRun) -> int:
    if run.status == RunStatus.COMPLETED:
        return EXIT_SKIPPED if run.skipped_count else EXIT_OK
    return EXIT_FAILED


def result_text(run: BulkRun) -> str:
    lines = [f"Bulk run {run.pk}: {run.status} ({run.action_label})"]
    if run.total_count is not None:
        lines.append(
            f"{run.total_count:,} selected, {run.processed_count:,} done: "
            f"{run.changed_count:,} changed, {run.skipped_count:,} skipped."
        )
    for reason, count in sorted(run.skip_counts.items(), key=lambda item: -item[1]):
        lines.append(f"  {count:,} skipped: {reason}")
    if run.failure_message:
        lines.append(run.failure_message)
    return "\n".join(lines)
