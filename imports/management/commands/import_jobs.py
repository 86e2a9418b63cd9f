"""`manage.py import_jobs FILE`: the CSV import for scripts (docs/csv-import.md).

Default: checks the file, enqueues the import on the cluster and prints its id. `--wait`
follows it to the end with a progress bar; `--sync` runs it in this process through the same
code as the cluster. Exit 0 completed without row errors, 3 completed with row errors,
1 failed or cancelled, 2 bad usage or rejected file, 4 duplicate file refused (see --force).
"""

import json
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from imports import intake
from imports.importer import run_import
from imports.models import ImportJob, ImportStatus, OnError, OnExisting
from jobs.cli import user_from_option

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ROW_ERRORS, EXIT_DUPLICATE = 0, 1, 2, 3, 4
# --sync at the user's limit of running imports: not run here, the cluster starts it later.
EXIT_WAITING = 5
JSON_ERRORS = 100
POLL_SECONDS = 0.5
BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Import jobs from a CSV file. Enqueues the import on the cluster and prints its id; "
        "--wait follows it to the end, --sync runs it here. Exit 0 completed, 3 completed with "
        "row errors, 1 failed or cancelled, 2 bad usage or rejected file, 4 duplicate file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help="The CSV file to import.")
        parser.add_argument("--user", help="Username recorded as the uploader (default: none).")
        parser.add_argument("--on-error", choices=OnError.values, default=OnError.SKIP)
        parser.add_argument("--on-existing", choices=OnExisting.values, default=OnExisting.UPDATE)
        parser.add_argument(
            "--force", action="store_true", help="Import even if this file was imported before."
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--sync", action="store_true", help="Run the import in this process.")
        mode.add_argument(
            "--wait", action="store_true", help="Enqueue, then follow progress to the end."
        )
        parser.add_argument("--output", choices=("text", "json"), default="text")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_from_option(options["user"], returncode=EXIT_USAGE)
        path = Path(options["file"])
        try:
            file = path.open("rb")
        except OSError as exc:
            raise CommandError(
                f"Cannot read {path}: {exc.strerror or 'unreadable'}.", returncode=EXIT_USAGE
            ) from None
        with file:
            try:
                info = intake.inspect_upload(file)
            except intake.UploadRejected as rejected:
                raise CommandError(f"{path.name}: {rejected}", returncode=EXIT_USAGE) from None
            earlier = intake.find_duplicate(info.file_hash)
            if earlier is not None and not options["force"]:
                raise CommandError(duplicate_message(earlier), returncode=EXIT_DUPLICATE)
            import_job = intake.create_import(
                file,
                info,
                user=user,
                on_error=options["on_error"],
                on_existing=options["on_existing"],
                enqueue=not options["sync"],
            )
        for warning in info.warnings:
            self.stderr.write(f"Warning: {warning}")
        if options["sync"]:
            run_import(import_job.pk)
        elif options["wait"]:
            self.follow(import_job)
        else:
            import_job.refresh_from_db()
            if options["output"] == "json":
                self.stdout.write(json.dumps(result_json(import_job), indent=2))
            else:
                self.stdout.write(str(import_job.pk))
            return
        import_job.refresh_from_db()
        if options["output"] == "json":
            self.stdout.write(json.dumps(result_json(import_job), indent=2))
        else:
            self.stdout.write(result_text(import_job))
        code = exit_code(import_job)
        if code:
            sys.exit(code)

    def follow(self, import_job: ImportJob) -> None:
        """Poll the import row until it ends, drawing a progress bar on a terminal."""
        tty = self.stderr.isatty()
        last_line = ""
        while True:
            import_job.refresh_from_db()
            line = progress_line(import_job)
            if tty:
                self.stderr.write("\r" + line.ljust(len(last_line)), ending="")
                self.stderr.flush()
            elif line.split("  ")[0] != last_line.split("  ")[0]:
                self.stderr.write(line)
            last_line = line
            if import_job.is_finished:
                break
            time.sleep(POLL_SECONDS)
        if tty:
            self.stderr.write("")


def progress_line(import_job: ImportJob) -> str:
    percent = import_job.progress_percent
    filled = BAR_WIDTH * percent // 100
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    total = import_job.expected_rows
    approx = "" if import_job.total_rows is not None else "~"
    parts = [
        f"[{bar}] {percent:3d}%",
        f"{import_job.get_status_display()}",
        f"{import_job.processed_rows:,}/{approx}{total:,} rows",
    ]
    if import_job.rows_per_second:
        parts.append(f"{import_job.rows_per_second:,.0f} rows/s")
    if import_job.eta_seconds is not None:
        parts.append(f"ETA {int(import_job.eta_seconds)} s")
    if import_job.error_count:
        parts.append(f"{import_job.error_count:,} errors")
    return "  ".join(parts)


def duplicate_message(earlier: ImportJob) -> str:
    who = earlier.created_by.get_username() if earlier.created_by else "a script"
    when = timezone.localtime(earlier.created_at).strftime("%Y-%m-%d %H:%M")
    return (
        f"This file was already imported on {when} by {who} (import {earlier.pk}, "
        f"{earlier.status}). Use --force to import it anyway."
    )


def exit_code(import_job: ImportJob) -> int:
    if import_job.status == ImportStatus.PENDING and import_job.waiting_reason:
        return EXIT_WAITING
    if import_job.status == ImportStatus.COMPLETED:
        return EXIT_ROW_ERRORS if import_job.error_count else EXIT_OK
    return EXIT_FAILED


def result_json(import_job: ImportJob) -> dict[str, Any]:
    errors = import_job.errors.order_by("row", "id")[:JSON_ERRORS]
    return {
        "id": str(import_job.pk),
        "status": import_job.status,
        "total_rows": import_job.total_rows,
        "processed_rows": import_job.processed_rows,
        "created_count": import_job.created_count,
        "updated_count": import_job.updated_count,
        "skipped_count": import_job.skipped_count,
        "error_count": import_job.error_count,
        "errors": [
            {
                "row": error.row,
                "field": error.field,
                "error_type": error.error_type,
                "message": error.message,
            }
            for error in errors
        ],
        "waiting_reason": import_job.waiting_reason,
        "failure_message": import_job.failure_message,
        "warnings": import_job.warnings,
    }


def result_text(import_job: ImportJob) -> str:
    lines = [
        f"Import {import_job.pk}: {import_job.status}",
        f"{import_job.processed_rows:,} rows: {import_job.created_count:,} created, "
        f"{import_job.updated_count:,} updated, {import_job.skipped_count:,} skipped, "
        f"{import_job.error_count:,} with errors.",
    ]
    if import_job.failure_message:
        lines.append(import_job.failure_message)
    if import_job.status == ImportStatus.PENDING and import_job.waiting_reason:
        lines.append(
            f"Not run here: {import_job.waiting_reason} The cluster starts it then "
            '(docs/csv-import.md, "Limits").'
        )
    if import_job.status == ImportStatus.CANCELLED:
        lines.append(f"Cancelled; the {import_job.processed_rows:,} rows processed before stay.")
    for error in import_job.errors.order_by("row", "id")[:20]:
        field = f" {error.field}" if error.field else ""
        lines.append(f"  row {error.row}{field}: {error.message}")
    if import_job.error_count > 20:
        lines.append(f"  … see the import page for all {import_job.error_count:,} errors.")
    return "\n".join(lines)
