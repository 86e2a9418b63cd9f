"""`manage.py bulk_update_status` (docs/bulk-status.md): by call_command and as a real process."""

import io
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from jobs.models import Job, JobEvent
from jobsite.testing.file_site import MANAGE, seeded_file_site


def call(*args: str, stdin: str | None = None) -> tuple[int, dict[str, Any]]:
    """Run the command in-process; return its exit code and the JSON it printed."""
    out = io.StringIO()
    options: dict[str, Any] = {"stdout": out}
    if stdin is not None:
        options["stdin"] = io.StringIO(stdin)
    try:
        call_command("bulk_update_status", *args, **options)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(out.getvalue())


# --- call_command ------------------------------------------------------------------------------


@pytest.mark.django_db
class TestCallCommand:
    def test_ids_and_status_update_every_job(self, make_job) -> None:
        jobs = [make_job(status="running") for _ in range(3)]
        ids = ",".join(str(job.pk) for job in jobs)
        code, response = call("--ids", ids, "--status", "completed")
        assert code == 0
        assert response == {
            "updated_count": 3,
            "failed_count": 0,
            "results": [{"id": job.pk, "success": True} for job in jobs],
        }
        assert Job.objects.filter(status="completed", version=2, updated_by=None).count() == 3

    def test_user_is_recorded_as_the_actor(self, admin_user, make_job) -> None:
        job = make_job()
        code, _ = call("--ids", str(job.pk), "--status", "cancelled", "--user", "admin")
        job.refresh_from_db()
        assert code == 0
        assert job.updated_by == job.cancelled_by == admin_user
        assert job.events.get().actor == admin_user

    def test_reads_the_list_from_a_file(self, make_job, tmp_path: Path) -> None:
        first, second = make_job(), make_job(status="running")
        path = tmp_path / "batch.json"
        items = [{"id": second.pk, "status": "failed"}, {"id": first.pk, "status": "scheduled"}]
        path.write_text(json.dumps(items), encoding="utf-8-sig")  # a BOM is fine
        code, response = call("--file", str(path))
        assert code == 0
        assert [r["id"] for r in response["results"]] == [second.pk, first.pk]
        assert set(Job.objects.values_list("status", flat=True)) == {"failed", "scheduled"}

    def test_reads_the_list_from_stdin(self, make_job) -> None:
        job = make_job()
        code, response = call(stdin=json.dumps([{"id": job.pk, "status": "running"}]))
        assert code == 0 and response["updated_count"] == 1

    def test_an_empty_list_is_a_success(self) -> None:
        assert call(stdin="[]") == (0, {"updated_count": 0, "failed_count": 0, "results": []})

    def test_a_failing_item_exits_1_and_writes_nothing(self, make_job) -> None:
        good, done = make_job(), make_job(status="completed")
        code, response = call("--ids", f"{good.pk},{done.pk}", "--status", "running")
        assert code == 1
        assert [r["error"]["code"] for r in response["results"]] == [
            "ROLLED_BACK",
            "INVALID_TRANSITION",
        ]
        assert not Job.objects.filter(status="running").exists()
        assert not JobEvent.objects.exists()

    def test_ids_that_are_not_numbers_are_rejected_per_item(self, make_job) -> None:
        job = make_job()
        code, response = call("--ids", f"{job.pk}, abc ,-2", "--status", "running")
        assert code == 1
        assert [(r["id"], r.get("error", {}).get("code")) for r in response["results"]] == [
            (job.pk, "ROLLED_BACK"),
            ("abc", "INVALID_ID"),
            (-2, "INVALID_ID"),
        ]

    def test_the_status_is_passed_on_exactly(self, make_job) -> None:
        job = make_job(status="running")
        code, response = call("--ids", str(job.pk), "--status", "completed ")
        assert code == 1 and response["results"][0]["error"]["code"] == "INVALID_STATUS"

    def test_repeated_ids_exit_1_with_a_validation_error(self, make_job) -> None:
        job = make_job()
        code, response = call("--ids", f"{job.pk},{job.pk}", "--status", "running")
        assert code == 1
        assert response["error"]["code"] == "VALIDATION_ERROR"
        assert f"Repeated ids: {job.pk}." in response["error"]["message"]

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("[{'id': 1}]", "not valid JSON (line 1, column 3)"),
            ("", "not valid JSON"),
            ("[" * 100_000, "not a usable JSON list"),
            ("[" + "9" * 5000 + "]", "not a usable JSON list"),
        ],
    )
    def test_input_that_is_not_json_exits_1_with_a_validation_error(self, text, message) -> None:
        code, response = call(stdin=text)
        assert code == 1
        assert response["error"]["code"] == "VALIDATION_ERROR"
        assert message in response["error"]["message"]
        assert response["error"]["retryable"] is False

    def test_bytes_that_are_not_utf8_exit_1(self, tmp_path: Path) -> None:
        path = tmp_path / "latin1.json"
        path.write_bytes('[{"id": 1, "status": "pénding"}]'.encode("latin-1"))
        code, response = call("--file", str(path))
        assert (code, response["error"]["message"]) == (1, "The input is not UTF-8 text.")

    def test_json_that_is_not_a_list_is_refused_by_the_bulk_rules(self) -> None:
        fake = {"error": {"code": "NONE", "message": "looks like a response"}}
        code, response = call(stdin=json.dumps(fake))
        assert code == 1
        assert response["error"] == {
            "code": "VALIDATION_ERROR",
            "message": 'Send a list of {"id", "status"} objects.',
            "retryable": False,
        }

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--ids", "1"], "--ids and --status go together."),
            (["--status", "completed"], "--ids and --status go together."),
            (["--ids", "1", "--status", "running", "--file", "x"], "either --file or --ids"),
            (["--ids", "1", "--status", "running", "--user", "nobody"], "No user named 'nobody'"),
            (["--file", "/nonexistent/batch.json"], "Cannot read /nonexistent/batch.json"),
        ],
    )
    def test_bad_usage_is_a_command_error(self, args, message) -> None:
        with pytest.raises(CommandError, match=message) as refused:
            call_command("bulk_update_status", *args, stdout=io.StringIO())
        assert refused.value.returncode == 2


# --- A real process on its own SQLite file database -----------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A migrated file database with demo data, and the environment to reach it."""
    return seeded_file_site(tmp_path_factory.mktemp("bulk_cli"), SQLITE_BUSY_TIMEOUT="1")


def run(site: dict[str, Any], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MANAGE, "bulk_update_status", *args],
        env=site["env"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def read(site: dict[str, Any], sql: str, *params: Any) -> list[tuple]:
    with sqlite3.connect(site["database"]) as db:
        return db.execute(sql, params).fetchall()


def job_in(site: dict[str, Any], status: str) -> tuple[int, int]:
    return read(site, "SELECT id, version FROM jobs_job WHERE status = ? LIMIT 1", status)[0]


def test_process_success_exits_0(site) -> None:
    pk, version = job_in(site, "running")
    process = run(site, "--ids", str(pk), "--status", "completed", "--user", "demo")
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["results"] == [{"id": pk, "success": True}]
    assert read(site, "SELECT status, version FROM jobs_job WHERE id = ?", pk) == [
        ("completed", version + 1)
    ]


def test_process_failure_exits_1_and_writes_nothing(site) -> None:
    good, _ = job_in(site, "pending")
    bad, _ = job_in(site, "completed")
    before = read(site, "SELECT * FROM jobs_job ORDER BY id")
    items = [{"id": good, "status": "scheduled"}, {"id": bad, "status": "running"}]
    process = run(site, stdin=json.dumps(items))
    assert process.returncode == 1
    codes = [r["error"]["code"] for r in json.loads(process.stdout)["results"]]
    assert codes == ["ROLLED_BACK", "INVALID_TRANSITION"]
    assert read(site, "SELECT * FROM jobs_job ORDER BY id") == before


def test_process_bad_json_exits_1_without_a_traceback(site) -> None:
    process = run(site, stdin="{not json")
    assert process.returncode == 1
    assert json.loads(process.stdout)["error"]["code"] == "VALIDATION_ERROR"
    assert "Traceback" not in process.stderr


def test_process_unknown_user_exits_2_without_a_traceback(site) -> None:
    process = run(site, "--ids", "1", "--status", "pending", "--user", "nobody")
    assert process.returncode == 2
    assert "No user named 'nobody'" in process.stderr and "Traceback" not in process.stderr


def test_process_locked_database_is_a_retryable_db_error(site) -> None:
    """Another process holds SQLite's write lock for longer than the busy timeout (1 s)."""
    pk, _ = job_in(site, "running")
    before = read(site, "SELECT * FROM jobs_job ORDER BY id")
    holder = sqlite3.connect(site["database"], isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        process = run(site, "--ids", str(pk), "--status", "failed")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert process.returncode == 1
    assert json.loads(process.stdout) == {
        "error": {
            "code": "DB_ERROR",
            "message": "The database is busy. Nothing was changed; please try again.",
            "retryable": True,
        }
    }
    assert "Traceback" not in process.stderr
    assert read(site, "SELECT * FROM jobs_job ORDER BY id") == before
