"""The jobs tools of the MCP server (docs/agents.md), called by an agent through the SDK's stdio
client on a real `manage.py mcp --user demo` process: the tool list with its schemas and hints,
every case of the bulk contract (docs/bulk-status.md), search with the list's syntax and cursor
pages, get, update behind a version, cancel. One server for the whole module, on a demo site
of its own that the test reads directly: a SQLite file, or on a PostgreSQL run a PostgreSQL
database (so the tools run on both)."""

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import psycopg
import pytest

from jobs.status import JobStatus
from jobsite.testing.mcp_client import McpProcess
from jobsite.testing.qcluster import manage, scratch_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with scratch_site(tmp_path_factory.mktemp("mcp_jobs"), "mcpjobs") as env:
        manage(env, "seed_demo")
        yield {"env": env, "url": env["DATABASE_URL"]}


@pytest.fixture(scope="module")
def agent(site: dict[str, Any]) -> Iterator[McpProcess]:
    with McpProcess(site["env"], user="demo") as process:
        yield process


def read(site: dict[str, Any], sql: str, *params: Any) -> list[tuple]:
    """The rows of `sql` (placeholders %s) on the site's database."""
    url = site["url"]
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
            return db.execute(sql.replace("%s", "?"), params).fetchall()
    with psycopg.connect(url) as db:
        return [tuple(row) for row in db.execute(sql, params).fetchall()]


def jobs_in(site: dict[str, Any], status: str, count: int = 1) -> list[int]:
    rows = read(
        site, "SELECT id FROM jobs_job WHERE status = %s ORDER BY id LIMIT %s", status, count
    )
    assert len(rows) == count, f"the demo data has fewer than {count} {status} jobs"
    return [pk for (pk,) in rows]


def snapshot(site: dict[str, Any]) -> tuple[list[tuple], list[tuple]]:
    """Every job and every event: what "nothing was written" compares."""
    return (
        read(site, "SELECT * FROM jobs_job ORDER BY id"),
        read(site, "SELECT * FROM jobs_jobevent ORDER BY id"),
    )


def answer(result: Any) -> dict[str, Any]:
    """The structured answer, checked against the text the agent reads beside it."""
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def error_of(result: Any) -> dict[str, Any]:
    assert result.is_error
    return answer(result)["error"]


# --- The tool list -----------------------------------------------------------------------


READS = {"search_jobs", "get_job", "list_imports", "get_import"}
WRITES = {"bulk_update_job_status", "update_job", "cancel_job", "cancel_import"}


def test_every_tool_has_schemas_hints_and_a_description_for_an_agent(agent) -> None:
    tools = {tool.name: tool for tool in agent.tools()}
    assert READS | WRITES <= set(tools)
    for tool in tools.values():  # these and any tool added later
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema and tool.output_schema["type"] == "object"
        assert tool.title
        assert "isError" in tool.description and "PERMISSION_DENIED" in tool.description
        hints = tool.annotations
        assert hints.read_only_hint is not None and hints.idempotent_hint is not None
        assert hints.destructive_hint is not hints.read_only_hint
        assert hints.open_world_hint is False
    assert all(tools[name].annotations.read_only_hint for name in READS)
    assert not any(tools[name].annotations.read_only_hint for name in WRITES)
    assert tools["bulk_update_job_status"].annotations.idempotent_hint is False


def test_bulk_schema_advertises_the_contract_limits(agent) -> None:
    tool = next(tool for tool in agent.tools() if tool.name == "bulk_update_job_status")
    updates = tool.input_schema["properties"]["updates"]
    assert tool.input_schema["required"] == ["updates"]
    assert updates["type"] == "array" and updates["maxItems"] == 100
    assert updates["items"]["required"] == ["id", "status"]
    assert updates["items"]["properties"]["status"]["enum"] == JobStatus.values
    assert updates["items"]["properties"]["id"] == {"type": "integer", "minimum": 1}
    for code in ("INVALID_ID", "NOT_FOUND", "INVALID_STATUS", "INVALID_TRANSITION"):
        assert code in tool.description
    output = tool.output_schema["properties"]
    assert {"updated_count", "failed_count", "results"} <= set(output)


# --- bulk_update_job_status: docs/bulk-status.md -------------------------------------------


def test_bulk_success_one_timestamp_one_batch_origin_mcp(agent, site) -> None:
    pending = jobs_in(site, "pending", 2)
    running = jobs_in(site, "running")
    items = [
        {"id": running[0], "status": "completed"},
        {"id": pending[1], "status": "scheduled"},
        {"id": pending[0], "status": "cancelled"},
    ]
    before = dict(read(site, "SELECT id, version FROM jobs_job"))
    result = agent.call("bulk_update_job_status", {"updates": items})
    assert not result.is_error
    assert answer(result) == {
        "updated_count": 3,
        "failed_count": 0,
        "results": [{"id": item["id"], "success": True} for item in items],
    }
    ids = [item["id"] for item in items]
    marks = ",".join(["%s"] * len(ids))
    rows = read(
        site, f"SELECT id, status, version, updated_at FROM jobs_job WHERE id IN ({marks})", *ids
    )
    assert {pk: status for pk, status, _, _ in rows} == {i["id"]: i["status"] for i in items}
    assert all(version == before[pk] + 1 for pk, _, version, _ in rows)
    assert len({updated_at for *_, updated_at in rows}) == 1
    events = read(
        site,
        "SELECT e.job_id, e.kind, e.origin, e.origin_ref, e.created_at, u.username"
        f" FROM jobs_jobevent e JOIN auth_user u ON u.id = e.actor_id WHERE e.job_id IN ({marks})"
        " AND e.origin = 'mcp'",
        *ids,
    )
    assert sorted((pk, kind) for pk, kind, *_ in events) == sorted(
        [(running[0], "status_changed"), (pending[1], "status_changed"), (pending[0], "cancelled")]
    )
    assert len({(origin_ref, at) for *_, origin_ref, at, _ in events}) == 1
    assert {origin_ref for *_, origin_ref, _, _ in events} != {""}
    assert {actor for *_, actor in events} == {"demo"}
    assert events[0][4] == rows[0][3]  # the events' time is the jobs' updated_at


def test_bulk_empty_list_succeeds_and_writes_nothing(agent, site) -> None:
    before = snapshot(site)
    result = agent.call("bulk_update_job_status", {"updates": []})
    assert not result.is_error
    assert answer(result) == {"updated_count": 0, "failed_count": 0, "results": []}
    assert snapshot(site) == before


def test_bulk_101_items_is_a_validation_error_not_the_sdks(agent, site) -> None:
    ids = jobs_in(site, "failed", 1)
    items = [{"id": ids[0] if n == 0 else 10_000 + n, "status": "failed"} for n in range(101)]
    before = snapshot(site)
    result = agent.call("bulk_update_job_status", {"updates": items})
    assert error_of(result) == {
        "code": "VALIDATION_ERROR",
        "message": "Too many items (101): one batch takes at most 100 jobs.",
        "retryable": False,
    }
    assert snapshot(site) == before


def test_bulk_100_items_are_taken(agent, site) -> None:
    ids = [pk for (pk,) in read(site, "SELECT id FROM jobs_job ORDER BY id LIMIT 100")]
    statuses = dict(read(site, "SELECT id, status FROM jobs_job"))
    result = agent.call(
        "bulk_update_job_status", {"updates": [{"id": pk, "status": statuses[pk]} for pk in ids]}
    )
    assert not result.is_error
    assert answer(result)["updated_count"] == 100


def test_bulk_repeated_ids_name_them(agent, site) -> None:
    first, second = jobs_in(site, "scheduled", 2)
    items = [
        {"id": first, "status": "running"},
        {"id": second, "status": "running"},
        {"id": first, "status": "cancelled"},
    ]
    before = snapshot(site)
    error = error_of(agent.call("bulk_update_job_status", {"updates": items}))
    assert error["code"] == "VALIDATION_ERROR" and error["retryable"] is False
    assert error["message"] == (f"Repeated ids: {first}. Each job may appear only once in a batch.")
    assert snapshot(site) == before


@pytest.mark.parametrize(
    "updates",
    ["not a list", None, {"id": 1, "status": "running"}, [{"id": 1, "status": "running"}, 7]],
)
def test_bulk_input_that_is_not_a_list_of_objects(agent, site, updates) -> None:
    before = snapshot(site)
    error = error_of(agent.call("bulk_update_job_status", {"updates": updates}))
    assert error["code"] == "VALIDATION_ERROR" and error["retryable"] is False
    assert snapshot(site) == before


@pytest.mark.parametrize("bad_status", ["Running", " running", "done", 5, None, "missing"])
def test_bulk_bad_status_fails_the_item_and_rolls_back_the_rest(agent, site, bad_status) -> None:
    good, bad = jobs_in(site, "scheduled", 2)
    bad_item: dict[str, Any] = {"id": bad}
    if bad_status != "missing":
        bad_item["status"] = bad_status
    before = snapshot(site)
    result = agent.call(
        "bulk_update_job_status", {"updates": [{"id": good, "status": "running"}, bad_item]}
    )
    assert result.is_error
    assert answer(result) == {
        "updated_count": 0,
        "failed_count": 2,
        "results": [
            {
                "id": good,
                "success": False,
                "error": {
                    "code": "ROLLED_BACK",
                    "message": "Not changed, because another item in this batch failed.",
                },
            },
            {
                "id": bad,
                "success": False,
                "error": {
                    "code": "INVALID_STATUS",
                    "message": "The status must be exactly one of: pending, scheduled, "
                    "running, completed, failed, cancelled.",
                },
            },
        ],
    }
    assert snapshot(site) == before


@pytest.mark.parametrize(
    ("bad_id", "echoed"),
    [("5", "5"), (True, True), (5.0, 5.0), (0, 0), (-3, -3), ("missing", None), (2**64, None)],
)
def test_bulk_bad_id_is_invalid_id(agent, site, bad_id, echoed) -> None:
    good = jobs_in(site, "running")[0]
    bad_item: dict[str, Any] = {"status": "failed"}
    if bad_id != "missing":
        bad_item["id"] = bad_id
    before = snapshot(site)
    result = agent.call(
        "bulk_update_job_status", {"updates": [bad_item, {"id": good, "status": "failed"}]}
    )
    results = answer(result)["results"]
    assert result.is_error
    if bad_id == 2**64:  # a whole number too large for any job: no such job
        assert results[0]["error"]["code"] == "NOT_FOUND"
        return
    assert results[0] == {
        "id": echoed,
        "success": False,
        "error": {"code": "INVALID_ID", "message": "The id must be a positive whole number."},
    }
    assert results[1]["error"]["code"] == "ROLLED_BACK"
    assert snapshot(site) == before


def test_bulk_missing_job_is_not_found(agent, site) -> None:
    good = jobs_in(site, "pending")[0]
    before = snapshot(site)
    result = agent.call(
        "bulk_update_job_status",
        {"updates": [{"id": good, "status": "scheduled"}, {"id": 987654, "status": "running"}]},
    )
    assert answer(result)["results"][1] == {
        "id": 987654,
        "success": False,
        "error": {"code": "NOT_FOUND", "message": "No job with id 987654."},
    }
    assert [r["error"]["code"] for r in answer(result)["results"]] == ["ROLLED_BACK", "NOT_FOUND"]
    assert snapshot(site) == before


def test_bulk_forbidden_transition_rolls_back_every_job(agent, site) -> None:
    movable = jobs_in(site, "pending", 2)
    finished = jobs_in(site, "completed")[0]
    items = [
        {"id": movable[0], "status": "running"},
        {"id": finished, "status": "running"},
        {"id": movable[1], "status": "scheduled"},
    ]
    before = snapshot(site)
    result = agent.call("bulk_update_job_status", {"updates": items})
    assert result.is_error
    body = answer(result)
    assert body["updated_count"] == 0 and body["failed_count"] == 3
    assert [r["id"] for r in body["results"]] == [item["id"] for item in items]
    assert [r["error"]["code"] for r in body["results"]] == [
        "ROLLED_BACK",
        "INVALID_TRANSITION",
        "ROLLED_BACK",
    ]
    assert body["results"][1]["error"]["message"] == "A completed job cannot be moved to running."
    assert snapshot(site) == before


def test_bulk_updates_sent_as_a_json_string_are_read_as_the_list(agent, site) -> None:
    """Some clients send an array argument as JSON text; the SDK reads it as the list."""
    job = jobs_in(site, "scheduled")[0]
    result = agent.call(
        "bulk_update_job_status", {"updates": json.dumps([{"id": job, "status": "running"}])}
    )
    assert not result.is_error, result.content
    assert read(site, "SELECT status FROM jobs_job WHERE id = %s", job) == [("running",)]


# --- search_jobs ---------------------------------------------------------------------------


def test_search_pages_by_cursor_through_every_match_once(agent, site) -> None:
    expected = [
        pk
        for (pk,) in read(site, "SELECT id FROM jobs_job WHERE status = 'failed' ORDER BY name, id")
    ]
    seen: list[int] = []
    cursor = None
    while True:
        arguments: dict[str, Any] = {"query": "status:failed", "limit": 7, "sort": "name"}
        if cursor:
            arguments["cursor"] = cursor
        page = answer(agent.call("search_jobs", arguments))
        assert len(page["items"]) <= 7
        seen += [item["id"] for item in page["items"]]
        assert {item["status"] for item in page["items"]} <= {"failed"}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected  # every match once, in the database's order of names


@pytest.mark.parametrize(
    "arguments",
    [{"query": "status:running,failed"}, {"status": ["running", "failed"]}],
)
def test_search_of_several_statuses_pages_in_update_order(agent, site, arguments) -> None:
    sql = (
        "SELECT id FROM jobs_job WHERE status IN ('running', 'failed')"
        " ORDER BY updated_at DESC, id DESC"
    )
    expected = [pk for (pk,) in read(site, sql)]
    seen: list[int] = []
    page = answer(agent.call("search_jobs", {**arguments, "limit": 30}))
    while True:
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        following = {**arguments, "limit": 30, "cursor": page["next_cursor"]}
        page = answer(agent.call("search_jobs", following))
    assert seen == expected


def test_search_status_argument_and_text_query(agent, site) -> None:
    pk, name, reference = read(
        site, "SELECT id, name, reference FROM jobs_job WHERE status = 'running' LIMIT 1"
    )[0]
    page = answer(
        agent.call("search_jobs", {"query": f'"{reference}"', "status": ["running", "failed"]})
    )
    assert [item["id"] for item in page["items"]] == [pk]
    item = page["items"][0]
    assert item["name"] == name and item["reference"] == reference and item["version"] >= 1
    empty = answer(agent.call("search_jobs", {"query": f'"{reference}"', "status": ["pending"]}))
    assert empty == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"query": "status:"}, "query"),
        ({"query": "priority:>=banana"}, "query"),
        ({"sort": "colour"}, "sort"),
        ({"cursor": "garbage"}, "cursor"),
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"status": ["done"]}, "status.0"),
    ],
)
def test_search_bad_arguments_are_validation_errors(agent, arguments, field) -> None:
    error = error_of(agent.call("search_jobs", arguments))
    assert error["code"] == "VALIDATION_ERROR" and error["retryable"] is False
    assert field in error["errors"], error


# --- get_job, update_job, cancel_job -------------------------------------------------------


def test_get_job_has_its_version_and_latest_history(agent, site) -> None:
    pk = jobs_in(site, "pending")[0]
    agent.call("bulk_update_job_status", {"updates": [{"id": pk, "status": "scheduled"}]})
    job = answer(agent.call("get_job", {"id": pk}))
    version, name = read(site, "SELECT version, name FROM jobs_job WHERE id = %s", pk)[0]
    assert job["id"] == pk and job["version"] == version and job["name"] == name
    assert job["status"] == "scheduled"
    latest = job["history"][0]
    assert latest["kind"] == "status_changed" and latest["origin"] == "mcp"
    assert latest["changes"] == {"status": ["pending", "scheduled"]}
    assert latest["actor"] == "demo"
    assert job["history"][-1]["kind"] == "created"


@pytest.mark.parametrize("pk", [987654, 0, -1, 2**70])
def test_get_job_unknown_is_not_found(agent, pk) -> None:
    error = error_of(agent.call("get_job", {"id": pk}))
    assert error == {"code": "NOT_FOUND", "message": f"No job with id {pk}.", "retryable": False}


def test_get_job_id_of_the_wrong_type_names_the_argument(agent) -> None:
    error = error_of(agent.call("get_job", {"id": "abc"}))
    assert error["code"] == "VALIDATION_ERROR" and "id" in error["errors"]


def test_update_job_writes_one_versioned_change_from_mcp(agent, site) -> None:
    pk = jobs_in(site, "pending")[0]
    version = read(site, "SELECT version FROM jobs_job WHERE id = %s", pk)[0][0]
    result = agent.call(
        "update_job",
        {"id": pk, "version": version, "changes": {"priority": 9, "notes": "Rush, per agent"}},
    )
    assert not result.is_error, result.content
    job = answer(result)
    assert job["version"] == version + 1 and job["priority"] == 9
    assert job["notes"] == "Rush, per agent"
    assert read(site, "SELECT priority, notes, version FROM jobs_job WHERE id = %s", pk) == [
        (9, "Rush, per agent", version + 1)
    ]
    assert job["history"][0]["origin"] == "mcp" and job["history"][0]["kind"] == "updated"
    assert set(job["history"][0]["changes"]) == {"priority", "notes"}


def test_update_job_over_someone_elses_change_names_who_changed_what(agent, site) -> None:
    pk = jobs_in(site, "pending")[0]
    version = read(site, "SELECT version FROM jobs_job WHERE id = %s", pk)[0][0]
    agent.call("bulk_update_job_status", {"updates": [{"id": pk, "status": "scheduled"}]})
    before = snapshot(site)
    error = error_of(
        agent.call("update_job", {"id": pk, "version": version, "changes": {"priority": 1}})
    )
    assert error["code"] == "VERSION_CONFLICT" and error["retryable"] is False
    assert error["message"].startswith(
        f"Job {pk} changed since version {version}: demo changed status."
    )
    assert f"now version {version + 1}" in error["message"]
    assert error["current"]["version"] == version + 1
    assert error["current"]["status"] == "scheduled"
    assert [change["fields"] for change in error["changes"]] == [["status"]]
    assert error["changes"][0]["by"] == "demo" and error["changes"][0]["origin"] == "mcp"
    assert snapshot(site) == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"priority": 99}, "priority"),
        ({"name": ""}, "name"),
        ({"status": "completed"}, "status"),  # pending cannot move to completed
        ({"printer": 987654}, "printer"),
        ({"colour": "red"}, "colour"),
        ({"priority": "high"}, "priority"),
        ({}, "changes"),
    ],
)
def test_update_job_field_errors_write_nothing(agent, site, changes, field) -> None:
    pk = jobs_in(site, "pending")[0]
    version = read(site, "SELECT version FROM jobs_job WHERE id = %s", pk)[0][0]
    before = snapshot(site)
    error = error_of(agent.call("update_job", {"id": pk, "version": version, "changes": changes}))
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["errors"], error
    assert snapshot(site) == before


def test_cancel_job_with_a_reason_then_not_cancellable(agent, site) -> None:
    pk = jobs_in(site, "running")[0]
    job = answer(agent.call("cancel_job", {"id": pk, "reason": "Customer withdrew"}))
    assert job["status"] == "cancelled" and job["cancellation_reason"] == "Customer withdrew"
    assert job["cancelled_by"] == "demo"
    assert job["history"][0]["kind"] == "cancelled" and job["history"][0]["origin"] == "mcp"
    before = snapshot(site)
    error = error_of(agent.call("cancel_job", {"id": pk}))
    assert error == {
        "code": "NOT_CANCELLABLE",
        "message": "A cancelled job cannot be cancelled.",
        "retryable": False,
    }
    assert snapshot(site) == before


def test_cancel_job_with_a_stale_version_is_a_conflict(agent, site) -> None:
    pk = jobs_in(site, "scheduled")[0]
    version = read(site, "SELECT version FROM jobs_job WHERE id = %s", pk)[0][0]
    before = snapshot(site)
    error = error_of(agent.call("cancel_job", {"id": pk, "version": version - 1}))
    assert error["code"] == "VERSION_CONFLICT"
    assert snapshot(site) == before
