"""`manage.py cancel_import ID [--reason R]` (docs/csv-import.md, "Command exit codes").

Exit 0 when the import was cancelled or a cancel was requested from its worker, 1 when it
cannot be cancelled (already finished, or no such import), 2 when ID is not an import id.
"""

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from imports.models import ImportJob, ImportNotCancellable, ImportStatus


class Command(BaseCommand):
    help = "Cancel an import: a pending one at once, a running one at its next batch boundary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", metavar="ID", help="The import id (a UUID).")
        parser.add_argument("--reason", default="", help="Why (shown on the import page).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            import_id = uuid.UUID(options["id"].strip())
        except ValueError:
            raise CommandError(
                f"{options['id']!r} is not an import id (expected a UUID such as "
                "3f2b8c1e-…, as import_jobs prints).",
                returncode=2,
            ) from None
        import_job = ImportJob.objects.filter(pk=import_id).first()
        if import_job is None:
            raise CommandError(f"There is no import {import_id}.", returncode=1)
        try:
            import_job.request_cancel(actor=None, reason=options["reason"])
        except ImportNotCancellable as refused:
            raise CommandError(str(refused), returncode=1) from None
        if import_job.status == ImportStatus.CANCELLED:
            self.stdout.write(
                f"Import {import_id} cancelled ({import_job.processed_rows:,} rows were "
                "processed before and stay)."
            )
        else:
            self.stdout.write(
                f"Cancel requested for import {import_id}: its worker stops after the current "
                f"batch ({import_job.processed_rows:,} rows processed so far)."
            )
