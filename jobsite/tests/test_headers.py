"""Production headers: Content-Security-Policy (no inline scripts, handlers or styles on any
page), Permissions-Policy, and /healthz answering a plain-HTTP probe without a redirect."""

import json
import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from imports.models import ErrorType, ImportErrorRecord, ImportStatus
from imports.tests.web_helpers import make_import
from jobs.models import Job

pytestmark = pytest.mark.django_db


class InlineCodeFinder(HTMLParser):
    """Collects whatever a Content-Security-Policy without 'unsafe-inline' would block, and
    what htmx would only run with eval allowed."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script":
            self.in_script = True
            if "src" not in names:
                self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style> element")
        for name, value in attrs:
            value = value or ""
            if name == "style":
                self.found.append(f"style attribute on <{tag}>")
            elif name.startswith(("on", "hx-on", "data-hx-on")):
                self.found.append(f"{name} handler on <{tag}>")
            elif value.strip().lower().startswith("javascript:"):
                self.found.append(f"javascript: URL in {name} on <{tag}>")
            elif name in ("hx-trigger", "data-hx-trigger") and "[" in value:
                self.found.append(f"hx-trigger filter (needs eval) on <{tag}>: {value}")
            elif name in ("hx-vals", "hx-vars", "hx-headers") and value.strip().startswith("js:"):
                self.found.append(f"{name} with js: on <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script and data.strip():
            self.found.append("inline script content")


def inline_code(html: str) -> list[str]:
    finder = InlineCodeFinder()
    finder.feed(html)
    return finder.found


@pytest.fixture
def pages(admin_user, printer, make_job) -> list[str]:
    job = make_job(name="Bracket", printer=printer, notes="PLA")
    job.apply_changes({"priority": 3}, actor=admin_user, origin="ui")
    running = make_import(created_by=admin_user, status=ImportStatus.PROCESSING)
    done = make_import(created_by=admin_user, status=ImportStatus.COMPLETED)
    ImportErrorRecord.objects.create(
        import_job=done, row=3, field="name", error_type=ErrorType.VALIDATION, message="bad"
    )
    return [
        reverse("jobs:list"),
        reverse("jobs:list") + "?status=pending&sort=name",
        reverse("jobs:detail", args=[job.pk]),
        reverse("jobs:edit", args=[job.pk]),
        reverse("jobs:cancel", args=[job.pk]),
        reverse("imports:list"),
        reverse("imports:new"),
        reverse("imports:detail", args=[running.pk]),
        reverse("imports:detail", args=[done.pk]),
        reverse("cluster"),
        reverse("admin:index"),
        reverse("admin:jobs_job_changelist"),
        reverse("admin:jobs_job_change", args=[job.pk]),
        reverse("admin:jobs_job_add"),
        reverse("admin:jobs_printer_changelist"),
        reverse("admin:imports_importjob_change", args=[done.pk]),
        reverse("admin:axes_accessattempt_changelist"),
    ]


def test_main_pages_have_no_inline_script_style_or_handler(client_for, admin_user, pages) -> None:
    client = client_for(admin_user)
    for url in pages:
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            assert response.status_code in (200, 286), url  # 286: a finished import's last poll
            assert inline_code(response.content.decode()) == [], (url, headers)


def test_login_and_lockout_pages_have_no_inline_code(client, settings) -> None:
    assert inline_code(client.get(reverse("login")).content.decode()) == []
    settings.AXES_FAILURE_LIMIT = 1
    locked = client.post(reverse("login"), {"username": "nobody", "password": "x"})
    assert locked.status_code == 429
    assert inline_code(locked.content.decode()) == []


def test_the_finder_finds_what_the_policy_blocks() -> None:
    html = (
        '<script>alert(1)</script><div style="color:red" onclick="x()"></div>'
        '<a href="javascript:x()"></a><input hx-trigger="keyup[key==\'Enter\']">'
        '<button hx-on:click="x()"></button><style>p{}</style>'
    )
    found = " | ".join(inline_code(html))
    for kind in ("script> without src", "style attribute", "onclick", "javascript:", "filter"):
        assert kind in found
    assert "hx-on:click handler" in found and "<style> element" in found
    assert inline_code('<script src="/static/js/app.js" defer></script>') == []


def test_htmx_runs_without_eval_or_injected_styles(client_for, editor) -> None:
    client = client_for(editor)
    html = client.get(reverse("jobs:list")).content.decode()
    head = html[: html.index("</head>")]
    config = head.index('<meta name="htmx-config"')
    assert config < head.index("htmx-2")  # read by htmx when it starts
    content = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", head).group(1)
    config = json.loads(content)
    assert config["allowEval"] is False
    assert config["includeIndicatorStyles"] is False
    # Settling copies these attributes between swapped elements; a style attribute set that
    # way is an inline style the policy refuses.
    assert "style" not in config["attributesToSettle"]


def test_content_security_policy_allows_only_own_scripts_and_styles(client_for, editor) -> None:
    client = client_for(editor)
    response = client.get(reverse("jobs:list"))
    header = response["Content-Security-Policy"]
    policy = dict(directive.strip().split(" ", 1) for directive in header.split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert "unsafe" not in header


@pytest.mark.parametrize("url", ["/login/", "/healthz"])
def test_every_response_carries_both_policies(client, url) -> None:
    response = client.get(url)
    assert "script-src 'self'" in response["Content-Security-Policy"]
    features = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in features


def test_healthz_answers_a_plain_http_probe_without_redirect(settings) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    probe = Client()  # a new client: SecurityMiddleware reads the settings when it starts
    response = probe.get("/healthz")
    assert response.status_code in (200, 503)
    assert response.json()["database"] == "ok"
    assert probe.get("/login/").status_code == 301  # everything else still goes to HTTPS
    assert probe.get("/healthz/").status_code == 301  # the exemption is for /healthz exactly
    assert probe.get("/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 200


def test_job_list_sets_no_inline_style_for_bulk_or_pagination(client_for, editor, make_job) -> None:
    for n in range(55):  # two pages: the pagination links render too
        Job.objects.create(name=f"Job {n}")
    client = client_for(editor)
    html = client.get(reverse("jobs:list")).content.decode()
    assert 'rel="next"' in html
    assert inline_code(html) == []
