from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from imports.retention import cleanup_imports


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise CommandError(f"--days must be a whole number, not {value!r}.") from None
    if days < 0:
        raise CommandError(f"--days must be 0 or more, not {days}.")
    return days


class Command(BaseCommand):
    help = (
        "Delete finished imports (with their error records, events and stored files) whose "
        "completed_at is older than the retention period, and orphaned import files. "
        "Jobs are never deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=str,
            default=None,
            help=f"Retention in days (default: {settings.IMPORT_RETENTION_DAYS}).",
        )
        parser.add_argument(
            "--include-failed",
            action="store_true",
            default=None,
            help="Delete failed imports too (default: IMPORT_RETENTION_KEEP_FAILED keeps them).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be deleted; delete nothing."
        )

    def handle(
        self,
        *args: Any,
        days: str | None,
        include_failed: bool | None,
        dry_run: bool,
        **options: Any,
    ) -> None:
        result = cleanup_imports(
            days=None if days is None else _days(days),
            include_failed=include_failed,
            dry_run=dry_run,
            actor="cli",
        )
        failed = "included" if result.include_failed else "kept"
        self.stdout.write(
            f"{'Dry run: nothing deleted. ' if dry_run else ''}"
            f"Retention {result.days} days (completed before {result.cutoff:%Y-%m-%d %H:%M} UTC), "
            f"failed imports {failed}."
        )
        self.stdout.write(f"Imports:        {result.imports}")
        self.stdout.write(f"Error records:  {result.error_records}")
        self.stdout.write(f"Events:         {result.events}")
        self.stdout.write(f"Stored files:   {result.files}")
        self.stdout.write(f"Orphaned files: {result.orphan_files}")
        self.stdout.write(f"Held uploads:   {result.held_uploads}")
        self.stdout.write(f"Jobs detached (kept): {result.jobs_detached}")
        if result.oldest_completed_at:
            self.stdout.write(f"Oldest completed: {result.oldest_completed_at:%Y-%m-%d %H:%M} UTC")
            self.stdout.write(f"Newest completed: {result.newest_completed_at:%Y-%m-%d %H:%M} UTC")
        else:
            self.stdout.write("Nothing to delete." if not dry_run else "Nothing would be deleted.")
