"""Analytics routes, included under ``/api/v1/`` in the ``v1`` namespace."""

from __future__ import annotations

from django.urls import path

from apps.analytics.api import views

urlpatterns = [
    path("analytics/kpis/", views.KpiApi.as_view(), name="analytics-kpis"),
]
