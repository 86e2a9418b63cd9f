"""A real `manage.py mcp` process driven through the MCP SDK's stdio client, for tests: the
session runs on an event loop in a thread of its own, and the test calls tools synchronously.

    with McpProcess(env, user="demo") as agent:
        result = agent.call("get_job", {"id": 1})
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
from concurrent.futures import Future
from typing import Any

from django.conf import settings
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_types import CallToolResult, Tool

# Generous: a call may wait for a write lock another process holds.
CALL_TIMEOUT = 120


class McpProcess:
    """`manage.py mcp --user USER` with the environment `env`; what it writes to stderr is
    kept in `stderr` (a file), so tests can check it."""

    def __init__(self, env: dict[str, str], *, user: str):
        self.parameters = StdioServerParameters(
            command=sys.executable,
            args=[str(settings.BASE_DIR / "manage.py"), "mcp", "--user", user],
            env=env,
            cwd=str(settings.BASE_DIR),
        )
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._session: ClientSession | None = None
        self._stop: asyncio.Event | None = None
        self._ended: Future[None] | None = None

    def __enter__(self) -> McpProcess:
        self._thread.start()
        ready: Future[None] = Future()
        self._ended = asyncio.run_coroutine_threadsafe(self._serve(ready), self._loop)
        try:
            ready.result(timeout=CALL_TIMEOUT)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    async def _serve(self, ready: Future[None]) -> None:
        self._stop = asyncio.Event()
        try:
            async with (
                stdio_client(self.parameters, errlog=self.stderr) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                self._session = session
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as error:
            if not ready.done():
                ready.set_exception(error)
            raise

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._ended is not None:
            try:
                self._ended.result(timeout=CALL_TIMEOUT)
            except Exception:
                pass  # a session that never started already said why in __enter__
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=CALL_TIMEOUT)
        self._loop.close()

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_TIMEOUT)

    def tools(self) -> list[Tool]:
        assert self._session is not None
        return self._run(self._session.list_tools()).tools

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        assert self._session is not None
        return self._run(self._session.call_tool(name, arguments or {}))

    def server_log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()
