"""Browser tests: a live Jobsite (web server + a real qcluster) on a database of its own,
driven by Debian's Chromium through Playwright. Without Chromium they are skipped, saying why.
"""

import os
import re
import shutil
import socket
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobsite.testing import qcluster

ARTIFACTS = qcluster.ROOT / "test-artifacts" / "screenshots"
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

    def shell(self, code: str) -> str:
        """Run Python in the live app's Django (to set up or read state the UI cannot)."""
        return qcluster.manage(self.env, "shell", "-c", code).stdout.strip()


def _wait_until_up(url: str, server: qcluster.Process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not server.running():
            raise RuntimeError(f"web server exited:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url + "/login/", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"web server did not answer in time:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    if reason := chromium_missing():
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("e2e")
    with qcluster.scratch_site(
        workdir, "e2e", IMPORT_BATCH_SIZE="200", Q_WORKERS="1", Q_TIMEOUT="120", Q_RETRY="150"
    ) as env:
        seeded = qcluster.manage(env, "seed_demo").stdout
        password = re.search(r"Demo login: demo / (\S+)", seeded).group(1)
        port = free_port()
        app = LiveApp(f"http://127.0.0.1:{port}", "demo", password, env, workdir)

        server = qcluster.Process(
            "web server",
            ["runserver", f"127.0.0.1:{port}", "--noreload"],
            env,
            workdir / "web.log",
        )
        cluster = qcluster.Cluster(env, workdir)
        try:
            _wait_until_up(app.url, server)
            yield app
        finally:
            server.stop()
            cluster.stop()


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


# Every page reports Content-Security-Policy violations back to the test, which fails on any:
# the app must work under its own policy (no inline scripts, handlers, styles or eval).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} on ${location.pathname}`
  );
});
"""


CSP_VIOLATIONS: dict[int, list[str]] = {}  # id(context) -> what it reported


def new_context(browser, live_app: LiveApp, **options):
    """A browser context on the live app that records CSP violations, from the page events
    and from Chromium's "Refused to ..." console errors; close it with close_checking_csp."""
    options.setdefault("viewport", {"width": 1400, "height": 900})
    context = browser.new_context(base_url=live_app.url, **options)
    context.set_default_timeout(15_000)
    violations = CSP_VIOLATIONS[id(context)] = []
    context.expose_function("reportCspViolation", lambda text: violations.append(text))
    context.add_init_script(REPORT_CSP_VIOLATIONS)

    def on_console(message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            violations.append(message.text)

    context.on("console", on_console)
    return context


def close_checking_csp(context) -> None:
    violations = CSP_VIOLATIONS.pop(id(context))
    context.close()
    assert not violations, f"Content-Security-Policy violations: {violations}"


@pytest.fixture
def context(browser, live_app: LiveApp):
    context = new_context(browser, live_app)
    yield context
    close_checking_csp(context)


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
    job.insert(actor=demo, origin="ui")
    made.append(dict(id=job.pk, name=job.name, reference=job.reference, status=job.status,
                     version=job.version))
print(json.dumps(made))
"""
        return json.loads(live_app.shell(code).splitlines()[-1])

    return make
