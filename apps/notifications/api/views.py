"""Notifications API: a generic receipt for pushes, and my notification preferences.

Task pushes are acknowledged on the task (``POST /responder/tasks/{id}/delivered/``,
dispatch), which also stamps the delivery KPI; this receipt is for everything else.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.schema import error_response
from apps.core.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from apps.notifications import selectors, services
from apps.notifications.api.serializers import (
    NotificationAckOutput,
    NotificationPreferencesSerializer,
)

TAG = "notifications"


class NotificationAckApi(APIView):
    """The app received a push (not a task push)."""

    @extend_schema(
        tags=[TAG],
        summary=_("Acknowledge receipt of a push"),
        request=None,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: NotificationAckOutput,
            401: error_response(_("not_authenticated")),
            404: error_response(_("notification_not_found: unknown, or not addressed to me")),
            409: error_response(_("ack_on_task (extra.task_id); idempotency_in_progress")),
            422: error_response(_("idempotency_key_reused")),
        },
    )
    @idempotent
    def post(self, request: Request, notification_id: int) -> Response:
        notification = services.notification_acknowledge(
            notification_id=notification_id, user=request.user
        )
        return Response(NotificationAckOutput(notification).data)


class MyPreferencesApi(APIView):
    @extend_schema(
        tags=[TAG],
        summary=_("My notification preferences"),
        responses={
            200: NotificationPreferencesSerializer,
            401: error_response(_("not_authenticated")),
        },
    )
    def get(self, request: Request) -> Response:
        return Response(
            NotificationPreferencesSerializer(selectors.preference_for(user=request.user)).data
        )

    @extend_schema(
        tags=[TAG],
        summary=_("Change my notification preferences"),
        request=NotificationPreferencesSerializer,
        responses={
            200: NotificationPreferencesSerializer,
            400: error_response(_("invalid")),
            401: error_response(_("not_authenticated")),
        },
    )
    def put(self, request: Request) -> Response:
        data = NotificationPreferencesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        preference = services.preference_update(user=request.user, **data.validated_data)
        return Response(NotificationPreferencesSerializer(preference).data)
