"""Incident routes, included under ``/api/v1/`` in the ``v1`` namespace.

Citizen-report routes live in ``report_urls.py`` (owned by the reports work) and are
included here, so ``xixian_ems/urls.py`` needs one line for the whole app.
"""

from __future__ import annotations

from django.urls import include, path

from apps.incidents.api import incidents as views

urlpatterns = [
    path("incidents/", views.IncidentListCreateApi.as_view(), name="incidents"),
    path("incidents/changes/", views.IncidentChangesApi.as_view(), name="incidents-changes"),
    path("incidents/<int:incident_id>/", views.IncidentDetailApi.as_view(), name="incident"),
    path(
        "incidents/<int:incident_id>/accept/",
        views.IncidentAcceptApi.as_view(),
        name="incident-accept",
    ),
    path(
        "incidents/<int:incident_id>/reject/",
        views.IncidentRejectApi.as_view(),
        name="incident-reject",
    ),
    path(
        "incidents/<int:incident_id>/start/",
        views.IncidentStartApi.as_view(),
        name="incident-start",
    ),
    path(
        "incidents/<int:incident_id>/resolve/",
        views.IncidentResolveApi.as_view(),
        name="incident-resolve",
    ),
    path(
        "incidents/<int:incident_id>/close/",
        views.IncidentCloseApi.as_view(),
        name="incident-close",
    ),
    path(
        "incidents/<int:incident_id>/reopen/",
        views.IncidentReopenApi.as_view(),
        name="incident-reopen",
    ),
    path(
        "incidents/<int:incident_id>/merge/",
        views.IncidentMergeApi.as_view(),
        name="incident-merge",
    ),
    path(
        "incidents/<int:incident_id>/classify/",
        views.IncidentClassifyApi.as_view(),
        name="incident-classify",
    ),
    path(
        "incidents/<int:incident_id>/casualties/",
        views.IncidentCasualtiesApi.as_view(),
        name="incident-casualties",
    ),
    path(
        "incidents/<int:incident_id>/notes/",
        views.IncidentNotesApi.as_view(),
        name="incident-notes",
    ),
    path("", include("apps.incidents.api.report_urls")),
]
