"""Protected photo downloads: the sanitised file or its thumbnail, never a public URL.

Photos are not served from ``MEDIA_URL`` (no server serves it: ``docs/roles.md``,
"Media"): a citizen's photo may show their home, so each request is checked
(``apps.incidents.policies.attachment_visible``: the reporter by login or tracking
token, staff with ``reporter.contact`` in scope, the incident's assigned team and
command post). Unauthorised and unknown ids are the same 404.

Who sends the bytes after the check: with ``MEDIA_ACCEL_REDIRECT`` set (production:
the router, nginx, serves files from an ``internal`` location) the answer is an empty
200 carrying ``X-Accel-Redirect: <prefix><file name>`` and nginx streams the file; with
it empty (development, tests) Django streams it from the storage backend.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpResponse, HttpResponseBase
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
SIGNATURE_PARAMETER = OpenApiParameter(
    name="sig",
    type=str,
    location=OpenApiParameter.QUERY,
    required=False,
    description="A signed photo link, as the tracking answer gives it (short-lived).",
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

    def get(self, request: Request, attachment_id: int) -> HttpResponseBase:
        token = request.query_params.get("token") or request.headers.get(TOKEN_HEADER, "")
        attachment = attachment_get_for_download(
            attachment_id=attachment_id,
            user=request.user,
            token=token,
            signature=request.query_params.get("sig", ""),
        )
        return _stream(attachment, thumbnail=self.thumbnail)


def accel_redirect_uri(name: str) -> str:
    """The internal URI nginx serves the stored file ``name`` from (``MEDIA_ACCEL_REDIRECT``
    + the name, percent-encoded). Names are the storage's own (``attachments/…/<uuid>``);
    anything that could leave the media directory is refused."""
    prefix = str(settings.MEDIA_ACCEL_REDIRECT).rstrip("/") + "/"
    parts = name.split("/")
    if not name or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"not a stored file name: {name!r}")
    return prefix + quote(name)


def _stream(attachment: Attachment, *, thumbnail: bool) -> HttpResponseBase:
    field = attachment.thumbnail if thumbnail else attachment.file
    content_type = "image/jpeg" if thumbnail else attachment.content_type
    extension = "jpg" if thumbnail else field.name.rsplit(".", 1)[-1]
    filename = f"photo-{attachment.pk}{'-thumb' if thumbnail else ''}.{extension}"
    response: HttpResponseBase
    if settings.MEDIA_ACCEL_REDIRECT:
        # The router sends the bytes (and repeats the headers below: an internal
        # redirect keeps only the standard ones of this answer).
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = accel_redirect_uri(field.name)
        response["Content-Disposition"] = f'inline; filename="{filename}"'
    else:
        response = FileResponse(
            field.storage.open(field.name, "rb"),
            content_type=content_type,
            as_attachment=False,
            filename=filename,
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
        parameters=[TOKEN_PARAMETER, SIGNATURE_PARAMETER],
        responses=_RESPONSES,
    )
    def get(self, request: Request, attachment_id: int) -> HttpResponseBase:
        return super().get(request, attachment_id)


class AttachmentThumbnailApi(_AttachmentFileApi):
    """The ≤ 320 px JPEG thumbnail."""

    thumbnail = True

    @extend_schema(
        tags=[TAG],
        summary=_("Download a photo thumbnail"),
        parameters=[TOKEN_PARAMETER, SIGNATURE_PARAMETER],
        responses={
            (200, "image/jpeg"): OpenApiResponse(response=OpenApiTypes.BINARY),
            404: _RESPONSES[404],
        },
    )
    def get(self, request: Request, attachment_id: int) -> HttpResponseBase:
        return super().get(request, attachment_id)
