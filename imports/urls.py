from django.urls import path

from imports import views

app_name = "imports"
urlpatterns = [
    path("", views.import_list, name="list"),
    path("live/", views.imports_poll, name="live"),
    path("new/", views.import_new, name="new"),
    path("<uuid:pk>/", views.import_detail, name="detail"),
    path("<uuid:pk>/cancel/", views.import_cancel, name="cancel"),
    path("<uuid:pk>/cancel/confirm/", views.import_cancel_confirm, name="cancel_confirm"),
    path("<uuid:pk>/errors.csv", views.import_errors_csv, name="errors_csv"),
    path("<uuid:pk>/original/", views.import_original, name="original"),
]
