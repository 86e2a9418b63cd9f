"""The MCP server (docs/agents.md): the tools of every app on one `MCPServer` of the official
SDK. `manage.py mcp --user U` serves it on stdio.

Tools read whom they act as from the request's context (jobs.mcp_tools.acting_user), never from
this module: the stdio session puts its one user there for its whole life (the lifespan below);
a Streamable HTTP transport would put the API token's user there for each request, with the
same tools.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from mcp.server.mcpserver import MCPServer

from imports import mcp_tools as imports_tools
from jobs import mcp_tools as jobs_tools

INSTRUCTIONS = """\
Jobsite: the jobs of a print floor and their CSV imports. Find jobs with search_jobs (the
list's search syntax, cursor pages), read one with get_job (its version and history), change
statuses of up to 100 jobs at once with bulk_update_job_status (all or nothing), edit one job
with update_job (send the version you read), cancel with cancel_job. Any number of jobs a
filter selects: start_bulk_run, then follow it with get_bulk_run. Imports: list_imports,
get_import, cancel_import. Every change is recorded in the job's history with origin "mcp"
and your user. Errors come back with isError and {"error": {"code", "message", "retryable"}}:
retry only when retryable is true."""


def _version() -> str:
    try:
        return version("jobsite")
    except PackageNotFoundError:  # run from a checkout that was not installed
        return ""


def build_server(*, user_id: int) -> MCPServer[dict[str, Any]]:
    """The server with every app's tools, acting as the user `user_id` for its whole life."""

    @asynccontextmanager
    async def session(server: MCPServer[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        yield {"user_id": user_id}

    return MCPServer(
        "jobsite",
        title="Jobsite",
        instructions=INSTRUCTIONS,
        version=_version(),
        tools=[*jobs_tools.toolbox.tools, *imports_tools.toolbox.tools],
        lifespan=session,
    )
