"""Signals of the imports app, for what watches imports from outside it (the metrics in jobsite).

`import_status_changed` is sent after every ImportJob status change (ImportJob.transition),
with keyword arguments import_job, old_status, new_status and actor (None = the system).

`import_rows_processed` is sent after an import's batch was committed (and after the check of
an all-or-nothing import that found invalid rows), with keyword argument `outcomes`: a
`collections.Counter` of the batch's rows by outcome: `created`, `updated`, `unchanged` (an
existing job the row did not change), `skipped` (an existing job left alone: on_existing=skip)
and `failed` (a row with errors).

`imports_deleted` is sent after retention deleted a chunk of expired imports and that was
committed, with keyword argument `count`: how many imports.
"""

import django.dispatch

import_status_changed = django.dispatch.Signal()
import_rows_processed = django.dispatch.Signal()
imports_deleted = django.dispatch.Signal()
