"""Position routes (included by ``apps/dispatch/api/urls.py`` under ``/api/v1/``)."""

from __future__ import annotations

from django.urls import path

from apps.dispatch.api import tracks as views

urlpatterns = [
    path("me/positions/", views.PositionBatchApi.as_view(), name="my-positions"),
    path(
        "incidents/<int:incident_id>/tracks/",
        views.IncidentTracksApi.as_view(),
        name="incident-tracks",
    ),
    path("positions/latest/", views.LatestPositionsApi.as_view(), name="positions-latest"),
]
