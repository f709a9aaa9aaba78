"""Notifications routes, included under ``/api/v1/`` in the ``v1`` namespace."""

from __future__ import annotations

from django.urls import path

from apps.notifications.api import views

urlpatterns = [
    path(
        "notifications/<int:notification_id>/ack/",
        views.NotificationAckApi.as_view(),
        name="notification-ack",
    ),
    path(
        "me/notification-preferences/",
        views.MyPreferencesApi.as_view(),
        name="me-notification-preferences",
    ),
]
