from django.urls import path

from jobs import live, views

app_name = "jobs"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("live/", live.jobs_list_poll, name="live"),
    path("count/", views.job_count, name="count"),
    path("bulk-status/", views.job_bulk_status, name="bulk-status"),
    path("bulk-runs/", views.bulk_run_list, name="bulk-runs"),
    path("bulk-runs/new/", views.bulk_run_confirm, name="bulk-run-new"),
    path("bulk-runs/<int:pk>/", views.bulk_run_detail, name="bulk-run"),
    path("bulk-runs/<int:pk>/cancel/", views.bulk_run_cancel, name="bulk-run-cancel"),
    path("bulk-runs/<int:pk>/skipped.csv", views.bulk_run_skipped_csv, name="bulk-run-skipped"),
    path("export.csv", views.job_export, {"export_format": "csv"}, name="export-csv"),
    path("export.jsonl", views.job_export, {"export_format": "jsonl"}, name="export-jsonl"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/live/", live.job_poll, name="job-live"),
    path("<int:pk>/edit/", views.job_edit, name="edit"),
    path("<int:pk>/cancel/", views.job_cancel, name="cancel"),
]
