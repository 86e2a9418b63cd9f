"""Signals of the imports app.

`import_status_changed` is sent after every ImportJob status change (ImportJob.transition),
with keyword arguments import_job, old_status, new_status and actor (None = the system).
"""

import django.dispatch

import_status_changed = django.dispatch.Signal()
