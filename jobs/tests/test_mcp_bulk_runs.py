"""The bulk run tools of the MCP server (docs/bulk-runs.md, "MCP"), called through the SDK's
stdio client on a real `manage.py mcp --user demo` process on a demo site of its own:
start_bulk_run enqueues a run, get_bulk_run follows it to its report (the run is worked by
`manage.py shell` here, as a cluster worker would)."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from jobsite.testing.mcp_client import McpProcess
from jobsite.testing.qcluster import manage, scratch_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with scratch_site(tmp_path_factory.mktemp("mcp_bulk"), "mcpbulk") as env:
        manage(env, "seed_demo")
        yield {"env": env}


@pytest.fixture(scope="module")
def agent(site: dict[str, Any]) -> Iterator[McpProcess]:
    with McpProcess(site["env"], user="demo") as process:
        yield process


def answer(result: Any) -> dict[str, Any]:
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def shell(site: dict[str, Any], code: str) -> str:
    """The last line `code` prints (the shell says what it imported before it)."""
    return manage(site["env"], "shell", "-c", code).stdout.strip().splitlines()[-1]


def test_the_tools_are_listed_with_their_hints(agent) -> None:
    tools = {tool.name: tool for tool in agent.tools()}
    assert tools["get_bulk_run"].annotations.read_only_hint is True
    start = tools["start_bulk_run"]
    assert start.annotations.read_only_hint is False
    assert start.annotations.idempotent_hint is False
    schema = json.dumps(start.input_schema)
    assert all(action in schema for action in ("set_status", "cancel", "retry_failed"))
    assert {"changed_count", "skipped_by_reason"} <= set(start.output_schema["properties"])


def test_start_then_follow_a_run_to_its_report(agent, site) -> None:
    failed = int(
        shell(
            site, "from jobs.models import Job; print(Job.objects.filter(status='failed').count())"
        )
    )
    assert failed > 0, "the demo data has no failed job"
    started = agent.call("start_bulk_run", {"action": "retry_failed", "filter": "q=status:failed"})
    assert not started.is_error, started.content[0].text
    run = answer(started)
    assert (run["status"], run["origin"], run["created_by"]) == ("pending", "mcp", "demo")
    shell(site, f"from jobs.bulk_runs import run_bulk_run; run_bulk_run({run['id']})")
    report = answer(agent.call("get_bulk_run", {"id": run["id"]}))
    assert (report["status"], report["changed_count"], report["skipped_count"]) == (
        "completed",
        failed,
        0,
    )
    events = shell(
        site,
        "from jobs.models import JobEvent; "
        f"print(JobEvent.objects.filter(origin='bulk', origin_ref='{run['id']}').count())",
    )
    assert int(events) == failed


def test_bad_requests_are_validation_errors_and_start_nothing(agent, site) -> None:
    before = shell(site, "from jobs.models import BulkRun; print(BulkRun.objects.count())")
    for arguments, said in [
        ({"action": "cancel", "filter": "q=priority:high"}, "priority"),
        ({"action": "set_printer", "printer": "No such printer"}, "No printer is called"),
        ({"action": "set_status"}, "status must be one of"),
    ]:
        result = agent.call("start_bulk_run", arguments)
        assert result.is_error
        error = answer(result)["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert said in error["message"]
    result = agent.call("start_bulk_run", {"action": "explode"})
    assert answer(result)["error"]["code"] == "VALIDATION_ERROR"
    missing = agent.call("get_bulk_run", {"id": 987654})
    assert answer(missing)["error"]["code"] == "NOT_FOUND"
    after = shell(site, "from jobs.models import BulkRun; print(BulkRun.objects.count())")
    assert after == before
