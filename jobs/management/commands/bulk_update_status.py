"""`manage.py bulk_update_status`: the bulk status change of docs/bulk-status.md, for scripts.

Input is the JSON list of `{"id", "status"}` from --file, stdin, or `--ids 1,2 --status S`;
`--ids -` reads the ids from stdin, one a line or separated by spaces or commas, so that
`manage.py jobs search ... --output ids | manage.py bulk_update_status --ids - --status S`
changes the jobs a search found (at most 100, all or nothing).
Prints the response JSON. Exit 0 success, 1 failure (including input that is not
JSON), 2 bad usage (conflicting options, unknown user, unreadable file).
"""

import json
import sys
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.bulk import MAX_ITEMS, VALIDATION_ERROR, bulk_update_status
from jobs.cli import user_from_option
from jobs.models import JobEvent

USAGE_ERROR = 2


class UnreadableInput(Exception):
    """The input could not be decoded; answered as a VALIDATION_ERROR."""


class Command(BaseCommand):
    help = (
        "Set the status of up to 100 jobs, all or nothing. Reads a JSON list of "
        '{"id": 1, "status": "completed"} objects from --file or stdin, or takes '
        "--ids 1,2,3 --status completed. Prints the result JSON; exit 0 on success, 1 on failure."
    )
    # Tests pass a text stream as stdin through call_command.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", help="JSON file to read ('-' for stdin; default stdin).")
        parser.add_argument(
            "--ids",
            help="Comma-separated job ids, used with --status; '-' reads them from stdin "
            "(one a line, or separated by spaces or commas).",
        )
        parser.add_argument("--status", help="The status to set on every job given by --ids.")
        parser.add_argument("--user", help="Username recorded as the actor (default: system).")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = user_from_option(options["user"], returncode=USAGE_ERROR)
        try:
            items = self.read_items(options)
        except UnreadableInput as refused:
            response = {
                "error": {"code": VALIDATION_ERROR, "message": str(refused), "retryable": False}
            }
        else:
            response = bulk_update_status(items, actor=actor, origin=JobEvent.Origin.CLI)
        self.stdout.write(json.dumps(response, indent=2))
        if "error" in response or response["failed_count"]:
            sys.exit(1)

    def read_stdin_ids(self, options: dict[str, Any]) -> str:
        """The ids piped on stdin, as one comma-separated string."""
        stream = options.get("stdin") or sys.stdin
        if stream is None or stream.isatty():
            raise CommandError(
                "--ids - reads the ids from stdin: pipe them in, e.g. from "
                "`manage.py jobs search ... --output ids`.",
                returncode=USAGE_ERROR,
            )
        text = _read(stream)
        if text is None:
            raise UnreadableInput("The ids on stdin are not UTF-8 text.")
        tokens = text.replace(",", " ").split()
        if len(tokens) > MAX_ITEMS:
            raise UnreadableInput(
                f"{len(tokens)} ids on stdin: one status change takes at most {MAX_ITEMS} "
                f"jobs, all or nothing, so nothing was changed. Send at most {MAX_ITEMS} "
                f"(`jobs search ... --limit {MAX_ITEMS} --output ids`), or narrow the search."
            )
        return ",".join(tokens)

    def read_items(self, options: dict[str, Any]) -> Any:
        """The decoded input; raises UnreadableInput when it is not UTF-8 JSON."""
        ids, status, path = options["ids"], options["status"], options["file"]
        if ids is not None or status is not None:
            if ids is None or status is None:
                raise CommandError("--ids and --status go together.", returncode=USAGE_ERROR)
            if path is not None:
                raise CommandError("Give either --file or --ids/--status.", returncode=USAGE_ERROR)
            if ids == "-":
                ids = self.read_stdin_ids(options)
            return [{"id": _id_value(token), "status": status} for token in _tokens(ids)]
        if path is None or path == "-":
            stream = options.get("stdin") or sys.stdin
            if stream is None or stream.isatty():
                raise CommandError(
                    "Pipe the JSON list on stdin, or give --file or --ids/--status.",
                    returncode=USAGE_ERROR,
                )
            text = _read(stream)
        else:
            try:
                with open(path, "rb") as file:
                    text = _read(file)
            except OSError as error:
                raise CommandError(
                    f"Cannot read {path}: {error.strerror}.", returncode=USAGE_ERROR
                ) from None
        if text is None:
            raise UnreadableInput("The input is not UTF-8 text.")
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise UnreadableInput(
                f"The input is not valid JSON (line {error.lineno}, column {error.colno}): "
                'send a list of {"id", "status"} objects.'
            ) from None
        except (ValueError, RecursionError):  # a number too long or nesting too deep
            raise UnreadableInput(
                'The input is not a usable JSON list of {"id", "status"} objects.'
            ) from None


def _read(stream: IO[Any]) -> str | None:
    """The stream's text without a byte order mark, or None when it is not UTF-8."""
    data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return data.removeprefix("\ufeff")


def _tokens(ids: str) -> list[str]:
    return [token.strip() for token in ids.split(",") if token.strip()]


def _id_value(token: str) -> int | str:
    """A whole number as an int; anything else is passed on for the bulk rules to reject."""
    try:
        return int(token)
    except ValueError:
        return token
