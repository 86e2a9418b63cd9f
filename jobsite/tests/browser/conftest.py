"""Browser tests: a live Jobsite (web server + a real qcluster) on a database of its own,
driven by Debian's Chromium through Playwright. Without Chromium they are skipped, saying why.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Variables of the outer test run that must not leak into the live app.
OUTER_ONLY = ("DJANGO_SETTINGS_MODULE", "PYTEST_", "SQLITE_TEST_NAME")


def chromium_missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium): browser tests skipped"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveApp:
    url: str
    username: str
    password: str
    env: dict[str, str]
    workdir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=check,
        )

    def shell(self, code: str) -> str:
        """Run Python in the live app's Django (to set up or read state the UI cannot)."""
        return self.manage("shell", "-c", code).stdout.strip()


def _database_url(workdir: Path) -> tuple[str, str | None]:
    """SQLite file by default; on a PostgreSQL run, a throwaway database beside the test one."""
    outer = os.environ.get("DATABASE_URL", "")
    if not outer.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{workdir / 'e2e.sqlite3'}", None
    base, _, name = outer.rpartition("/")
    e2e_name = f"{name}_e2e"
    _psql(outer, f'DROP DATABASE IF EXISTS "{e2e_name}"')
    _psql(outer, f'CREATE DATABASE "{e2e_name}"')
    return f"{base}/{e2e_name}", e2e_name


def _psql(url: str, sql: str) -> None:
    import psycopg

    admin_url = url.rpartition("/")[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql)


def _wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"web server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/login/", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"web server did not answer in time:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    if reason := chromium_missing():
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("e2e")
    database_url, pg_name = _database_url(workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(OUTER_ONLY)}
    env.update(
        DJANGO_DEBUG="true",
        DATABASE_URL=database_url,
        JOBSITE_VAR_DIR=str(workdir),
        MEDIA_ROOT=str(workdir / "media"),
        IMPORT_BATCH_SIZE="200",
        Q_WORKERS="1",
        Q_TIMEOUT="120",
        Q_RETRY="150",
        PYTHONUNBUFFERED="1",
    )
    if env.get("REDIS_URL"):
        env["Q_CLUSTER_NAME"] = f"e2e{os.getpid()}"
    port = free_port()
    app = LiveApp(f"http://127.0.0.1:{port}", "demo", "", env, workdir)
    app.manage("migrate", "--noinput")
    app.manage("createcachetable")
    seeded = app.manage("seed_demo").stdout
    app.password = re.search(r"Demo login: demo / (\S+)", seeded).group(1)

    web_log, cluster_log = workdir / "web.log", workdir / "cluster.log"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=web_log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=cluster_log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    app.processes = [server, cluster]
    try:
        _wait_until_up(app.url, server, web_log)
        yield app
    finally:
        for process in app.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in app.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if pg_name:
            _psql(os.environ["DATABASE_URL"], f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def browser(live_app: LiveApp):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield browser
        browser.close()


def log_in(context, live_app: LiveApp):
    page = context.new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill(live_app.username)
    page.get_by_label("Password").fill(live_app.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/jobs/**")
    return page


@pytest.fixture
def context(browser, live_app: LiveApp):
    context = browser.new_context(base_url=live_app.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context, live_app: LiveApp):
    """A logged-in page of the demo user."""
    return log_in(context, live_app)


@pytest.fixture
def screenshot():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def make_jobs(live_app: LiveApp):
    """Create jobs of this test's own in the live app: `make_jobs("tag", [{"status": ...}, ...])`
    returns one dict per job (id, name, reference, status, version), names "<tag> <n>"."""
    import json

    def make(tag: str, specs: list[dict]) -> list[dict]:
        code = f"""
import json
from django.contrib.auth.models import User
from jobs.models import Job, Printer
from jobs.status import apply_status
from django.utils import timezone
demo = User.objects.get(username="demo")
made = []
for number, spec in enumerate(json.loads({json.dumps(json.dumps(specs))}), start=1):
    spec = dict(spec)
    status = spec.pop("status", "pending")
    printer = spec.pop("printer", None)
    job = Job(name=f"{tag} {{number}}", reference=f"{tag}-{{number}}", **spec)
    if printer:
        job.printer = Printer.objects.get(name=printer)
    if status != "pending":
        job.status = status
        job.started_at = timezone.now() if status in ("running", "completed", "failed") else None
        job.completed_at = timezone.now() if status in ("completed", "failed") else None
        job.cancelled_at = timezone.now() if status == "cancelled" else None
    job.insert(actor=demo)
    made.append(dict(id=job.pk, name=job.name, reference=job.reference, status=job.status,
                     version=job.version))
print(json.dumps(made))
"""
        return json.loads(live_app.shell(code).splitlines()[-1])

    return make
