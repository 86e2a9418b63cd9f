"""`manage.py mcp --user U`: the MCP server for agents on stdio (docs/agents.md).

Standard output carries the protocol and nothing else: Django's own output (system check
messages) goes to stderr with the logs. Exit 2 for bad usage (an unknown or inactive user).
"""

import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.cli import user_from_option
from jobsite.mcp import build_server

logger = logging.getLogger("jobsite.mcp")

USAGE_ERROR = 2


class Command(BaseCommand):
    help = (
        "Serve the Jobsite tools to an MCP client (an agent) on stdin/stdout, acting as --user: "
        "their permissions apply to every tool and their name is on every change."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user", required=True, help="Username the agent acts as (its permissions apply)."
        )

    def execute(self, *args: Any, **options: Any) -> Any:
        options["stdout"] = sys.stderr  # stdout is the protocol's
        return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_from_option(options["user"], returncode=USAGE_ERROR)
        if not user.is_active:
            raise CommandError(f"The user {options['user']!r} is inactive.", returncode=USAGE_ERROR)
        logger.info("MCP server on stdio, acting as %s", user.get_username())
        try:
            build_server(user_id=user.pk).run("stdio")
        except KeyboardInterrupt:
            pass
        logger.info("MCP server stopped")
