"""Dispatch API routes, one module per area (teams, tasks, tracks)."""

from django.urls import include, path

urlpatterns = [
    path("", include("apps.dispatch.api.team_urls")),
    path("", include("apps.dispatch.api.task_urls")),
    path("", include("apps.dispatch.api.track_urls")),
]
