"""Input and output shapes of the notifications API."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class NotificationAckOutput(serializers.Serializer):
    id = serializers.IntegerField()
    acknowledged_at = serializers.DateTimeField()


class NotificationPreferencesSerializer(serializers.Serializer):
    mute_off_duty = serializers.BooleanField(
        help_text=_("No pushes while off duty, except tasks and red warnings.")
    )
