"""Signals of the jobs app, for what watches jobs from outside it (the metrics in jobsite).

`jobs_changed` is sent after a write of jobs was committed, by every path that writes job
history (an edit, a cancellation, the atomic bulk status change, a bulk run's batch, an
import's batch), with keyword arguments:
- `transitions`: a `collections.Counter` of (from_status, to_status) pairs, one per changed
  job (from == to when the status stayed; from is "" for a job created);
- `surface`: the origin surface of the change (`ui`, `admin`, `cli`, `api`, `mcp`, `import`,
  `bulk`).

`bulk_items_processed` is sent after a bulk run's batch was committed, with keyword argument
`outcomes`: a `collections.Counter` of outcome to count: "changed", or a skip reason's code
("gone", "no_longer_matches", "unchanged", "not_allowed"; jobs.bulk_runs).
"""

from collections import Counter
from collections.abc import Iterable
from typing import Any

import django.dispatch
from django.db import transaction

jobs_changed = django.dispatch.Signal()
bulk_items_processed = django.dispatch.Signal()


def send_when_committed(signal: django.dispatch.Signal, **kwargs: Any) -> None:
    """Send `signal` with `kwargs` once the current transaction commits (at once outside
    one): a rolled-back write announces nothing."""
    transaction.on_commit(lambda: signal.send(sender=None, **kwargs))


def announce_changes(transitions: Iterable[tuple[str, str]], *, surface: str) -> None:
    """Send `jobs_changed` for these (from, to) pairs once the current transaction commits."""
    counted = Counter(transitions)
    if counted:
        send_when_committed(jobs_changed, transitions=counted, surface=surface)
