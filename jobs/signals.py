"""Signals of the jobs app, for what watches jobs from outside it (the metrics in jobsite).

`jobs_changed` is sent after a write of jobs was committed, by every path that writes job
history (an edit, a cancellation, the atomic bulk status change, a bulk run's batch, an
import's batch), with keyword arguments:
- `transitions`: a `collections.Counter` of (from_status, to_status) pairs, one per changed
  job (from == to when the status stayed);
- `surface`: the origin surface of the change (`ui`, `admin`, `cli`, `api`, `mcp`, `import`,
  `bulk`).

`bulk_items_processed` is sent after a bulk run's batch was committed, with keyword argument
`outcomes`: a `collections.Counter` of outcome ("changed", or the skip reason's code) to count.
"""

import django.dispatch

jobs_changed = django.dispatch.Signal()
bulk_items_processed = django.dispatch.Signal()
