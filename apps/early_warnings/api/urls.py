"""Early-warnings routes, included under ``/api/v1/`` in the ``v1`` namespace."""

from __future__ import annotations

from django.urls import path

from apps.early_warnings.api import cap, views

urlpatterns = [
    path("warnings/", views.WarningListApi.as_view(), name="warning-list"),
    path("warnings/active/", views.ActiveWarningsApi.as_view(), name="warning-active"),
    path("warnings/history/", views.WarningHistoryApi.as_view(), name="warning-history"),
    path("warnings/topics/", views.WarningTopicsApi.as_view(), name="warning-topics"),
    path("warnings/feed/", cap.WarningFeedApi.as_view(), name="warning-feed"),
    path("warnings/import/", cap.WarningImportApi.as_view(), name="warning-import"),
    path("warnings/<int:warning_id>/cap/", cap.WarningCapApi.as_view(), name="warning-cap"),
    path("warnings/<int:warning_id>/", views.WarningDetailApi.as_view(), name="warning-detail"),
    path("warnings/<int:warning_id>/ack/", views.WarningAckApi.as_view(), name="warning-ack"),
    path("me/warning-acks/", views.MyPendingAcksApi.as_view(), name="me-warning-acks"),
]
