"""OpenAPI pieces shared by every app: the error envelope as one named component."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorEnvelopeSerializer(serializers.Serializer):
    """Every API error: ``{code, message, extra}`` (``extra.fields`` for validation)."""

    code = serializers.CharField(help_text="Machine-readable error code; branch on this.")
    message = serializers.CharField(help_text="Human-readable, translated message.")
    extra = serializers.DictField(help_text="Details, e.g. fields, retry_after, status.")

    class Meta:
        ref_name = "ErrorEnvelope"


def error_response(description: Any) -> OpenApiResponse:
    """One documented error answer: ``responses={404: error_response(_("not_found"))}``."""
    return OpenApiResponse(response=ErrorEnvelopeSerializer, description=description)


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """``responses={**error_responses(400, 404)}`` for ``extend_schema``."""
    return {
        status: OpenApiResponse(response=ErrorEnvelopeSerializer, description="Error envelope")
        for status in statuses
    }
