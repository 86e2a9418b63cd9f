from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from imports import operations

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="jobs:list", permanent=False)),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("jobs/", include("jobs.urls")),
    path("imports/", include("imports.urls")),
    path("admin/", admin.site.urls),
    path("healthz", operations.healthz, name="healthz"),
    path("cluster/", operations.cluster_status, name="cluster"),
    path("cluster/retention/", operations.run_retention, name="cluster-retention"),
]
