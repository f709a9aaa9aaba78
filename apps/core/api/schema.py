"""OpenAPI pieces shared by every app: the error envelope as one named component."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
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


# --- Answers the framework gives on any operation ------------------------------------------
# A view documents its own refusals; these come from layers every view shares, so they
# are added here to every operation they apply to (never replacing a view's own text).
# ``tests/fuzz`` checks every answer against the schema: an answer missing here fails it.

_ERROR_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}
_AUTH_SCHEMES = {"jwtAuth", "jwtAuthOptional", "cookieAuth"}


def _framework_errors(operation: dict[str, Any]) -> dict[str, str]:
    parameters = operation.get("parameters", [])
    located = {(p.get("in"), p.get("name")) for p in parameters}
    errors: dict[str, list[Any]] = {}
    if any(p.get("in") in ("path", "query") for p in parameters):
        # apps.core.middleware.RequestGuardMiddleware, before any view.
        errors.setdefault("400", []).append(
            _("text_not_allowed: NUL or invalid text in the path or query")
        )
    if ("header", "Idempotency-Key") in located:
        errors.setdefault("400", []).append(_("idempotency_key_invalid: the key is not a UUID"))
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    if schemes & _AUTH_SCHEMES:
        # A bearer token that is expired, revoked or forged is refused on every
        # endpoint, even those open to anonymous callers.
        errors["401"] = [_("not_authenticated / authentication_failed")]
    if ("query", "cursor") in located:
        errors["404"] = [_("not_found: invalid cursor")]
    if "requestBody" in operation:
        errors["415"] = [_("unsupported_media_type: a body that is not one of the types listed")]
    return {status: "; ".join(str(text) for text in texts) for status, texts in errors.items()}


def document_framework_errors(
    result: dict[str, Any], generator: Any, request: Any, public: bool, **kwargs: Any
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (``SPECTACULAR_SETTINGS``)."""
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            if method == "parameters" or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            for status, description in _framework_errors(operation).items():
                if status not in responses:
                    responses[status] = {
                        "content": {"application/json": {"schema": _ERROR_REF}},
                        "description": description,
                    }
    return result
