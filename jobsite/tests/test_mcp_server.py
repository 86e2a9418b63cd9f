"""`manage.py mcp --user U` as a process (docs/agents.md): stdout carries the protocol and
nothing else, bad usage exits 2, the user's permissions apply to every tool, and on SQLite a
writer beside it (the web app, a command) never brings "database is locked" to the agent:
a short wait is waited out, a long one is a retryable DB_ERROR and nothing written."""

import json
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from mcp_types import LATEST_PROTOCOL_VERSION

from jobsite.testing.file_site import MANAGE, seeded_file_site
from jobsite.testing.mcp_client import McpProcess

USERS = """
from django.contrib.auth.models import Permission, User
viewer = User.objects.create_user("viewer")
viewer.user_permissions.add(Permission.objects.get(codename="view_job"))
User.objects.create_user("gone", is_active=False)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo site, a busy timeout of 1 s, and two more users: "viewer" (may only view
    jobs) and "gone" (inactive)."""
    site = seeded_file_site(tmp_path_factory.mktemp("mcp_server"), SQLITE_BUSY_TIMEOUT="1")
    subprocess.run(
        [*MANAGE, "shell", "-c", USERS], env=site["env"], check=True, capture_output=True,
        timeout=120,
    )  # fmt: skip
    return site


@pytest.fixture(scope="module")
def agent(site: dict[str, Any]) -> Iterator[McpProcess]:
    with McpProcess(site["env"], user="demo") as process:
        yield process


def read(site: dict[str, Any], sql: str, *params: Any) -> list[tuple]:
    with sqlite3.connect(site["database"]) as db:
        return db.execute(sql, params).fetchall()


def snapshot(site: dict[str, Any]) -> tuple[list[tuple], list[tuple]]:
    return (
        read(site, "SELECT * FROM jobs_job ORDER BY id"),
        read(site, "SELECT * FROM jobs_jobevent ORDER BY id"),
    )


def job_in(site: dict[str, Any], status: str) -> tuple[int, int]:
    return read(site, "SELECT id, version FROM jobs_job WHERE status = ? ORDER BY id", status)[0]


def error_of(result: Any) -> dict[str, Any]:
    assert result.is_error
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content["error"]


# --- The process ---------------------------------------------------------------------------


def test_stdout_carries_only_the_protocol_and_logs_go_to_stderr(site) -> None:
    """A client speaking JSON-RPC lines by hand: every line on stdout is a message."""
    pk, _ = job_in(site, "scheduled")
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": LATEST_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "bulk_update_job_status",
                "arguments": {"updates": [{"id": pk, "status": "running"}]},
            },
        },
    ]
    process = subprocess.Popen(
        [*MANAGE, "mcp", "--user", "demo"],
        env=site["env"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers = []
    for message in messages:
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
        if "id" in message:
            answers.append(json.loads(process.stdout.readline()))
    rest, stderr = process.communicate(timeout=120)  # closes stdin: the client goes away
    assert process.returncode == 0, stderr
    assert rest == ""
    assert [answer["id"] for answer in answers] == [1, 2]
    assert answers[0]["result"]["serverInfo"]["name"] == "jobsite"
    assert answers[1]["result"]["structuredContent"]["updated_count"] == 1
    assert "bulk status update updated: actor=demo origin=mcp" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("user", "message"),
    [("nobody", "No user named 'nobody'."), ("gone", "The user 'gone' is inactive.")],
)
def test_an_unknown_or_inactive_user_exits_2(site, user, message) -> None:
    process = subprocess.run(
        [*MANAGE, "mcp", "--user", user],
        env=site["env"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert process.returncode == 2
    assert message in process.stderr and "Traceback" not in process.stderr
    assert process.stdout == ""


# --- The user's permissions --------------------------------------------------------------


def test_a_user_who_may_only_view_reads_but_changes_nothing(site) -> None:
    pk, version = job_in(site, "pending")
    before = snapshot(site)
    with McpProcess(site["env"], user="viewer") as viewer:
        found = viewer.call("search_jobs", {"query": "status:pending", "limit": 1})
        assert not found.is_error and found.structured_content["items"]
        assert not viewer.call("get_job", {"id": pk}).is_error
        refusals = [
            viewer.call("bulk_update_job_status", {"updates": [{"id": pk, "status": "running"}]}),
            viewer.call("update_job", {"id": pk, "version": version, "changes": {"priority": 1}}),
            viewer.call("cancel_job", {"id": pk}),
        ]
        imports = viewer.call("list_imports", {})
    for refusal in refusals:
        assert error_of(refusal) == {
            "code": "PERMISSION_DENIED",
            "message": "You need the permission jobs.change_job for this.",
            "retryable": False,
        }
    assert error_of(imports)["code"] == "PERMISSION_DENIED"
    assert snapshot(site) == before


# --- Beside other writers on SQLite ----------------------------------------------------------


class WriteLock:
    """Another process's write transaction on the SQLite file (as the web app's save holds
    it), from `hold()` until `release()`."""

    def __init__(self, database: Any):
        self.db = sqlite3.connect(database, isolation_level=None, check_same_thread=False)

    def hold(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.db.execute("ROLLBACK")
        self.db.close()


def test_a_write_lock_held_past_the_busy_timeout_is_a_retryable_db_error(agent, site) -> None:
    pk, version = job_in(site, "running")
    before = snapshot(site)
    lock = WriteLock(site["database"])
    lock.hold()
    try:
        bulk = agent.call("bulk_update_job_status", {"updates": [{"id": pk, "status": "failed"}]})
        update = agent.call(
            "update_job", {"id": pk, "version": version, "changes": {"priority": 2}}
        )
        cancel = agent.call("cancel_job", {"id": pk})
        reading = agent.call("get_job", {"id": pk})  # readers are not blocked (WAL)
    finally:
        lock.release()
    busy = {
        "code": "DB_ERROR",
        "message": "The database is busy. Nothing was changed; please try again.",
        "retryable": True,
    }
    for result in (bulk, update, cancel):
        assert error_of(result) == busy
        assert "locked" not in result.content[0].text
    assert not reading.is_error and reading.structured_content["version"] == version
    assert snapshot(site) == before
    # As the error says: the same call succeeds once the other writer is done.
    retried = agent.call("bulk_update_job_status", {"updates": [{"id": pk, "status": "failed"}]})
    assert not retried.is_error
    assert read(site, "SELECT status FROM jobs_job WHERE id = ?", pk) == [("failed",)]
    assert "database busy" in agent.server_log()


def test_a_short_write_lock_is_waited_out(agent, site) -> None:
    pk, _ = job_in(site, "pending")
    lock = WriteLock(site["database"])
    lock.hold()
    release = threading.Timer(0.2, lock.release)  # well within the busy timeout (1 s)
    release.start()
    try:
        result = agent.call(
            "bulk_update_job_status", {"updates": [{"id": pk, "status": "running"}]}
        )
    finally:
        release.join()
    assert not result.is_error, result.content
    assert read(site, "SELECT status FROM jobs_job WHERE id = ?", pk) == [("running",)]


def call_as_told(agent: McpProcess, name: str, arguments: dict[str, Any]) -> tuple[Any, int]:
    """Call a tool, retrying while it answers a retryable error (as its description says);
    returns the last result and how many busy answers came before it."""
    busy = 0
    while True:
        result = agent.call(name, arguments)
        if not result.is_error or not result.structured_content["error"].get("retryable"):
            return result, busy
        assert result.structured_content["error"]["code"] == "DB_ERROR"
        busy += 1
        assert busy < 50, "the agent never got its turn"


def test_agent_and_a_busy_writer_side_by_side(agent, site) -> None:
    """A writer saves jobs in short transactions the whole time, as a busy web app does, while
    the agent reads and writes other jobs: no call answers "database is locked" or any error
    but the retryable DB_ERROR (which wrote nothing), and every change gets through."""
    writer_jobs = [pk for (pk,) in read(site, "SELECT id FROM jobs_job ORDER BY id LIMIT 20")]
    agent_jobs = read(
        site,
        "SELECT id, version FROM jobs_job WHERE status = 'scheduled' AND id > ? ORDER BY id"
        " LIMIT 15",
        writer_jobs[-1],
    )
    stop = threading.Event()
    saves = 0

    def web_app() -> None:
        nonlocal saves
        db = sqlite3.connect(site["database"], isolation_level=None, timeout=30)
        while not stop.is_set():
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "UPDATE jobs_job SET notes = ?, version = version + 1 WHERE id = ?",
                (f"save {saves}", writer_jobs[saves % len(writer_jobs)]),
            )
            time.sleep(0.01)  # a request's work inside its transaction
            db.execute("COMMIT")
            saves += 1
            time.sleep(0.01)  # and between requests
        db.close()

    writer = threading.Thread(target=web_app)
    writer.start()
    results = []
    try:
        for n, (pk, version) in enumerate(agent_jobs):
            changes = {"priority": n % 11}
            arguments = {"id": pk, "version": version, "changes": changes}
            results.append(call_as_told(agent, "update_job", arguments))
            updates = {"updates": [{"id": pk, "status": "running"}]}
            results.append(call_as_told(agent, "bulk_update_job_status", updates))
            results.append(call_as_told(agent, "search_jobs", {"query": "status:running"}))
    finally:
        stop.set()
        writer.join()
    assert saves > 0
    assert [result.content[0].text for result, _ in results if result.is_error] == []
    rows = read(
        site,
        f"SELECT status, priority FROM jobs_job WHERE id IN ({','.join('?' * 15)}) ORDER BY id",
        *[pk for pk, _ in agent_jobs],
    )
    assert rows == [("running", n % 11) for n in range(15)]
    assert "locked" not in "".join(r.content[0].text for r, _ in results)
