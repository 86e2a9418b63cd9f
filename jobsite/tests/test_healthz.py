"""/healthz: 200 ok, 200 degraded without a cluster, 503 without a database; no login."""

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.redis_broker import Redis
from django_q.signing import SignedPackage
from django_q.status import Stat, Status
from django_q.tasks import async_task

from jobsite.views import LAST_SEEN_KEY


@pytest.fixture(autouse=True)
def no_remembered_cluster(db: None) -> None:
    cache.delete(LAST_SEEN_KEY)


def publish_cluster(workers: int) -> str:
    """What a running qcluster does every guard cycle: publish its status through the broker."""
    status = Status(pid=4242, cluster_id=uuid.uuid4())
    status.workers = list(range(1000, 1000 + workers))
    key = Stat.get_key(status.cluster_id)
    get_broker().set_stat(key, SignedPackage.dumps(status, True), 60)
    published.append(key)
    return key


def unpublish(key: str) -> None:
    """The published status expired (a cluster keeps it for 3 seconds)."""
    broker = get_broker()
    if isinstance(broker, Redis):
        broker.connection.delete(key)
    else:
        broker.cache.delete(key)


published: list[str] = []


@pytest.fixture(autouse=True)
def clean_broker(db: None) -> Iterator[None]:
    yield
    while published:
        unpublish(published.pop())
    get_broker().purge_queue()


def get(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/healthz")
    assert response["Content-Type"] == "application/json"
    return response.status_code, json.loads(response.content)


def test_ok_with_a_running_cluster(client: Client) -> None:
    publish_cluster(workers=2)
    queued_before = get_broker().queue_size()
    async_task("math.floor", 1.5)

    status, body = get(client)

    assert status == 200
    assert body == {
        "database": "ok",
        "cluster": {"seen_seconds_ago": 0, "workers": 2},
        "queue_depth": queued_before + 1,
        "status": "ok",
    }


def test_degraded_when_no_cluster_was_ever_seen(client: Client) -> None:
    status, body = get(client)

    assert status == 200
    assert body["database"] == "ok"
    assert body["cluster"] == {"seen_seconds_ago": None, "workers": 0}
    assert isinstance(body["queue_depth"], int)
    assert body["status"] == "degraded"


def test_a_cluster_seen_within_the_minute_is_still_ok(client: Client) -> None:
    cache.set(LAST_SEEN_KEY, timezone.now() - timedelta(seconds=30), None)

    status, body = get(client)

    assert status == 200
    assert 30 <= body["cluster"]["seen_seconds_ago"] < 40
    assert body["cluster"]["workers"] == 0
    assert body["status"] == "ok"


def test_degraded_when_the_cluster_was_last_seen_over_a_minute_ago(client: Client) -> None:
    cache.set(LAST_SEEN_KEY, timezone.now() - timedelta(seconds=61), None)

    status, body = get(client)

    assert status == 200
    assert body["cluster"]["seen_seconds_ago"] >= 61
    assert body["status"] == "degraded"


def test_a_sighting_is_remembered_after_the_cluster_stops_publishing(client: Client) -> None:
    unpublish(publish_cluster(workers=1))
    assert get(client)[1]["cluster"] == {"seen_seconds_ago": None, "workers": 0}
    key = publish_cluster(workers=1)
    get(client)
    unpublish(key)

    status, body = get(client)

    assert body["cluster"]["workers"] == 0
    assert body["cluster"]["seen_seconds_ago"] is not None
    assert body["status"] == "ok"


def test_503_when_the_database_is_unreachable(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("could not connect to server")

    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", unreachable)
        status, body = get(client)

    assert status == 503
    assert body["database"] == "unreachable"
    assert body["status"] == "down"
    assert "could not connect" not in json.dumps(body)


def test_no_login_needed_and_nothing_sensitive(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert set(json.loads(response.content)) == {"database", "cluster", "queue_depth", "status"}
    assert "no-cache" in response["Cache-Control"]
    assert client.post("/healthz").status_code == 405
