"""Settings read from environment variables: run a fresh interpreter per case."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRINT_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "host": db.get("HOST"),
    "options": {k: str(v) for k, v in db.get("OPTIONS", {}).items()},
    "cache": settings.CACHES["default"]["BACKEND"],
    "q_redis": settings.Q_CLUSTER.get("redis"), "q_orm": settings.Q_CLUSTER.get("orm"),
    "q": {k: settings.Q_CLUSTER[k] for k in ("timeout", "retry", "max_attempts", "workers")},
    "debug": settings.DEBUG, "batch": settings.IMPORT_BATCH_SIZE,
}))
"""
CLEAN_ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_", "Q_", "IMPORT_"))
}


def run_settings(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=ROOT,
        env={**CLEAN_ENV, "DJANGO_SETTINGS_MODULE": "jobsite.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def load(**env: str) -> dict:
    result = run_settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_default_is_sqlite_wal_orm_broker_and_database_cache() -> None:
    s = load()
    assert s["engine"] == "django.db.backends.sqlite3" and s["name"].endswith("var/jobsite.sqlite3")
    assert s["options"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in s["options"]["init_command"]
    assert int(s["options"]["timeout"]) >= 5
    assert s["cache"] == "django.core.cache.backends.db.DatabaseCache"
    assert s["q_orm"] == "default" and s["q_redis"] is None
    assert s["q"]["timeout"] < s["q"]["retry"] and s["q"]["max_attempts"] > 0
    assert s["debug"] is True


def test_database_url_selects_postgresql() -> None:
    s = load(DATABASE_URL="postgres://alice@db.example:5432/jobsite")
    assert s["engine"] == "django.db.backends.postgresql"
    assert (s["name"], s["host"]) == ("jobsite", "db.example")
    assert "transaction_mode" not in s["options"]


def test_redis_url_selects_redis_broker_and_cache() -> None:
    s = load(REDIS_URL="redis://127.0.0.1:6379/3")
    assert s["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert s["q_redis"] == "redis://127.0.0.1:6379/3" and s["q_orm"] is None


def test_import_and_queue_settings_come_from_env() -> None:
    s = load(IMPORT_BATCH_SIZE="250", Q_TIMEOUT="30", Q_WORKERS="4")
    assert s["batch"] == 250 and s["q"]["timeout"] == 30 and s["q"]["retry"] == 90
    assert s["q"]["workers"] == 4


def test_production_refuses_to_start_without_secret_key() -> None:
    result = run_settings(DJANGO_DEBUG="false")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize(("name", "value"), [("DJANGO_DEBUG", "maybe"), ("Q_WORKERS", "two")])
def test_malformed_values_are_named(name: str, value: str) -> None:
    result = run_settings(**{name: value})
    assert result.returncode != 0 and f"{name} must be" in result.stderr


def test_check_deploy_is_clean_with_production_env() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **CLEAN_ENV,
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-value",
            "DJANGO_ALLOWED_HOSTS": "jobs.example.com",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
