"""Real `manage.py` processes for the tests and benchmarks that need a live cluster.

Each process runs in a process group of its own (a qcluster's sentinel, monitor and workers
with it), so it can be stopped gracefully or killed with SIGKILL as a whole, and writes its
output to a log file that failure messages quote. Bench scripts import this module as well
as the tests, so it needs nothing but the standard library until a Django call is made.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Variables of the outer test run that must not reach the processes it starts: they read
# their settings (and database) from the environment given to them, like a deployment.
OUTER_ONLY = ("DJANGO_SETTINGS_MODULE", "PYTEST_", "SQLITE_TEST_NAME")
DEADLINE_SECONDS = 300
STOP_SECONDS = 20
LOG_TAIL = 3000


def environment(**overrides: str) -> dict[str, str]:
    """This process's environment without the outer test run's own variables, plus overrides.

    PROMETHEUS_MULTIPROC_DIR stays (the settings set it): the processes write their metrics
    where this one's /metrics reads them (docs/metrics.md)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OUTER_ONLY)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def manage(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `manage.py <args>` to its end; with `check`, a non-zero exit fails with its stderr."""
    completed = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} exited {completed.returncode}:\n"
            f"{completed.stderr[-LOG_TAIL:]}"
        )
    return completed


def database_url(connection: Any) -> str:
    """The URL of the database behind a Django connection (the test database), for processes
    started on it. SQLite's in-memory database cannot be shared: it must be a file."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        assert not connection.is_in_memory_db(), "a shared SQLite database must be a file"
        return f"sqlite:///{Path(config['NAME']).resolve()}"
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{config['NAME']}"


@contextmanager
def scratch_site(workdir: Path, name: str, **overrides: str) -> Iterator[dict[str, str]]:
    """The environment of a site of its own, for processes that do not share the test
    database: a migrated scratch database, var, media and metrics folders in `workdir`, a
    queue of its own even on a shared Redis; `overrides` on top. The database is a SQLite
    file, or on a PostgreSQL run (DATABASE_URL) one beside that database, dropped at the end."""
    unique = f"{name}{os.getpid()}"
    with _scratch_database(workdir, unique) as database_url:
        env = environment(
            DJANGO_DEBUG="true",
            DATABASE_URL=database_url,
            JOBSITE_VAR_DIR=str(workdir),
            MEDIA_ROOT=str(workdir / "media"),
            PROMETHEUS_MULTIPROC_DIR=str(workdir / "prometheus"),
            Q_CLUSTER_NAME=unique,
            **overrides,
        )
        manage(env, "migrate", "--noinput")
        manage(env, "createcachetable")
        yield env


@contextmanager
def _scratch_database(workdir: Path, name: str) -> Iterator[str]:
    outer = os.environ.get("DATABASE_URL", "")
    if not outer.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{workdir / name}.sqlite3"
        return
    base, _, outer_name = outer.rpartition("/")
    scratch = f"{outer_name}_{name}"
    _postgres(outer, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    _postgres(outer, f'CREATE DATABASE "{scratch}"')
    try:
        yield f"{base}/{scratch}"
    finally:
        _postgres(outer, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def _postgres(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url.rpartition("/")[0] + "/postgres", autocommit=True) as conn:
        conn.execute(sql)


class Process:
    """`manage.py <args>` in a process group of its own, its output in `log_path`; `name` is
    what failure messages call it."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.log_path = log_path
        self.ended_by_us = False
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own: pgid == pid
            )

    @property
    def pgid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to the group (a qcluster stops its workers, then exits); SIGKILL if it is
        still there after STOP_SECONDS, or for whatever outlived the group's leader."""
        self.ended_by_us = True
        if self.running():
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a crashed machine or an OOM kill would."""
        self.ended_by_us = True
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.pgid, signum)
        except ProcessLookupError:  # the whole group is gone already
            pass

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self) -> str:
        return f"--- {self.name} log ---\n{self.log()[-LOG_TAIL:]}"


class Node(Process):
    """One cluster node: `manage.py qcluster`."""

    def __init__(self, letter: str, env: dict[str, str], log_dir: Path):
        super().__init__(f"node {letter}", ["qcluster"], env, log_dir / f"qcluster-{letter}.log")

    def is_up(self) -> bool:
        """Its cluster publishes an idle or working status with workers of this node's group.
        Seen through this process's django-q2 broker, which must be the node's: the same
        database or Redis, and the same cluster name."""
        from django_q.status import Stat

        for stat in Stat.get_all():
            try:
                ours = stat.workers and all(os.getpgid(pid) == self.pgid for pid in stat.workers)
            except ProcessLookupError:  # a status left by a node that is gone
                continue
            if ours and stat.status in ("Idle", "Working"):
                return True
        return False


class Cluster:
    """qcluster nodes started with one environment: one database, broker and cluster name,
    so they share one queue. Nodes are named "a", "b", …"""

    def __init__(self, env: dict[str, str], log_dir: Path, *, nodes: int = 1):
        self.env = env
        self.nodes = [Node(chr(ord("a") + number), env, log_dir) for number in range(nodes)]

    def node_of(self, pid: int) -> Node:
        """The node whose process group holds `pid` (a worker's)."""
        return next(node for node in self.nodes if node.pgid == os.getpgid(pid))

    def wait_until_up(self, seconds: float = 120) -> None:
        for node in self.nodes:
            self.wait_for(node.is_up, f"{node.name} to start", seconds=seconds)

    def wait_for(
        self,
        condition: Callable[[], Any],
        what: str,
        *,
        seconds: float = DEADLINE_SECONDS,
        every: float = 0.05,
    ) -> Any:
        """Poll `condition` until it returns something true, and return that. Fails, quoting
        the nodes' logs, when time runs out or a node exits that was not stopped or killed
        on purpose."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            for node in self.nodes:
                if not node.ended_by_us and not node.running():
                    raise AssertionError(f"{node.name} exited.\n{self.logs()}")
            time.sleep(every)
        raise AssertionError(f"Timed out waiting for {what}.\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(node.log_tail() for node in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
