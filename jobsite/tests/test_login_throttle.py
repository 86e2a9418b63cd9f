"""Login throttling (django-axes): a username locks after a few failures from one address, an
address after more failures across usernames; a friendly 429 page, a cool-off, staff unlock.

Red-team finding: 100 wrong passwords in 23 s were all answered normally, and the right
password worked straight after.
"""

import json
import logging
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from jobsite.tests.test_settings import CLEAN_ENV, ROOT

pytestmark = pytest.mark.django_db

PER_USERNAME = 5
PER_ADDRESS = 20
ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"


@pytest.fixture(autouse=True)
def fast_hashing(settings) -> None:
    """Every failed login checks a password: a fast hasher keeps these loops quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AXES_FAILURE_LIMIT = PER_USERNAME
    settings.LOGIN_FAILURES_PER_ADDRESS = PER_ADDRESS


@pytest.fixture
def alice(fast_hashing) -> User:
    return User.objects.create_user("alice", password="right-password")


def log_in(client, username: str, password: str, address: str = ATTACKER):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def is_logged_in(client) -> bool:
    return client.get(reverse("jobs:list")).status_code != 302


def test_repeated_wrong_passwords_lock_the_username_even_for_the_right_one(client, alice) -> None:
    answers = [log_in(client, "alice", f"guess-{n}").status_code for n in range(12)]
    # The failure that reaches the limit already gets the lockout page.
    assert answers == [200] * (PER_USERNAME - 1) + [429] * (12 - PER_USERNAME + 1)
    locked = log_in(client, "alice", "right-password")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page and "“alice”" in page and "15 minutes" in page
    assert "<html" in page  # a whole page in the site's layout, not a bare line of text
    assert not is_logged_in(client)


def test_failures_below_the_limit_do_not_lock_and_a_success_clears_them(client, alice) -> None:
    for n in range(PER_USERNAME - 1):
        assert log_in(client, "alice", f"guess-{n}").status_code == 200
    assert log_in(client, "alice", "right-password").status_code == 302
    assert not AccessAttempt.objects.filter(username="alice").exists()


def test_the_lock_is_per_address(client, alice) -> None:
    for n in range(PER_USERNAME):
        log_in(client, "alice", f"guess-{n}")
    assert log_in(client, "alice", "right-password").status_code == 429
    assert log_in(client, "alice", "right-password", address=ELSEWHERE).status_code == 302


def test_an_address_locks_after_failures_across_usernames(client, alice) -> None:
    # Four failures each for five usernames: no username reaches its own limit.
    answers = [log_in(client, f"user{n % 5}", "guess").status_code for n in range(PER_ADDRESS)]
    assert answers == [200] * (PER_ADDRESS - 1) + [429]
    assert log_in(client, "alice", "right-password").status_code == 429
    assert not is_logged_in(client)
    assert log_in(client, "alice", "right-password", address=ELSEWHERE).status_code == 302


def test_the_address_is_the_socket_address_by_default(client, alice) -> None:
    """A client cannot spread its failures over addresses it writes into X-Forwarded-For."""
    for n in range(PER_USERNAME):
        client.post(
            reverse("login"),
            {"username": "alice", "password": "guess"},
            REMOTE_ADDR=ATTACKER,
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
    assert log_in(client, "alice", "right-password").status_code == 429


def test_the_lock_ends_after_the_cool_off(client, alice) -> None:
    for n in range(PER_USERNAME):
        log_in(client, "alice", f"guess-{n}")
    assert log_in(client, "alice", "right-password").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert log_in(client, "alice", "right-password").status_code == 302


def test_staff_unlock_with_the_management_command(client, alice) -> None:
    for n in range(PER_USERNAME):
        log_in(client, "alice", f"guess-{n}")
    call_command("axes_reset_username", "alice", stdout=None)
    assert log_in(client, "alice", "right-password").status_code == 302


def test_staff_unlock_an_address_with_the_management_command(client, alice) -> None:
    for n in range(PER_ADDRESS):
        log_in(client, f"user{n % 5}", "guess")
    assert log_in(client, "alice", "right-password").status_code == 429
    call_command("axes_reset_ip", ATTACKER, stdout=None)
    assert log_in(client, "alice", "right-password").status_code == 302


def test_staff_see_and_unlock_attempts_in_the_admin(client, client_for, alice, admin_user) -> None:
    for n in range(PER_USERNAME):
        log_in(client, "alice", f"guess-{n}")
    attempt = AccessAttempt.objects.get(username="alice")
    client = client_for(admin_user)
    listing = client.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200 and "alice" in listing.content.decode()
    delete = reverse("admin:axes_accessattempt_delete", args=[attempt.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    client.logout()
    assert log_in(client, "alice", "right-password").status_code == 302


def test_every_lockout_is_logged_once(client, alice, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        for n in range(PER_USERNAME + 3):
            log_in(client, "alice", f"guess-{n}")
    lockouts = [r for r in caplog.records if "Locking out" in r.getMessage()]
    assert len(lockouts) == 1
    assert "alice" in lockouts[0].getMessage() and ATTACKER in lockouts[0].getMessage()


CLIENT_ADDRESS = """
import django
django.setup()
from axes.helpers import get_client_ip_address
from django.test import RequestFactory
request = RequestFactory().get(
    "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.66, 203.0.113.7, 10.0.0.1"
)
print(get_client_ip_address(request))
"""


@pytest.mark.parametrize(
    ("n", "address"), [("", "10.0.0.2"), ("1", "10.0.0.1"), ("2", "203.0.113.7")]
)
def test_trusted_proxy_count_decides_where_the_address_is_read(n, address) -> None:
    """Behind N proxies the client is the Nth X-Forwarded-For entry from the right: the one the
    farthest proxy appended; anything further left was written by the client."""
    result = subprocess.run(
        [sys.executable, "-c", CLIENT_ADDRESS],
        cwd=ROOT,
        env={**CLEAN_ENV, "DJANGO_SETTINGS_MODULE": "jobsite.settings", "TRUSTED_PROXY_COUNT": n},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == address


def test_lockout_settings_come_from_the_environment() -> None:
    script = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.AXES_FAILURE_LIMIT, s.LOGIN_FAILURES_PER_ADDRESS, "
        "s.AXES_COOLOFF_TIME.total_seconds()]))"
    )
    env = {
        **CLEAN_ENV,
        "DJANGO_SETTINGS_MODULE": "jobsite.settings",
        "LOGIN_FAILURES_PER_USERNAME": "3",
        "LOGIN_FAILURES_PER_ADDRESS": "9",
        "LOGIN_LOCKOUT_MINUTES": "2",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [3, 9, 120]
