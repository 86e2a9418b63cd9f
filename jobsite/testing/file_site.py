"""A site on a SQLite file database of its own, for tests that run `manage.py` as real
processes (a pipe between two commands, a database another process holds locked)."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings

MANAGE = [sys.executable, str(settings.BASE_DIR / "manage.py")]


def seeded_file_site(root: Path, **env: str) -> dict[str, Any]:
    """A migrated file database under `root` with the demo data, and the environment (this
    process's, plus `env`) to reach it: `{"env": ..., "database": ...}`."""
    database = root / "jobsite.sqlite3"
    site_env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "JOBSITE_VAR_DIR": str(root / "var"),
        "DJANGO_DEBUG": "true",
        **env,
    }
    site_env.pop("REDIS_URL", None)
    for command in (["migrate", "-v0"], ["seed_demo"]):
        subprocess.run(
            [*MANAGE, *command], env=site_env, check=True, capture_output=True, timeout=300
        )
    return {"env": site_env, "database": database}
