"""Protected photo downloads: the sanitised file or its thumbnail, never a public URL.

Photos are not served from ``MEDIA_URL``: a citizen's photo may show their home, so
each request is checked (the reporter by login or tracking token, staff by region
scope) and streamed from the storage backend. Unauthorised and unknown ids are the
same 404.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.core.api.renderers import SafeJSONRenderer
from apps.incidents.api.reports import error_response
from apps.incidents.models import Attachment
from apps.incidents.selectors.reports import attachment_get_for_download

TAG = "attachments"
TOKEN_PARAMETER = OpenApiParameter(
    name="token",
    type=str,
    location=OpenApiParameter.QUERY,
    required=False,
    description="The report's tracking token (anonymous reporters).",
)
TOKEN_HEADER = "X-Report-Token"  # noqa: S105 - a header name


class _FirstRendererNegotiation(BaseContentNegotiation):
    """Images are not content-negotiated; errors always come back as the JSON envelope
    (an ``Accept: image/*`` header must not turn a 404 into a 406)."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


class _AttachmentFileApi(APIView):
    permission_classes = (AllowAny,)
    renderer_classes = (SafeJSONRenderer,)
    content_negotiation_class = _FirstRendererNegotiation
    thumbnail = False

    def get(self, request: Request, attachment_id: int) -> FileResponse:
        token = request.query_params.get("token") or request.headers.get(TOKEN_HEADER, "")
        attachment = attachment_get_for_download(
            attachment_id=attachment_id, user=request.user, token=token
        )
        return _stream(attachment, thumbnail=self.thumbnail)


def _stream(attachment: Attachment, *, thumbnail: bool) -> FileResponse:
    field = attachment.thumbnail if thumbnail else attachment.file
    content_type = "image/jpeg" if thumbnail else attachment.content_type
    extension = "jpg" if thumbnail else field.name.rsplit(".", 1)[-1]
    response = FileResponse(
        field.storage.open(field.name, "rb"),
        content_type=content_type,
        as_attachment=False,
        filename=f"photo-{attachment.pk}{'-thumb' if thumbnail else ''}.{extension}",
    )
    # Personal data: no shared caches; the bytes never change, so the browser may keep it.
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


_RESPONSES = {
    (200, "image/jpeg"): OpenApiResponse(response=OpenApiTypes.BINARY),
    (200, "image/png"): OpenApiResponse(response=OpenApiTypes.BINARY),
    (200, "image/webp"): OpenApiResponse(response=OpenApiTypes.BINARY),
    404: error_response("not_found (unknown, or not yours / out of scope)"),
}


class AttachmentDownloadApi(_AttachmentFileApi):
    """The sanitised photo (re-encoded, no EXIF)."""

    @extend_schema(
        tags=[TAG],
        summary=_("Download a photo"),
        parameters=[TOKEN_PARAMETER],
        responses=_RESPONSES,
    )
    def get(self, request: Request, attachment_id: int) -> FileResponse:
        return super().get(request, attachment_id)


class AttachmentThumbnailApi(_AttachmentFileApi):
    """The ≤ 320 px JPEG thumbnail."""

    thumbnail = True

    @extend_schema(
        tags=[TAG],
        summary=_("Download a photo thumbnail"),
        parameters=[TOKEN_PARAMETER],
        responses={
            (200, "image/jpeg"): OpenApiResponse(response=OpenApiTypes.BINARY),
            404: _RESPONSES[404],
        },
    )
    def get(self, request: Request, attachment_id: int) -> FileResponse:
        return super().get(request, attachment_id)
