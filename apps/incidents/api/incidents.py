"""Staff incident API: list/filter, detail with timeline, create, transitions, sync.

Views parse input, call one selector or service and serialise the result (conventions R7).
Access (the role table, ``docs/roles.md``; ``apps.incidents.selectors.incidents``):
staff and field roles read inside their scope, operators/commanders/admins covering the
incident's region act on it, liaisons add notes, citizens get 403, an incident outside
the caller's scope is 404. The reporter's name, phone and the photos only for whom
``apps.incidents.policies`` allows (``null`` and an empty list for the others).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit.personal import PersonalDataSerializerMixin
from apps.core.api.schema import error_response
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from apps.core.pagination import CursorPagination
from apps.incidents.api.attachment_urls import attachment_url
from apps.incidents.models import (
    Category,
    Incident,
    IncidentEvent,
    Loop,
    Priority,
    Severity,
    Source,
)
from apps.incidents.selectors import incidents as selectors
from apps.incidents.selectors.incidents import IncidentDetail
from apps.incidents.services import incidents as services
from apps.incidents.taxonomy import severity_suggestion
from apps.incidents.transitions import allowed_actions
from apps.regions.selectors import locate_street

TAG = "incidents"


COMMON_ERRORS = {
    401: error_response(_("Not logged in")),
    403: error_response(_("permission_denied: not staff, or read-only in this region")),
    404: error_response(_("not_found: unknown, or outside my regions")),
}


# --- Permissions ---------------------------------------------------------------------------


class IsIncidentStaff(BasePermission):
    """Staff and field roles (in some region) may use this API; citizens may not."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.incident_can_read(request.user)


def _incident_for_command(request: Request, incident_id: int, *, note: bool = False) -> Incident:
    """The incident if the caller may act on it (``note``: may add a note to it): 404
    outside scope, 403 read-only."""
    incident = selectors.incident_get(user=request.user, incident_id=incident_id)
    allowed = selectors.incident_can_note if note else selectors.incident_can_command
    if not allowed(request.user, incident):
        raise PermissionDenied
    return incident


# --- Output serializers --------------------------------------------------------------------


class IncidentCategoryOutput(serializers.Serializer):
    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    incident_class = serializers.CharField()


class IncidentRegionOutput(serializers.Serializer):
    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    level = serializers.CharField()


class IncidentOutput(serializers.Serializer):
    """An incident as lists, sync and transition answers show it."""

    id = serializers.IntegerField()
    number = serializers.CharField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Incident.Status.choices)
    severity = serializers.ChoiceField(choices=Severity.choices)
    loop = serializers.ChoiceField(choices=Loop.choices)
    priority = serializers.ChoiceField(choices=Priority.choices)
    source = serializers.ChoiceField(choices=Source.choices)
    category = IncidentCategoryOutput()
    region = IncidentRegionOutput()
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    address = serializers.CharField()
    is_drill = serializers.BooleanField()
    deaths = serializers.IntegerField()
    injured = serializers.IntegerField()
    missing = serializers.IntegerField()
    trapped = serializers.IntegerField()
    merged_into = serializers.IntegerField(source="merged_into_id", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    accepted_at = serializers.DateTimeField(allow_null=True)
    in_progress_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)


class IncidentActorOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="__str__")


class IncidentEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=IncidentEvent.Kind.choices)
    at = serializers.DateTimeField()
    actor = IncidentActorOutput(allow_null=True)
    data = serializers.DictField()
    public = serializers.BooleanField()


class IncidentAttachmentOutput(serializers.Serializer):
    """A photo's metadata; ``file`` and ``thumbnail`` are the checked downloads
    (``attachments/{id}/``), never public media URLs."""

    id = serializers.IntegerField()
    report = serializers.IntegerField(source="report_id", allow_null=True)
    incident = serializers.IntegerField(source="incident_id", allow_null=True)
    content_type = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    size = serializers.IntegerField()
    file = serializers.SerializerMethodField()
    thumbnail = serializers.SerializerMethodField()
    exif_lat = serializers.FloatField(allow_null=True)
    exif_lng = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_file(self, attachment: Any) -> str:
        return attachment_url(attachment, request=self.context.get("request"))

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail(self, attachment: Any) -> str:
        return attachment_url(attachment, request=self.context.get("request"), thumbnail=True)


class _ReporterByPolicy:
    """The reporter's name and phone only when the context says the viewer may see them
    (``show_contact``, decided by ``apps.incidents.policies``; absent: hidden). In the
    bases after the audit mixin, so the audit records only what is really shown."""

    def to_representation(self, incident: Incident) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(incident)  # type: ignore[misc]
        if not getattr(self, "context", {}).get("show_contact", False):
            data["reporter_name"] = None
            data["reporter_phone"] = None
        return data


class IncidentFullOutput(PersonalDataSerializerMixin, _ReporterByPolicy, IncidentOutput):
    audit_object_type = "incidents.incident"  # showing the reporter is audited
    audit_personal_fields = ("reporter_name", "reporter_phone")

    description = serializers.CharField()
    reporter_name = serializers.CharField(
        allow_null=True, help_text=_("Only for the assigned team and staff in scope (else null).")
    )
    reporter_phone = serializers.CharField(
        allow_null=True, help_text=_("Only for the assigned team and staff in scope (else null).")
    )
    extra = serializers.DictField()
    rejection_reason = serializers.CharField()
    resolution = serializers.CharField()
    severity_suggestion = serializers.SerializerMethodField(
        help_text=_("Severity suggested by the category fields (e.g. water depth).")
    )
    allowed_actions = serializers.SerializerMethodField(
        help_text=_("Actions the current status allows (not whether I may do them).")
    )

    @extend_schema_field(OpenApiTypes.STR)  # one of the severity values
    def get_severity_suggestion(self, incident: Incident) -> str:
        return severity_suggestion(incident.category, incident.extra)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_actions(self, incident: Incident) -> list[str]:
        return allowed_actions(incident.status)


class IncidentDetailOutput(IncidentFullOutput):
    """An incident with its timeline, linked report ids and photo metadata."""

    timeline = IncidentEventOutput(many=True)
    report_ids = serializers.ListField(child=serializers.IntegerField())
    attachments = IncidentAttachmentOutput(many=True)

    def to_representation(self, detail: IncidentDetail) -> dict[str, Any]:
        context = {**self.context, "show_contact": detail.show_contact}
        data: dict[str, Any] = dict(IncidentFullOutput(detail.incident, context=context).data)
        data["timeline"] = IncidentEventOutput(detail.timeline, many=True).data
        data["report_ids"] = detail.report_ids
        data["attachments"] = IncidentAttachmentOutput(
            detail.attachments, many=True, context=self.context
        ).data
        return data


def _detail_response(request: Request, incident_id: int, code: int = 200) -> Response:
    detail = selectors.incident_detail(user=request.user, incident_id=incident_id)
    return Response(IncidentDetailOutput(detail, context={"request": request}).data, status=code)


# --- List and create -----------------------------------------------------------------------


class IncidentPagination(CursorPagination):
    ordering = ("-created_at", "-id")


OPERATOR_SOURCES = frozenset({Source.HOTLINE, Source.PATROL, Source.OPERATOR})


class IncidentCreateInput(serializers.Serializer):
    category = serializers.SlugRelatedField(
        slug_field="code", queryset=Category.objects.filter(is_active=True)
    )
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lng = serializers.FloatField(min_value=-180, max_value=180)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    address = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)
    source = serializers.ChoiceField(
        choices=Source.choices,
        default=Source.OPERATOR,
        help_text=_("hotline, patrol or operator; the others have their own intake."),
    )
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.UNCLASSIFIED)
    loop = serializers.ChoiceField(choices=Loop.choices, default=Loop.SMALL)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    extra = serializers.DictField(required=False, default=dict)
    reporter_name = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=100
    )
    reporter_phone = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=20
    )
    is_drill = serializers.BooleanField(default=False)
    accept = serializers.BooleanField(
        default=False, help_text=_("Create it already accepted (classified by the operator).")
    )

    def validate_source(self, value: str) -> str:
        # Citizen reports come through triage, sensor alarms through monitoring.
        if value not in OPERATOR_SOURCES:
            raise serializers.ValidationError(_("Not a source an operator creates."))
        return value


class IncidentListCreateApi(GenericAPIView):
    """Incidents in my regions; operators create hotline/patrol/operator incidents."""

    permission_classes = [IsAuthenticated, IsIncidentStaff]
    pagination_class = IncidentPagination
    filterset_class = selectors.IncidentFilter
    serializer_class = IncidentOutput
    queryset = Incident.objects.none()  # for the schema generator; the selector scopes

    def filter_queryset(self, queryset: Any) -> Any:
        # The selector already applied the filters (and validated them); the declared
        # filterset_class is there so the schema documents the query parameters.
        return queryset

    @extend_schema(
        tags=[TAG],
        summary=_("Incidents in my regions, newest first"),
        responses={
            200: IncidentOutput(many=True),
            400: error_response(_("invalid: bad filter value")),
            **COMMON_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.incident_list(user=request.user, filters=request.query_params)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(IncidentOutput(page, many=True).data)

    @extend_schema(
        tags=[TAG],
        summary=_("Create an incident (hotline transfer, patrol, operator)"),
        description=_(
            "The region is the street responsible for the location. The caller must be "
            "an operator, commander or admin of that street (or above)."
        ),
        request=IncidentCreateInput,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            201: IncidentDetailOutput,
            400: error_response(_("invalid / category_field_invalid")),
            401: COMMON_ERRORS[401],
            403: error_response(_("permission_denied / out_of_scope")),
            422: error_response(_("point_outside_area")),
        },
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = IncidentCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        region = locate_street(values["lat"], values["lng"])
        if not selectors.incident_can_command_at(request.user, region.path):
            raise ApplicationError(ErrorCode.OUT_OF_SCOPE, status=403)
        accept = values.pop("accept")
        incident = services.incident_create(
            **values,
            region=region,
            by=request.user,
            status=Incident.Status.ACCEPTED if accept else Incident.Status.REPORTED,
        )
        return _detail_response(request, incident.pk, status.HTTP_201_CREATED)


class IncidentDetailApi(APIView):
    permission_classes = [IsAuthenticated, IsIncidentStaff]

    @extend_schema(
        tags=[TAG],
        summary=_("One incident with its timeline, reports and photos"),
        responses={200: IncidentDetailOutput, **COMMON_ERRORS},
    )
    def get(self, request: Request, incident_id: int) -> Response:
        return _detail_response(request, incident_id)


# --- Offline sync --------------------------------------------------------------------------


class IncidentChangesOutput(serializers.Serializer):
    results = IncidentOutput(many=True)
    next_cursor = serializers.CharField(
        help_text=_("Send this as ?cursor= next time (empty: start from the beginning).")
    )
    has_more = serializers.BooleanField()


class IncidentChangesApi(APIView):
    """Offline sync: incidents changed after a cursor, oldest change first."""

    permission_classes = [IsAuthenticated, IsIncidentStaff]

    class InputSerializer(serializers.Serializer):
        cursor = serializers.CharField(required=False, allow_blank=True, default="")
        limit = serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=selectors.SYNC_LIMIT_MAX,
            default=selectors.SYNC_LIMIT_DEFAULT,
        )

    @extend_schema(
        tags=[TAG],
        summary=_("Incidents changed since a cursor (offline sync)"),
        description=_(
            "Includes merged, closed and rejected incidents so the client can drop them. "
            "Changes younger than a couple of seconds are delivered on the next call."
        ),
        parameters=[
            OpenApiParameter("cursor", str, description=_("next_cursor of the last call")),
            OpenApiParameter("limit", int, description=_("at most this many (1-500)")),
        ],
        responses={
            200: IncidentChangesOutput,
            400: error_response(_("invalid: bad cursor")),
            **COMMON_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        page = selectors.incident_changes_since(
            user=request.user,
            cursor=params.validated_data["cursor"] or None,
            limit=params.validated_data["limit"],
        )
        return Response(IncidentChangesOutput(page).data)


# --- Transitions ---------------------------------------------------------------------------


class _NoInput(serializers.Serializer):
    pass


class IncidentCommandApi(APIView):
    """Base of the transition endpoints: one POST each, idempotent, answering with the
    incident. Subclasses set ``InputSerializer`` and implement :meth:`execute`."""

    permission_classes = [IsAuthenticated, IsIncidentStaff]
    InputSerializer: ClassVar[type[serializers.Serializer]] = _NoInput
    OutputSerializer: ClassVar[type[serializers.Serializer]] = IncidentOutput
    success_status = status.HTTP_200_OK
    note = False  # True: liaisons may call it too (incident.note, not incident.command)

    def execute(self, *, request: Request, incident: Incident, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    @idempotent
    def post(self, request: Request, incident_id: int) -> Response:
        incident = _incident_for_command(request, incident_id, note=self.note)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = self.execute(request=request, incident=incident, data=dict(data.validated_data))
        if isinstance(result, Incident):
            # The service returns the locked row without relations; reuse the ones the
            # selector loaded rather than querying again (a new category is already set).
            if not Incident.category.is_cached(result):
                result.category = incident.category
            result.region = incident.region
        return Response(self.OutputSerializer(result).data, status=self.success_status)


def _command_schema(summary: Any, request: Any, *, errors: Any, response: Any = None) -> Any:
    return extend_schema(
        tags=[TAG],
        summary=summary,
        request=request,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200 if response is None else 201: response or IncidentOutput,
            400: error_response(_("invalid")),
            **COMMON_ERRORS,
            409: error_response(errors),
        },
    )


_ILLEGAL = _("illegal_transition (extra: from, action, to)")


class ClassificationInput(serializers.Serializer):
    category = serializers.SlugRelatedField(
        slug_field="code", queryset=Category.objects.filter(is_active=True), required=False
    )
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    loop = serializers.ChoiceField(choices=Loop.choices, required=False)


@_command_schema(_("Accept (受理) a reported incident"), ClassificationInput, errors=_ILLEGAL)
class IncidentAcceptApi(IncidentCommandApi):
    InputSerializer = ClassificationInput

    def execute(self, *, request: Request, incident: Incident, data: dict[str, Any]) -> Any:
        return services.incident_accept(incident_id=incident.pk, by=request.user, **data)


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=services.TEXT_MAX_LENGTH)


@_command_schema(_("Reject (不予受理) a reported incident"), ReasonInput, errors=_ILLEGAL)
class IncidentRejectApi(IncidentCommandApi):
    InputSerializer = ReasonInput

    def execute(self, *, request: Request, incident: Incident, data: dict[str, Any]) -> Any:
        return services.incident_reject(
            incident_id=incident.pk, by=request.user, reason=data["reason"]
        )


@_command_schema(_("Start handling (accepted → in progress)"), None, errors=_ILLEGAL)
class IncidentStartApi(IncidentCommandApi):
    def execute(self, *, request: Request, incident: Incident, data: dict[str, Any]) -> Any:
        return services.incident_start(incident_id=incident.pk, by=request.user)


class ResolveInput(serializers.Serializer):
    resolution = serializers.CharField(max_length=services.TEXT_MAX_LENGTH)


@_command_schema(_("Resolve (办结) with the result"), ResolveInput, errors=_ILLEGAL)
class IncidentResolveApi(IncidentCommandApi):
    InputSerializer = ResolveInput

    def execute(self, *, request: Request, incident: Incident, data: dict[str, Any]) -> Any:
        return services.incident_resolve(
            incident_id=incident.pk, by=request.user, resolution=data["resolution"]
        )


class CloseInput(serializers.Serializer):
    note = serializers.CharField(
        max_length=services.TEXT_MAX_LENGTH, required=False, allow_blank=True, default=""
    )


@_command_schema(_("Close (核查销号) after verification"), CloseInput, errors=_ILLEGAL)
class IncidentCloseApi(IncidentCommandApi):
    InputSerializer = CloseInput

    def execute(self, *, request: Request, incident: Incident, data: dict[str, Any]) -> Any:
        return services.incident_close(incident_id=incident.pk, by=request.user, note=data["note"])


@_command_schema(_("Reopen a closed incident (verification failed)"), ReasonInput, errors=_ILLEGAL)
class IncidentReopenApi(IncidentCommandApi):
    InputSerializer = ReasonInput

    def execute(self, *, request: Request, incident: Incident, data: dict[str, Any]) -> Any:
        return services.incident_reopen(
            incident_id=incident.pk, by=request.user, reason=data["reason"]
        )


class MergeInput(serializers.Serializer):
    into = serializers.IntegerField(help_text=_("Id of the incident this one duplicates."))


@_command_schema(
    _("Merge this duplicate into another incident"),
    MergeInput,
    errors=_("illegal_transition / merge_target_invalid (extra.reason)"),
)
class IncidentMergeApi(IncidentCommandApi):
    InputSerializer = MergeInput

    def execute(self, *, request: Request, incident: Incident, data: dict[str, Any]) -> Any:
        if data["into"] == incident.pk:
            # Let the service refuse it with its own code (not a 404 below).
            return services.incident_merge(
                incident_id=incident.pk, into_id=data["into"], by=request.user
            )
        target = _incident_for_command(request, data["into"])
        return services.incident_merge(incident_id=incident.pk, into_id=target.pk, by=request.user)


@_command_schema(_("Change category, severity or loop"), ClassificationInput, errors=_ILLEGAL)
class IncidentClassifyApi(IncidentCommandApi):
    InputSerializer = ClassificationInput

    def execute(self, *, request: Request, incident: Incident, data: dict[str, Any]) -> Any:
        return services.incident_classify(incident_id=incident.pk, by=request.user, **data)


CASUALTIES_MAX = 1_000_000  # a figure beyond this is a typo, and beyond 2**31 no column holds it


class CasualtiesInput(serializers.Serializer):
    deaths = serializers.IntegerField(min_value=0, max_value=CASUALTIES_MAX, required=False)
    injured = serializers.IntegerField(min_value=0, max_value=CASUALTIES_MAX, required=False)
    missing = serializers.IntegerField(min_value=0, max_value=CASUALTIES_MAX, required=False)
    trapped = serializers.IntegerField(min_value=0, max_value=CASUALTIES_MAX, required=False)
    note = serializers.CharField(
        max_length=services.TEXT_MAX_LENGTH, required=False, allow_blank=True, default=""
    )


@_command_schema(_("Revise the casualty figures"), CasualtiesInput, errors=_ILLEGAL)
class IncidentCasualtiesApi(IncidentCommandApi):
    InputSerializer = CasualtiesInput

    def execute(self, *, request: Request, incident: Incident, data: dict[str, Any]) -> Any:
        return services.incident_revise_casualties(incident_id=incident.pk, by=request.user, **data)


class NoteInput(serializers.Serializer):
    text = serializers.CharField(max_length=services.TEXT_MAX_LENGTH)
    public = serializers.BooleanField(
        default=False, help_text=_("Show it to the reporting citizens too.")
    )


@_command_schema(
    _("Add a note to the timeline"), NoteInput, errors=_ILLEGAL, response=IncidentEventOutput
)
class IncidentNotesApi(IncidentCommandApi):
    InputSerializer = NoteInput
    OutputSerializer = IncidentEventOutput
    success_status = status.HTTP_201_CREATED
    note = True

    def execute(self, *, request: Request, incident: Incident, data: dict[str, Any]) -> Any:
        return services.incident_add_note(
            incident_id=incident.pk, by=request.user, text=data["text"], public=data["public"]
        )


__all__ = [
    "IncidentAcceptApi",
    "IncidentCasualtiesApi",
    "IncidentChangesApi",
    "IncidentClassifyApi",
    "IncidentCloseApi",
    "IncidentDetailApi",
    "IncidentListCreateApi",
    "IncidentMergeApi",
    "IncidentNotesApi",
    "IncidentRejectApi",
    "IncidentReopenApi",
    "IncidentResolveApi",
    "IncidentStartApi",
]
