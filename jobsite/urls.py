from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from jobsite import dashboard, metrics, views
from jobsite.api import api

handler400 = "imports.views.bad_request"  # an unreadable upload gets the form, not a bare page

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("jobs/", include("jobs.urls")),
    path("imports/", include("imports.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("account/tokens/", views.api_tokens, name="api-tokens"),
    path("account/tokens/<int:pk>/revoke/", views.api_token_revoke, name="api-token-revoke"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("cluster/", views.cluster_status, name="cluster"),
    path("cluster/retention/", views.run_retention, name="cluster-retention"),
    path("favicon.ico", views.favicon, name="favicon"),
]
