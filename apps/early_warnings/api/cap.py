"""CAP 1.2 endpoints: each version's CAP document, the Atom index feed, the import.

Thin callers of ``apps.early_warnings.cap_adapter`` (export), ``selectors`` (what may be
served) and ``services.warning_import_cap`` (import); ``docs/early-warnings.md``, "CAP
1.2". The documents are answered as plain Django responses (``application/cap+xml``,
``application/atom+xml``); refusals are the JSON envelope, whatever the ``Accept`` header
(a CAP client asking for ``application/cap+xml`` must get a 404 envelope, not a 406).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import Capability, can_somewhere
from apps.core.api.renderers import SafeJSONRenderer
from apps.core.api.schema import error_response
from apps.core.authentication import LenientJWTAuthentication
from apps.early_warnings import cap_adapter, selectors, services
from apps.early_warnings.api.serializers import StaffWarningOutput
from apps.early_warnings.api.views import TAG, WarningsPublicThrottle
from apps.early_warnings.cap.feed import ATOM_MIME_TYPE, CAP_MIME_TYPE, warnings_atom_feed
from apps.early_warnings.cap.parse import MAX_CAP_BYTES

CAP_MEDIA_TYPES = (CAP_MIME_TYPE, "application/xml")


class _JsonErrorsNegotiation(BaseContentNegotiation):
    """Documents are not negotiated; errors are always the JSON envelope."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        content_type = request.content_type.split(";")[0].strip().lower()
        for parser in parsers:
            if parser.media_type == content_type:
                return parser
        return None

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


class CapXmlParser(BaseParser):
    """The body as bytes, unread beyond the CAP size limit (``parse_alert`` refuses it
    with 413 ``cap_too_large``)."""

    media_type = CAP_MIME_TYPE

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream.read(MAX_CAP_BYTES + 1) if stream is not None else b""


class PlainXmlParser(CapXmlParser):
    media_type = "application/xml"


class CanComposeWarnings(BasePermission):
    """Staff with ``warning.compose`` somewhere; the service checks every target."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        return can_somewhere(request.user, Capability.WARNING_COMPOSE)


def cap_url(request: Request, version_id: int) -> str:
    return request.build_absolute_uri(reverse("v1:warning-cap", kwargs={"warning_id": version_id}))


class WarningCapApi(APIView):
    authentication_classes = (LenientJWTAuthentication,)
    permission_classes = (AllowAny,)
    throttle_classes = (WarningsPublicThrottle,)
    throttle_scope = "warnings_public"
    renderer_classes = (SafeJSONRenderer,)
    content_negotiation_class = _JsonErrorsNegotiation

    @extend_schema(
        tags=[TAG],
        summary=_("The CAP 1.2 message of a warning version (anonymous allowed)"),
        description=_(
            "The OASIS CAP 1.2 document of a sent version (published, superseded, cancelled "
            "or expired): ours, or the upstream message exactly as received. A draft or a "
            "version awaiting approval is a status Draft preview for staff who see it "
            "(warning.read), 404 for everyone else."
        ),
        parameters=[OpenApiParameter("warning_id", int, OpenApiParameter.PATH)],
        responses={
            (200, CAP_MIME_TYPE): OpenApiResponse(OpenApiTypes.STR, description=_("CAP 1.2 XML")),
            404: error_response(_("warning_not_found: unknown, or unsent and not mine to see")),
            422: error_response(_("cap_unrepresentable (extra.problems)")),
            429: error_response(_("rate_limited")),
        },
    )
    def get(self, request: Request, warning_id: int) -> HttpResponse:
        version = selectors.warning_for_cap(user=request.user, version_id=warning_id)
        document = cap_adapter.version_cap_xml(version, web=cap_url(request, version.pk))
        content_type = CAP_MIME_TYPE
        if document.charset:
            content_type += f"; charset={document.charset}"
        response = HttpResponse(document.content, content_type=content_type)
        # A sent message never changes; a draft preview is staff-only and changes.
        response["Cache-Control"] = "private, no-store" if document.draft else "public, max-age=300"
        response["X-Content-Type-Options"] = "nosniff"
        return response


class WarningFeedApi(APIView):
    authentication_classes = (LenientJWTAuthentication,)
    permission_classes = (AllowAny,)
    throttle_classes = (WarningsPublicThrottle,)
    throttle_scope = "warnings_public"
    renderer_classes = (SafeJSONRenderer,)
    content_negotiation_class = _JsonErrorsNegotiation

    @extend_schema(
        tags=[TAG],
        summary=_("Atom feed of the warnings in force, linking to their CAP (anonymous allowed)"),
        description=_(
            "An Atom 1.0 index feed (the form CAP aggregators poll): one entry per warning in "
            "force, its live version, newest first, each linking to its CAP 1.2 document."
        ),
        responses={
            (200, ATOM_MIME_TYPE): OpenApiResponse(OpenApiTypes.STR, description=_("Atom XML")),
            429: error_response(_("rate_limited")),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        versions = list(selectors.warnings_feed())
        items = {}
        for version in versions:
            data = cap_adapter.warning_data(version, with_areas=False)
            items[data.identifier] = (data, version.pk)
        self_url = request.build_absolute_uri(reverse("v1:warning-feed"))
        body = warnings_atom_feed(
            feed_id=self_url,
            title=str(_("Xixian New Area early warnings")),
            self_url=self_url,
            author=cap_adapter.sender_name(),
            warnings=[data for data, _pk in items.values()],
            cap_url=lambda data: cap_url(request, items[data.identifier][1]),
            updated=selectors.warnings_feed_changed_at() or timezone.now(),
        )
        response = HttpResponse(body, content_type=f"{ATOM_MIME_TYPE}; charset=utf-8")
        response["Cache-Control"] = "public, max-age=30"
        response["X-Content-Type-Options"] = "nosniff"
        return response


class WarningImportApi(APIView):
    permission_classes = (CanComposeWarnings,)
    parser_classes = (CapXmlParser, PlainXmlParser)
    content_negotiation_class = _JsonErrorsNegotiation
    renderer_classes = (SafeJSONRenderer,)

    @extend_schema(
        tags=[TAG],
        summary=_("Import an upstream CAP 1.2 message"),
        description=_(
            "The body is one CAP 1.2 alert (Content-Type application/cap+xml or "
            "application/xml). It is stored and published as a warning received from "
            "upstream: the regions of its geocodes XIXIAN-REGION, else (an update or "
            "cancel) those of the warning it references, else the whole new area; the "
            "caller needs warning.compose over each. A repeat of the same sender and "
            "identifier returns the stored version and stores nothing."
        ),
        request=dict.fromkeys(CAP_MEDIA_TYPES, OpenApiTypes.STR),
        responses={
            200: StaffWarningOutput,
            401: error_response(_("not_authenticated")),
            403: error_response(_("permission_denied: a target outside my scope")),
            413: error_response(_("cap_too_large")),
            415: error_response(_("unsupported_media_type")),
            422: error_response(
                _(
                    "cap_invalid (extra.problems: line, path, reason), warning_cap_not_actual, "
                    "warning_cap_unsupported"
                )
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = request.data
        if not isinstance(data, bytes):  # pragma: no cover - only the XML parsers are here
            data = b""
        version = services.warning_import_cap(data=data, by=request.user)
        return Response(StaffWarningOutput(version).data)
