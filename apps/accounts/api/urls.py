"""Accounts routes, included under ``/api/v1/`` in the ``v1`` namespace."""

from __future__ import annotations

from django.urls import path

from apps.accounts.api import views

urlpatterns = [
    path("auth/token/", views.TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh/", views.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout/", views.LogoutApi.as_view(), name="auth-logout"),
    path("auth/otp/request/", views.OtpRequestApi.as_view(), name="auth-otp-request"),
    path("auth/otp/verify/", views.OtpVerifyApi.as_view(), name="auth-otp-verify"),
    path("me/", views.MeApi.as_view(), name="me"),
    path("devices/", views.DevicesApi.as_view(), name="devices"),
    path("devices/<int:device_id>/", views.DeviceDetailApi.as_view(), name="device-detail"),
]
