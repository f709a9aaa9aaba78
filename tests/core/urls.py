"""A tiny URLconf exercising core conventions without depending on a domain app."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.urls import path
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from apps.core.errors import ApplicationError
from apps.core.idempotency import idempotent


class GroupCreateApi(APIView):
    """Creates a Group per call: a side effect that a replay must not repeat."""

    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        level = serializers.IntegerField(min_value=1, max_value=4, required=False)

    @idempotent
    def post(self, request):  # type: ignore[no-untyped-def]
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        group = Group.objects.create(name=data.validated_data["name"])
        return Response({"id": group.pk, "name": group.name}, status=201)


class RefuseApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request):  # type: ignore[no-untyped-def]
        raise ApplicationError("demo_refused", "Refused for the test.", extra={"why": "test"})


class CrashApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")


class OneAMinute(AnonRateThrottle):
    rate = "1/minute"


class ThrottledApi(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [OneAMinute]

    def get(self, request):  # type: ignore[no-untyped-def]
        return Response({"ok": True})


class PrivateApi(APIView):
    def get(self, request):  # type: ignore[no-untyped-def]
        return Response({"ok": True})


urlpatterns = [
    path("api/v1/groups/", GroupCreateApi.as_view()),
    path("api/v1/refuse/", RefuseApi.as_view()),
    path("api/v1/crash/", CrashApi.as_view()),
    path("api/v1/throttled/", ThrottledApi.as_view()),
    path("api/v1/private/", PrivateApi.as_view()),
]
handler404 = "apps.core.exceptions.json_not_found"
handler500 = "apps.core.exceptions.json_server_error"
