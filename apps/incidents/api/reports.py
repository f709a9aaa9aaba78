"""Citizen report API: submit (anonymous allowed), SOS, my reports, follow-up by token.

Views parse input, call one service or selector and serialise the result (conventions R7).
Every POST honours ``Idempotency-Key``: a phone on a weak network retrying a report
gets the first answer back and creates nothing new.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit.personal import PersonalDataSerializerMixin
from apps.core import client_address
from apps.core.api.parsers import SafeFormParser, SafeJSONParser, SafeMultiPartParser
from apps.core.api.schema import error_response
from apps.core.authentication import LenientJWTAuthentication
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.idempotency import (
    IDEMPOTENCY_KEY_PARAMETER,
    Claim,
    Replay,
    claim_from,
    claims_replay,
    idempotent,
    replay_response,
)
from apps.core.pagination import CursorPagination
from apps.incidents.api.attachment_urls import attachment_url
from apps.incidents.models import Attachment, IncidentEvent, PublicStatus, Report
from apps.incidents.policies import report_contact_visible
from apps.incidents.public_status import public_status_for
from apps.incidents.selectors import reports as selectors
from apps.incidents.services import reports as services
from apps.incidents.throttles import (
    REPORT_THROTTLES,
    SOS_THROTTLES,
    device_id_from,
)

TAG = "reports"
PHOTO_FIELDS = ("photos", "photos[]")
CATEGORY_MAX_LENGTH = 8
COMMUNITY_MAX_LENGTH = 40  # a region code
PHONE_MAX_LENGTH = 32  # as typed: spaces, dashes, +86 (normalised by the service)


def client_ip(request: Request) -> str | None:
    """The address the throttles count (:mod:`apps.core.client_address`), if it is one."""
    return client_address.client_ip(request)


def photos_from(request: Request) -> list[Any]:
    """The uploaded photos; photos sent any other way (base64 in JSON, a text form
    field) are refused rather than silently dropped."""
    files = getattr(request, "FILES", None)
    uploads = [upload for name in PHOTO_FIELDS for upload in files.getlist(name)] if files else []
    data = request.data
    if not uploads and hasattr(data, "keys") and any(name in data for name in PHOTO_FIELDS):
        raise serializers.ValidationError(
            {"photos": [_("Send photos as files in a multipart/form-data request.")]},
            code="invalid",
        )
    return uploads


# --- Output shapes -----------------------------------------------------------------------


def _choice_field(choices: Any, description: str) -> type[serializers.ChoiceField]:
    """A read/write choice field over a model's TextChoices. The schema names each set
    once through SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"], so the shared field names
    ``status``/``kind`` do not collide."""

    class Field(serializers.ChoiceField):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("help_text", description)
            super().__init__(choices=choices, **kwargs)

    return Field


ReportStatusField = _choice_field(Report.Status.choices, "Triage status of the report.")
PublicStatusField = _choice_field(PublicStatus.choices, "What the reporter sees.")
EventKindField = _choice_field(IncidentEvent.Kind.choices, "Timeline event kind.")
ChannelField = _choice_field(Report.Channel.choices, "Where the report came in.")


class ReportCategoryOutput(serializers.Serializer):
    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()


class ReportRegionOutput(serializers.Serializer):
    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()


class ReportAttachmentOutput(serializers.Serializer):
    """A photo; the URLs are protected downloads, never public media URLs."""

    id = serializers.IntegerField()
    content_type = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    size = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    def _url(self, attachment: Attachment, *, thumbnail: bool) -> str:
        # A tracking-token reader gets short-lived signed links, not the token in a URL.
        return attachment_url(
            attachment,
            request=self.context.get("request"),
            thumbnail=thumbnail,
            signed=bool(self.context.get("token")),
        )

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, attachment: Attachment) -> str:
        return self._url(attachment, thumbnail=False)

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, attachment: Attachment) -> str:
        return self._url(attachment, thumbnail=True)


class ReportPublicEventOutput(serializers.Serializer):
    """A status change of the incident, as the reporter sees it (no actor, no data)."""

    kind = EventKindField()
    label = serializers.SerializerMethodField()
    at = serializers.DateTimeField()

    def get_label(self, event: IncidentEvent) -> str:
        return str(IncidentEvent.Kind(event.kind).label)


class ReportCitizenOutput(serializers.Serializer):
    """What the reporter sees of their report."""

    id = serializers.IntegerField()
    category = ReportCategoryOutput()
    text = serializers.CharField()
    address = serializers.CharField()
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    region = ReportRegionOutput()
    is_sos = serializers.BooleanField()
    status = ReportStatusField()
    public_status = serializers.SerializerMethodField()
    rejection_reason = serializers.CharField()
    incident_number = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    triaged_at = serializers.DateTimeField(allow_null=True)
    rating = serializers.IntegerField(allow_null=True)
    rating_comment = serializers.CharField()
    rated_at = serializers.DateTimeField(allow_null=True)
    reopen_requested_at = serializers.DateTimeField(allow_null=True)
    attachments = ReportAttachmentOutput(many=True)

    @extend_schema_field(PublicStatusField())
    def get_public_status(self, report: Report) -> str:
        return str(public_status_for(report))

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_incident_number(self, report: Report) -> str | None:
        return report.incident.number if report.incident is not None else None


class ReportTrackOutput(ReportCitizenOutput):
    """The reporter's view plus the public timeline of the incident."""

    timeline = serializers.SerializerMethodField()

    @extend_schema_field(ReportPublicEventOutput(many=True))
    def get_timeline(self, report: Report) -> list[dict[str, Any]]:
        events = selectors.report_public_timeline(report=report)
        return ReportPublicEventOutput(events, many=True).data  # type: ignore[return-value]


class ReportStaffAttachmentOutput(ReportAttachmentOutput):
    """Staff also see where the camera said the photo was taken (stripped from the file)."""

    exif_lat = serializers.FloatField(allow_null=True)
    exif_lng = serializers.FloatField(allow_null=True)
    sha256 = serializers.CharField()


class ReportIncidentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    title = serializers.CharField()
    status = serializers.CharField()


class _ContactByPolicy:
    """Shows the reporter's phone and photos only to whom ``apps.incidents.policies``
    allows (``null`` and none otherwise). In the bases after the audit mixin, so the audit
    sees, and records, only what is really shown."""

    def to_representation(self, report: Report) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(report)  # type: ignore[misc]
        request = getattr(self, "context", {}).get("request")
        if not report_contact_visible(getattr(request, "user", None), report):
            data["phone"] = None
            data["attachments"] = []
        return data


class ReportStaffOutput(PersonalDataSerializerMixin, _ContactByPolicy, ReportCitizenOutput):
    """What staff in scope see: the reporter's view plus contact and provenance. The
    phone and photos follow ``apps.incidents.policies`` (``null`` and none otherwise);
    showing the contact phone is audited."""

    audit_object_type = "incidents.report"
    audit_personal_fields = ("phone",)

    phone = serializers.CharField(allow_null=True)
    reporter_id = serializers.IntegerField(allow_null=True)
    channel = ChannelField()
    extra = serializers.DictField()
    device_id = serializers.CharField()
    incident = ReportIncidentOutput(allow_null=True)
    triaged_by_id = serializers.IntegerField(allow_null=True)
    reopen_reason = serializers.CharField()
    attachments = ReportStaffAttachmentOutput(many=True)  # type: ignore[assignment]


def report_created_body(report: Report, tracking_url: str) -> dict[str, Any]:
    """The 201 answer to a new report (the shape :class:`ReportCreatedOutput` documents),
    built without a serializer: the fast intake path answers hundreds a second with it,
    and the view answers with the same function, so the two cannot drift."""
    region = report.region
    return {
        "id": report.pk,
        "token": report.token,
        "status": str(report.status),
        "public_status": str(PublicStatus.RECEIVED),
        "is_sos": report.is_sos,
        "region": {"code": region.code, "name_zh": region.name_zh, "name_en": region.name_en},
        "created_at": drf_datetime(report.created_at),
        "tracking_url": tracking_url,
    }


def drf_datetime(value: datetime) -> str:
    """A datetime as DRF's ``DateTimeField`` renders it (local time, ``Z`` for UTC)."""
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def tracking_url(request: Request, token: str) -> str:
    return request.build_absolute_uri(reverse("v1:report-track", kwargs={"token": token}))


# The schema of the 201 answer; the body itself is built by report_created_body.
class ReportCreatedOutput(serializers.Serializer):
    id = serializers.IntegerField()
    token = serializers.CharField(
        help_text=_("Keep it: an anonymous reporter follows the report with it.")
    )
    status = ReportStatusField()
    public_status = serializers.SerializerMethodField()
    is_sos = serializers.BooleanField()
    region = ReportRegionOutput()
    created_at = serializers.DateTimeField()
    tracking_url = serializers.SerializerMethodField()

    @extend_schema_field(PublicStatusField())
    def get_public_status(self, report: Report) -> str:
        return str(public_status_for(report))

    @extend_schema_field(OpenApiTypes.URI)
    def get_tracking_url(self, report: Report) -> str:
        path = reverse("v1:report-track", kwargs={"token": report.token})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


# --- Input shapes ------------------------------------------------------------------------


class ReportSubmitInput(serializers.Serializer):
    category = serializers.CharField(
        max_length=CATEGORY_MAX_LENGTH, help_text=_("Category code, e.g. N02.")
    )
    lat = serializers.FloatField(help_text=_("WGS84 latitude."))
    lng = serializers.FloatField(help_text=_("WGS84 longitude."))
    text = serializers.CharField(
        required=False, allow_blank=True, max_length=services.TEXT_MAX_LENGTH, default=""
    )
    phone = serializers.CharField(
        required=False, allow_blank=True, max_length=PHONE_MAX_LENGTH, default=""
    )
    address = serializers.CharField(
        required=False, allow_blank=True, max_length=services.ADDRESS_MAX_LENGTH, default=""
    )
    extra = serializers.JSONField(
        required=False,
        default=dict,
        help_text=_("Category fields as a JSON object (a JSON string in multipart)."),
    )
    community = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=COMMUNITY_MAX_LENGTH,
        help_text=_(
            "Optional: the community or village the reporter picks from the street's list "
            "(regions/{street}/communities/); the location decides the street."
        ),
    )

    def validate_extra(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise serializers.ValidationError(_("Must be a JSON object."), code="invalid")
        return value


class ReportSubmitMultipartInput(ReportSubmitInput):
    """Schema only: the multipart form, with up to 9 photos."""

    photos = serializers.ListField(
        child=serializers.FileField(), required=False, help_text=_("0–9 JPEG/PNG/WebP photos.")
    )


class ReportSosInput(serializers.Serializer):
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    text = serializers.CharField(
        required=False, allow_blank=True, max_length=services.TEXT_MAX_LENGTH, default=""
    )
    phone = serializers.CharField(
        required=False, allow_blank=True, max_length=PHONE_MAX_LENGTH, default=""
    )


class ReportRatingInput(serializers.Serializer):
    rating = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=services.REASON_MAX_LENGTH, default=""
    )


class ReportReopenInput(serializers.Serializer):
    reason = serializers.CharField(max_length=services.REASON_MAX_LENGTH)


DEVICE_PARAMETER = OpenApiParameter(
    name="X-Device-Id",
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="The app's install id; rate limits count per device.",
)

SUBMIT_ERRORS = {
    400: error_response(
        "invalid (extra.fields: lat, lng, phone, text...) / category_unknown (field category) / "
        "category_field_invalid / attachment_invalid / attachment_too_large / "
        "too_many_attachments (field photos) / parse_error / idempotency_key_invalid"
    ),
    409: error_response("idempotency_in_progress"),
    415: error_response("unsupported_media_type"),
    422: error_response("point_outside_area / idempotency_key_reused"),
    429: error_response("rate_limited (Retry-After header, extra.retry_after)"),
}


# --- Submit ------------------------------------------------------------------------------


class ReportSubmitApi(APIView):
    """A citizen reports a hazard: category, text, 0–9 photos, location, optional phone.

    Anonymous is allowed; the answer carries the tracking token. The report and its
    photos are committed before the 201 is sent.
    """

    permission_classes = (AllowAny,)
    parser_classes = (SafeMultiPartParser, SafeFormParser, SafeJSONParser)
    throttle_classes = tuple(REPORT_THROTTLES)

    @extend_schema(
        tags=[TAG],
        summary=_("Submit a report (anonymous allowed)"),
        parameters=[IDEMPOTENCY_KEY_PARAMETER, DEVICE_PARAMETER],
        request={
            "multipart/form-data": ReportSubmitMultipartInput,
            "application/json": ReportSubmitInput,
        },
        responses={201: ReportCreatedOutput, **SUBMIT_ERRORS},
    )
    def post(self, request: Request) -> Response:
        claim = claim_from(request)

        def submit(answer: services.AnswerFor) -> services.Submitted:
            data = ReportSubmitInput(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            return services.report_take(
                category_code=values["category"],
                lat=values["lat"],
                lng=values["lng"],
                text=values["text"],
                phone=values["phone"],
                address=values["address"],
                extra=values["extra"],
                community=values["community"],
                photos=photos_from(request),
                reporter=request.user,
                channel=Report.Channel.APP,
                client_ip=client_ip(request),
                device_id=device_id_from(request),
                claim=claim,
                answer=answer,
            )

        return _created(request, claim, submit)


class ReportSosApi(APIView):
    """One-touch SOS: location and optional text; lands first in the triage queue."""

    permission_classes = (AllowAny,)
    # A stale token must never stand between a person in danger and the command centre.
    authentication_classes = (LenientJWTAuthentication,)
    parser_classes = (SafeJSONParser, SafeFormParser, SafeMultiPartParser)
    throttle_classes = tuple(SOS_THROTTLES)

    @extend_schema(
        tags=[TAG],
        summary=_("SOS: one-touch emergency report"),
        parameters=[IDEMPOTENCY_KEY_PARAMETER, DEVICE_PARAMETER],
        request=ReportSosInput,
        responses={
            201: ReportCreatedOutput,
            **SUBMIT_ERRORS,
            422: error_response(
                "point_outside_area (extra.emergency_numbers) / idempotency_key_reused"
            ),
        },
    )
    def post(self, request: Request) -> Response:
        claim = claim_from(request)

        def submit(answer: services.AnswerFor) -> services.Submitted:
            data = ReportSosInput(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            return services.report_take(
                is_sos=True,
                lat=values["lat"],
                lng=values["lng"],
                text=values["text"],
                phone=values["phone"],
                reporter=request.user,
                client_ip=client_ip(request),
                device_id=device_id_from(request),
                claim=claim,
                answer=answer,
            )

        return _created(request, claim, submit)


def _created(
    request: Request,
    claim: Claim | None,
    submit: Callable[[services.AnswerFor], services.Submitted],
) -> Response:
    """Run ``submit`` (input check + a report service) and answer: 201 with the new
    report, or the stored answer of a retry (``Idempotent-Replayed: true``). A retry of
    a request answered before gets that answer even if its input would be refused now
    (its category was retired since, say)."""

    def answer(report: Report, draft: services.ReportDraft) -> dict[str, Any]:
        return report_created_body(report, tracking_url(request, report.token))

    try:
        outcome = submit(answer)
    except (serializers.ValidationError, ApplicationError):
        earlier = claims_replay([claim]).get(claim.ident) if claim is not None else None
        if isinstance(earlier, Replay):
            return replay_response(earlier)
        raise
    if outcome.replay is not None:
        return replay_response(outcome.replay)
    if outcome.report is None:  # report_submit raises every refusal; never reached
        raise ApplicationError(ErrorCode.INVALID, status=400)
    return Response(answer(outcome.report, outcome.draft), status=status.HTTP_201_CREATED)


# --- The reporter's reads ----------------------------------------------------------------


class ReportMineApi(ListAPIView):
    """A registered citizen's own reports, newest first (cursor pagination)."""

    permission_classes = (IsAuthenticated,)
    serializer_class = ReportCitizenOutput
    pagination_class = CursorPagination

    def get_queryset(self) -> Any:
        return selectors.report_list_mine(user=self.request.user)

    @extend_schema(
        tags=[TAG],
        summary=_("My reports"),
        responses={200: ReportCitizenOutput(many=True), 401: error_response("not_authenticated")},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)


class ReportDetailApi(APIView):
    """One of my reports (as its reporter), or a report in my scope (as staff)."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(
        tags=[TAG],
        summary=_("A report by id (its reporter, or staff in scope)"),
        responses={
            200: OpenApiResponse(
                # Either shape, by who asks: the fuzz tests validate every answer.
                response=PolymorphicProxySerializer(
                    component_name="ReportDetailOutput",
                    serializers=[ReportTrackOutput, ReportStaffOutput],
                    resource_type_field_name=None,
                ),
                description=_("The reporter's view; staff in scope get ReportStaffOutput."),
            ),
            401: error_response("not_authenticated"),
            404: error_response("report_not_found"),
        },
    )
    def get(self, request: Request, report_id: int) -> Response:
        context = {"request": request}
        try:
            report = selectors.report_get_for_reporter(report_id=report_id, user=request.user)
        except ApplicationError:
            if not selectors.report_can_read_as_staff(request.user):
                raise
            report = selectors.report_get_for_staff(report_id=report_id, user=request.user)
            return Response(ReportStaffOutput(report, context=context).data)
        return Response(ReportTrackOutput(report, context=context).data)


class ReportTrackApi(APIView):
    """Anonymous follow-up with the tracking token: status, reason, public timeline."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(
        tags=[TAG],
        summary=_("Follow a report by its tracking token"),
        responses={200: ReportTrackOutput, 404: error_response("report_not_found")},
    )
    def get(self, request: Request, token: str) -> Response:
        report = selectors.report_get_by_token(token=token)
        context = {"request": request, "token": token}
        return Response(ReportTrackOutput(report, context=context).data)


# --- The reporter's follow-up --------------------------------------------------------------

RATE_RESPONSES = {
    200: ReportTrackOutput,
    400: error_response("invalid (fields rating, comment)"),
    404: error_response("report_not_found"),
    409: error_response("report_not_rateable (not closed) / report_already_rated"),
    422: error_response("idempotency_key_reused"),
}
REOPEN_RESPONSES = {
    200: ReportTrackOutput,
    400: error_response("invalid (field reason)"),
    404: error_response("report_not_found"),
    409: error_response("reopen_not_allowed / reopen_window_closed"),
    422: error_response("idempotency_key_reused"),
}


def _rate(request: Request, report: Report, context: dict[str, Any]) -> Response:
    data = ReportRatingInput(data=request.data)
    data.is_valid(raise_exception=True)
    services.report_rate(
        report=report,
        rating=data.validated_data["rating"],
        comment=data.validated_data["comment"],
        by=request.user,
    )
    return Response(ReportTrackOutput(_reread(report, context), context=context).data)


def _reopen(request: Request, report: Report, context: dict[str, Any]) -> Response:
    data = ReportReopenInput(data=request.data)
    data.is_valid(raise_exception=True)
    services.report_request_reopen(
        report=report, reason=data.validated_data["reason"], by=request.user
    )
    return Response(ReportTrackOutput(_reread(report, context), context=context).data)


def _reread(report: Report, context: dict[str, Any]) -> Report:
    if context.get("token"):
        return selectors.report_get_by_token(token=context["token"])
    return selectors.report_get_for_reporter(report_id=report.pk, user=context["request"].user)


class ReportTrackRatingApi(APIView):
    """Rate a closed report (1–5, optional comment), once; by tracking token."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(
        tags=[TAG],
        summary=_("Rate a closed report by its tracking token"),
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        request=ReportRatingInput,
        responses=RATE_RESPONSES,
    )
    @idempotent
    def post(self, request: Request, token: str) -> Response:
        report = selectors.report_get_by_token(token=token)
        return _rate(request, report, {"request": request, "token": token})


class ReportTrackReopenApi(APIView):
    """Ask for a closed report to be reopened, within the window; by tracking token."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(
        tags=[TAG],
        summary=_("Request reopening by tracking token"),
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        request=ReportReopenInput,
        responses=REOPEN_RESPONSES,
    )
    @idempotent
    def post(self, request: Request, token: str) -> Response:
        report = selectors.report_get_by_token(token=token)
        return _reopen(request, report, {"request": request, "token": token})


class ReportRatingApi(APIView):
    """Rate one of my closed reports."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(
        tags=[TAG],
        summary=_("Rate one of my closed reports"),
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        request=ReportRatingInput,
        responses=RATE_RESPONSES,
    )
    @idempotent
    def post(self, request: Request, report_id: int) -> Response:
        report = selectors.report_get_for_reporter(report_id=report_id, user=request.user)
        return _rate(request, report, {"request": request})


class ReportReopenApi(APIView):
    """Request reopening of one of my closed reports."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(
        tags=[TAG],
        summary=_("Request reopening of one of my closed reports"),
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        request=ReportReopenInput,
        responses=REOPEN_RESPONSES,
    )
    @idempotent
    def post(self, request: Request, report_id: int) -> Response:
        report = selectors.report_get_for_reporter(report_id=report_id, user=request.user)
        return _reopen(request, report, {"request": request})
