import csv
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from jobs.models import Job, Printer

pytestmark = pytest.mark.django_db
SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"


@pytest.fixture(autouse=True)
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path


def logs_in(client, username: str, password: str) -> bool:
    """Through the login page: login throttling (django-axes) needs the request."""
    response = client.post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302


def run() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_is_idempotent_and_prints_a_working_login(client) -> None:
    first = run()
    password = first.strip().rsplit(" / ", 1)[1]
    jobs, printers = Job.objects.count(), Printer.objects.count()
    assert jobs == 300 and printers >= 4
    second = run()
    assert (Job.objects.count(), Printer.objects.count()) == (jobs, printers)
    assert second.strip().endswith(f"demo / {password}")
    assert logs_in(client, "demo", password)
    user = get_user_model().objects.get(username="demo")
    assert user.has_perm("jobs.change_job") and user.has_perm("imports.add_importjob")
    assert set(Job.objects.values_list("status", flat=True)) >= {"pending", "running"}


def test_seed_demo_creates_printers_named_in_the_valid_sample() -> None:
    run()
    with open(SAMPLES / "jobs-valid.csv", newline="", encoding="utf-8") as sample:
        named = {row["printer"] for row in csv.DictReader(sample) if row["printer"]}
    assert named and named <= set(
        Printer.objects.filter(is_active=True).values_list("name", flat=True)
    )


def test_the_login_file_holds_the_whole_printed_login(client, settings) -> None:
    printed = run().strip().rsplit("Demo login: ", 1)[1]
    stored = (settings.VAR_DIR / "demo-login.txt").read_text().strip()
    assert stored == printed
    username, password = stored.split(" / ")
    assert logs_in(client, username, password)


def test_a_login_file_with_the_password_alone_is_replaced_by_a_whole_login(
    client, settings
) -> None:
    run()
    credentials = settings.VAR_DIR / "demo-login.txt"
    credentials.write_text("an-old-password\n")

    printed = run().strip().rsplit("Demo login: ", 1)[1]

    assert credentials.read_text().strip() == printed
    username, password = printed.split(" / ")
    assert username == "demo" and password != "an-old-password"
    assert logs_in(client, "demo", password)
