"""`manage.py jobs search|show|export` and `bulk_update_status --ids -` (docs/cli.md):
outputs, paging by cursor, the list's filters and search syntax, exit codes; and the pipe
from a search into a bulk status change, in real processes."""

import csv
import io
import json
import sqlite3
import subprocess
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from jobs import export
from jobs.models import Job, JobEvent, Printer
from jobsite.testing.file_site import MANAGE, seeded_file_site


def jobs(*args: str) -> tuple[str, str]:
    """Run `manage.py jobs ARGS` in-process; return what it wrote to stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("jobs", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args: str) -> CommandError:
    with pytest.raises(CommandError) as error:
        jobs(*args)
    return error.value


@pytest.fixture
def floor(db: None, admin_user: Any) -> list[Job]:
    """Seven jobs: Job 0 … Job 6, priority = number, every other one running."""
    printer = Printer.objects.create(name="Prusa MK4 #1")
    made = []
    for n in range(7):
        job = Job(
            name=f"Job {n}",
            priority=n,
            status="running" if n % 2 else "pending",
            printer=printer if n < 3 else None,
            customer_name="Acme" if n == 4 else "",
            reference=f"REF-{n}",
        )
        job.insert(actor=admin_user, origin=JobEvent.Origin.UI)
        made.append(job)
    return made


def test_search_text_is_a_table_with_the_next_cursor_on_stderr(floor) -> None:
    out, err = jobs("search", "--sort", "priority", "--limit", "3")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "PRI", "NAME", "CUSTOMER", "PRINTER", "UPDATED"]
    assert [line.split()[0] for line in lines[1:]] == [str(job.pk) for job in floor[:3]]
    assert "Job 0" in lines[1] and "Prusa MK4 #1" in lines[1]
    assert err.startswith("More jobs: --cursor ")
    cursor = err.split()[-1]
    out, err = jobs("search", "--sort", "priority", "--limit", "3", "--cursor", cursor)
    assert [line.split()[0] for line in out.splitlines()[1:]] == [str(j.pk) for j in floor[3:6]]


def test_search_json_pages_through_every_job_once(floor) -> None:
    seen, cursor = [], None
    while True:
        args = ["search", "--sort=-priority", "--limit", "2", "--output", "json"]
        out, _ = jobs(*args, *(["--cursor", cursor] if cursor else []))
        page = json.loads(out)
        assert set(page) == {"items", "next_cursor", "prev_cursor"}
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Job {n}" for n in range(6, -1, -1)]


def test_search_filter_takes_the_list_query_string(floor) -> None:
    out, _ = jobs("search", "--filter", "status=running&sort=name", "--output", "ids")
    assert out.split() == [str(job.pk) for job in floor if job.status == "running"]
    # A list page's cursor works too (its page is the next one).
    first, _ = jobs(
        "search", "--filter", "status=running&sort=name", "--limit", "1", "--output", "json"
    )
    cursor = json.loads(first)["next_cursor"]
    out, _ = jobs(
        "search", "--filter", f"status=running&sort=name&cursor={cursor}", "--output", "ids"
    )
    assert out.split() == [str(job.pk) for job in floor if job.status == "running"][1:]


def test_search_query_is_the_search_syntax(floor) -> None:
    out, _ = jobs(
        "search", "--query", "status:pending priority:>=3 -customer:acme", "--output", "ids"
    )
    assert out.split() == [str(floor[6].pk)]
    out, _ = jobs("search", "--query", "REF-5", "--output", "ids")
    assert out.split() == [str(floor[5].pk)]


def test_search_jsonl_and_csv_rows_are_the_exports(floor) -> None:
    out, _ = jobs("search", "--sort", "priority", "--output", "jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    assert records == [export.job_record(job) for job in floor]
    out, _ = jobs("search", "--sort", "priority", "--output", "csv", "--limit", "2")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == export.CSV_HEADER
    assert rows[1] == ["Job 0", "pending", "0", "no", "", "", "", "Prusa MK4 #1", "REF-0"]
    assert len(rows) == 3


def test_search_with_no_match_is_not_an_error(floor) -> None:
    assert jobs("search", "--query", "zzzz") == ("No jobs match.\n", "")
    assert jobs("search", "--query", "zzzz", "--output", "ids") == ("", "")
    out, _ = jobs("search", "--query", "zzzz", "--output", "json")
    assert json.loads(out) == {"items": [], "next_cursor": None, "prev_cursor": None}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cursor", "garbage"], "The page cursor is not valid"),
        (["--filter", "staus=running"], "Unknown filter 'staus'"),
        (["--query", "status:bogus"], "The filter cannot be read"),
        (["--filter", "priority=99"], "The filter cannot be read"),
        (["--limit", "0"], "--limit must be a whole number from 1 to 100"),
        (["--limit", "101"], "--limit must be a whole number from 1 to 100"),
        (["--limit", "ten"], "--limit must be a whole number from 1 to 100"),
        (["--sort", "notes"], "Unknown sort 'notes'"),
        (["--filter", "sort=-notes"], "Unknown sort '-notes'"),
    ],
)
def test_search_bad_usage_exits_2_with_a_message(floor, args, message) -> None:
    error = refused("search", *args)
    assert message in str(error)
    assert error.returncode == 2


def test_query_and_filter_exclude_each_other(db) -> None:
    with pytest.raises(CommandError, match="not allowed with argument"):
        jobs("search", "--query", "a", "--filter", "b=c")


def test_a_cursor_of_another_sort_is_refused(floor) -> None:
    out, _ = jobs("search", "--limit", "1", "--output", "json")
    error = refused("search", "--sort", "name", "--cursor", json.loads(out)["next_cursor"])
    assert "another sort order" in str(error) and error.returncode == 2


def test_show_text_has_the_fields_and_the_history(floor, admin_user) -> None:
    job = floor[1]
    job.apply_changes({"priority": 9}, actor=admin_user, origin=JobEvent.Origin.ADMIN)
    out, _ = jobs("show", str(job.pk))
    assert f"id             {job.pk}" in out
    assert "priority       9" in out and "reference      REF-1" in out
    history = out.split("History:")[1].splitlines()[1:]
    assert "Created by admin, ui" in history[0]
    assert "Updated by admin, admin: priority: 1 → 9" in history[1]


def test_show_json_has_the_record_and_the_history(floor) -> None:
    out, _ = jobs("show", str(floor[2].pk), "--output", "json")
    record = json.loads(out)
    assert {key: record[key] for key in ("id", "name", "printer")} == {
        "id": floor[2].pk,
        "name": "Job 2",
        "printer": "Prusa MK4 #1",
    }
    assert [(e["kind"], e["actor"], e["origin"]) for e in record["history"]] == [
        ("created", "admin", "ui")
    ]


def test_show_unknown_job_exits_1_and_a_bad_id_2(db) -> None:
    error = refused("show", "424242")
    assert (str(error), error.returncode) == ("No job with id 424242.", 1)
    for bad in ("abc", "-1", "1" * 30):
        error = refused("show", bad)
        assert "is not a job id" in str(error) and error.returncode == 2


def test_export_streams_every_match(floor, monkeypatch) -> None:
    monkeypatch.setattr(export, "ROWS_PER_CHUNK", 2)
    out, _ = jobs("export", "--sort", "priority")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == export.CSV_HEADER and [row[0] for row in rows[1:]] == [
        f"Job {n}" for n in range(7)
    ]
    assert not out.startswith("\ufeff")  # no byte order mark for scripts
    out, _ = jobs("export", "--query", "status:running", "--output", "jsonl")
    assert [json.loads(line)["name"] for line in out.splitlines()] == [
        "Job 5",
        "Job 3",
        "Job 1",
    ]
    assert refused("export", "--query", "nope:x").returncode == 2


# --- bulk_update_status --ids - ----------------------------------------------------------


def bulk(stdin: str, *args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    try:
        call_command(
            "bulk_update_status", "--ids", "-", *args, stdin=io.StringIO(stdin), stdout=out
        )
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(out.getvalue())


def test_bulk_ids_from_stdin(floor) -> None:
    ids = [job.pk for job in floor[:3]]
    code, response = bulk(f"{ids[0]}\n{ids[1]} ,{ids[2]}\n\n", "--status", "cancelled")
    assert (code, response["updated_count"]) == (0, 3)
    assert set(Job.objects.filter(status="cancelled").values_list("pk", flat=True)) == set(ids)
    code, response = bulk("", "--status", "cancelled")
    assert (code, response["updated_count"]) == (0, 0)
    code, response = bulk(f"{floor[4].pk} x7", "--status", "cancelled")
    assert code == 1 and response["failed_count"] == 2


def test_bulk_more_than_100_ids_from_stdin_changes_nothing(floor) -> None:
    ids = "\n".join(str(job.pk) for job in floor) + "\n" + "\n".join(map(str, range(1000, 1100)))
    code, response = bulk(ids, "--status", "cancelled")
    assert code == 1
    assert response["error"]["code"] == "VALIDATION_ERROR"
    assert response["error"]["message"].startswith("107 ids on stdin: one status change takes")
    assert not Job.objects.filter(status="cancelled").exists()


def test_bulk_ids_dash_needs_a_pipe(floor) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with pytest.raises(CommandError, match="pipe them in") as error:
        call_command("bulk_update_status", "--ids", "-", "--status", "cancelled", stdin=Terminal())
    assert error.value.returncode == 2


# --- Real processes on their own SQLite file database ------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A migrated file database with the demo jobs, and the environment to reach it."""
    return seeded_file_site(tmp_path_factory.mktemp("jobs_cli"), LOG_LEVEL="WARNING")


def test_search_ids_pipe_into_bulk_update_status(site) -> None:
    search = subprocess.Popen(
        [*MANAGE, "jobs", "search", "--query", "status:pending", "--limit", "5", "--output", "ids"],
        env=site["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    update = subprocess.run(
        [*MANAGE, "bulk_update_status", "--ids", "-", "--status", "cancelled"],
        env=site["env"],
        stdin=search.stdout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    search.stdout.close()
    assert search.wait(timeout=120) == 0, search.stderr.read()
    assert update.returncode == 0, update.stderr
    changed = [item["id"] for item in json.loads(update.stdout)["results"]]
    assert len(changed) == 5
    with sqlite3.connect(site["database"]) as db:
        marks = ",".join("?" * len(changed))
        rows = db.execute(
            f"SELECT status, origin FROM jobs_job JOIN jobs_jobevent ON job_id = jobs_job.id"
            f" WHERE jobs_job.id IN ({marks}) AND kind = 'cancelled'",
            changed,
        ).fetchall()
    assert rows == [("cancelled", "cli")] * 5


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["search", "--cursor", "garbage"], 2, "The page cursor is not valid"),
        (["search", "--query", "status:"], 2, "The filter cannot be read"),
        (["show", "999999"], 1, "No job with id 999999."),
        (["search", "--output", "xml"], 2, "invalid choice: 'xml'"),
    ],
)
def test_process_exit_codes_and_no_traceback(site, args, code, message) -> None:
    result = subprocess.run(
        [*MANAGE, "jobs", *args], env=site["env"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_process_export_into_a_closed_pipe_ends_quietly(site) -> None:
    export_process = subprocess.Popen(
        [*MANAGE, "jobs", "export", "--output", "jsonl"],  # more than a pipe's buffer
        env=site["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert json.loads(export_process.stdout.readline())["id"]
    export_process.stdout.close()  # like `| head -1`
    assert export_process.wait(timeout=120) == 0
    assert b"Traceback" not in export_process.stderr.read()
