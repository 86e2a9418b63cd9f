from django.urls import path

from imports import views

app_name = "imports"
urlpatterns = [
    path("", views.import_list, name="list"),
    path("<uuid:pk>/", views.import_detail, name="detail"),
]
