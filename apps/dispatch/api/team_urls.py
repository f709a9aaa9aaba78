"""Team routes (teams, recommendations, the responder's duty), under ``/api/v1/``."""

from __future__ import annotations

from django.urls import path

from apps.dispatch.api import teams as views

urlpatterns = [
    path("teams/", views.TeamListApi.as_view(), name="teams"),
    path("teams/<slug:code>/", views.TeamDetailApi.as_view(), name="team"),
    path(
        "incidents/<int:incident_id>/recommendations/",
        views.IncidentRecommendationsApi.as_view(),
        name="incident-recommendations",
    ),
    path("me/duty/", views.MyDutyApi.as_view(), name="me-duty"),
    path("me/team/", views.MyTeamsApi.as_view(), name="me-team"),
]
