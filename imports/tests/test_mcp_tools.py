"""The imports tools of the MCP server (docs/agents.md) through the SDK's stdio client on a real
`manage.py mcp --user demo` process: list with its cursor, one import's progress, counts and
first errors, cancel. The imports are made by `manage.py import_jobs` on the same site: a
SQLite file, or on a PostgreSQL run a PostgreSQL database."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from jobsite.testing.mcp_client import McpProcess
from jobsite.testing.qcluster import manage, scratch_site

SAMPLES = settings.BASE_DIR / "docs" / "samples"


def import_jobs(env: dict[str, str], *args: str) -> dict[str, Any]:
    process = manage(env, "import_jobs", *args, "--user", "demo", "--output", "json", check=False)
    assert process.returncode in (0, 3), process.stderr  # 3: completed with row errors
    return json.loads(process.stdout)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo site with two imports: one run (8 rows, 6 errors) and one waiting (pending:
    no cluster runs here)."""
    with scratch_site(tmp_path_factory.mktemp("mcp_imports"), "mcpimports") as env:
        manage(env, "seed_demo")
        yield {
            "env": env,
            "done": import_jobs(env, str(SAMPLES / "jobs-with-errors.csv"), "--sync"),
            "waiting": import_jobs(env, str(SAMPLES / "jobs-valid.csv")),
        }


@pytest.fixture(scope="module")
def agent(site: dict[str, Any]) -> Iterator[McpProcess]:
    with McpProcess(site["env"], user="demo") as process:
        yield process


def answer(result: Any) -> dict[str, Any]:
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def error_of(result: Any) -> dict[str, Any]:
    assert result.is_error
    return answer(result)["error"]


def test_list_imports_newest_first_with_a_cursor(agent, site) -> None:
    first = answer(agent.call("list_imports", {"limit": 1}))
    assert [item["id"] for item in first["items"]] == [site["waiting"]["id"]]
    assert first["next_cursor"]
    second = answer(agent.call("list_imports", {"limit": 1, "cursor": first["next_cursor"]}))
    assert [item["id"] for item in second["items"]] == [site["done"]["id"]]
    assert second["next_cursor"] is None
    done = answer(agent.call("list_imports", {"status": "completed"}))
    assert [item["id"] for item in done["items"]] == [site["done"]["id"]]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [({"cursor": "garbage"}, "cursor"), ({"limit": 500}, "limit"), ({"status": "done"}, "status")],
)
def test_list_imports_bad_arguments(agent, arguments, field) -> None:
    error = error_of(agent.call("list_imports", arguments))
    assert error["code"] == "VALIDATION_ERROR"
    assert any(name.startswith(field) for name in error["errors"]), error


def test_get_import_has_progress_counts_and_first_errors(agent, site) -> None:
    done = answer(agent.call("get_import", {"id": site["done"]["id"]}))
    assert done["status"] == "completed" and done["progress"] == 1
    assert (done["processed_rows"], done["created_count"], done["error_count"]) == (8, 2, 6)
    assert [error["row"] for error in done["first_errors"]] == [3, 4, 5, 6, 7, 8]
    first = done["first_errors"][0]
    assert {name: first[name] for name in site["done"]["errors"][0]} == site["done"]["errors"][0]
    assert first["raw_data"]  # the row as it was in the file
    assert done["created_by"] == "demo" and done["original_filename"] == "jobs-with-errors.csv"


def test_get_import_unknown_or_malformed_id(agent) -> None:
    missing = str(uuid.uuid4())
    error = error_of(agent.call("get_import", {"id": missing}))
    assert error == {"code": "NOT_FOUND", "message": f"No import with id {missing}.",
                     "retryable": False}  # fmt: skip
    assert "id" in error_of(agent.call("get_import", {"id": "12"}))["errors"]


def test_the_jobs_an_import_wrote_are_found_by_search(agent, site) -> None:
    page = answer(agent.call("search_jobs", {"query": f"import:{site['done']['id']}"}))
    assert len(page["items"]) == 2


def test_cancel_a_waiting_import_at_once_then_not_cancellable(agent, site) -> None:
    waiting = site["waiting"]["id"]
    cancelled = answer(agent.call("cancel_import", {"id": waiting, "reason": "Wrong file"}))
    assert cancelled["status"] == "cancelled" and cancelled["cancellation_reason"] == "Wrong file"
    assert answer(agent.call("get_import", {"id": waiting}))["status"] == "cancelled"
    again = error_of(agent.call("cancel_import", {"id": waiting}))
    assert again["code"] == "NOT_CANCELLABLE" and again["retryable"] is False
    finished = error_of(agent.call("cancel_import", {"id": site["done"]["id"]}))
    assert finished["message"] == (
        "This import is already completed and can no longer be cancelled."
    )
