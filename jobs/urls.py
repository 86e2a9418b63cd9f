from django.urls import path

from jobs import views

app_name = "jobs"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("bulk-status/", views.job_bulk_status, name="bulk-status"),
    path("export.csv", views.job_export, {"export_format": "csv"}, name="export-csv"),
    path("export.jsonl", views.job_export, {"export_format": "jsonl"}, name="export-jsonl"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/edit/", views.job_edit, name="edit"),
    path("<int:pk>/cancel/", views.job_cancel, name="cancel"),
]
