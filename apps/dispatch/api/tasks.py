"""Dispatch-task API: operators dispatch and direct, responders work their tasks.

Views parse input, call one selector or service and serialise the result (conventions R7).
Access (``apps.dispatch.selectors.tasks``): operators of the incident (or the open
command post) dispatch, cancel, reassign, instruct, verify and return; active members of
the task's team accept, decline, go en route, arrive, complete and acknowledge the push;
unknown or out-of-scope objects are 404, visible-but-not-yours 403. Every mobile POST
honours ``Idempotency-Key``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit.personal import audit_personal_read
from apps.core.api.parsers import SafeFormParser, SafeJSONParser, SafeMultiPartParser
from apps.core.errors import ApplicationError
from apps.core.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from apps.core.pagination import CursorPagination
from apps.dispatch.errors import DispatchErrorCode
from apps.dispatch.models import CommandPost, DispatchTask, RoomMessage, TaskStatus
from apps.dispatch.selectors import tasks as selectors
from apps.dispatch.selectors.tasks import TaskDetail
from apps.dispatch.services import command_post as post_services
from apps.dispatch.services import room as room_services
from apps.dispatch.services import tasks as services
from apps.dispatch.services.tasks import TaskOutcome
from apps.dispatch.task_transitions import task_allowed_actions
from apps.incidents.api.attachment_urls import attachment_url
from apps.incidents.models import Incident, IncidentStatus, Loop, Priority, Severity

TAG_TASKS = "dispatch tasks"
TAG_MOBILE = "responder tasks"
TAG_ROOM = "incident room"
TAG_POST = "command post"

ErrorOutput = inline_serializer(
    name="DispatchTaskErrorEnvelope",
    fields={
        "code": serializers.CharField(),
        "message": serializers.CharField(),
        "extra": serializers.DictField(),
    },
)


def error_response(description: Any) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorOutput, description=description)


COMMON_ERRORS = {
    400: error_response(_("invalid")),
    401: error_response(_("Not logged in")),
    403: error_response(_("permission_denied / not_team_member / command_post_in_charge")),
    404: error_response(_("not_found / task_not_found: unknown, or not mine to see")),
    409: error_response(_("illegal_task_transition (extra: from, action, to) and other states")),
}


# --- Output serializers --------------------------------------------------------------------


class TaskTeamOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    department = serializers.CharField(
        source="department.code", allow_null=True, default=None, help_text=_("Department code.")
    )


class TaskCategoryOutput(serializers.Serializer):
    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()


class TaskIncidentOutput(serializers.Serializer):
    """The incident as a task card shows it."""

    id = serializers.IntegerField()
    number = serializers.CharField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=IncidentStatus.choices)
    category = TaskCategoryOutput()
    severity = serializers.ChoiceField(choices=Severity.choices)
    loop = serializers.ChoiceField(choices=Loop.choices)
    priority = serializers.ChoiceField(choices=Priority.choices)
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    address = serializers.CharField()
    is_drill = serializers.BooleanField()


class TaskOutput(serializers.Serializer):
    """A dispatch task with every KPI timestamp."""

    id = serializers.IntegerField()
    incident = TaskIncidentOutput()
    team = TaskTeamOutput()
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    instructions = serializers.CharField()
    cross_department = serializers.BooleanField()
    dispatched_by = serializers.IntegerField(source="dispatched_by_id", allow_null=True)
    dispatched_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    accepted_at = serializers.DateTimeField(allow_null=True)
    accepted_by = serializers.IntegerField(source="accepted_by_id", allow_null=True)
    declined_at = serializers.DateTimeField(allow_null=True)
    decline_reason = serializers.CharField()
    expired_at = serializers.DateTimeField(allow_null=True)
    en_route_at = serializers.DateTimeField(allow_null=True)
    on_scene_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    result = serializers.CharField()
    verified_at = serializers.DateTimeField(allow_null=True)
    returned_at = serializers.DateTimeField(allow_null=True)
    return_reason = serializers.CharField()
    cancelled_at = serializers.DateTimeField(allow_null=True)
    cancel_reason = serializers.CharField()
    allowed_actions = serializers.SerializerMethodField(
        help_text=_("Actions the current status allows (not whether I may do them).")
    )

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_actions(self, task: DispatchTask) -> list[str]:
        return task_allowed_actions(task.status)


class ProposalReasonOutput(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class ProposalOutput(serializers.Serializer):
    """The next recommended team (a suggestion: nothing is dispatched)."""

    team = TaskTeamOutput()
    score = serializers.FloatField()
    distance_km = serializers.FloatField(allow_null=True)
    eta_minutes = serializers.FloatField(allow_null=True)
    reasons = ProposalReasonOutput(many=True)


class TaskOutcomeOutput(serializers.Serializer):
    task = TaskOutput()
    proposal = ProposalOutput(allow_null=True)


class TaskEventOutput(serializers.Serializer):
    kind = serializers.CharField()
    at = serializers.DateTimeField()
    actor = serializers.IntegerField(source="actor_id", allow_null=True)
    data = serializers.DictField()


class HazardOutput(serializers.Serializer):
    """Another open incident near the scene that the viewer may see (their scope)."""

    id = serializers.IntegerField(source="incident.id")
    number = serializers.CharField(source="incident.number")
    title = serializers.CharField(source="incident.title")
    category = serializers.CharField(source="incident.category.code")
    status = serializers.ChoiceField(source="incident.status", choices=IncidentStatus.choices)
    lat = serializers.FloatField(source="incident.lat")
    lng = serializers.FloatField(source="incident.lng")
    distance_m = serializers.IntegerField()


class SceneIncidentOutput(TaskIncidentOutput):
    description = serializers.CharField()
    reporter_name = serializers.CharField(
        allow_null=True, help_text=_("Only for the assigned team and staff in scope (else null).")
    )
    reporter_phone = serializers.CharField(
        allow_null=True, help_text=_("Only for the assigned team and staff in scope (else null).")
    )
    trapped = serializers.IntegerField()
    injured = serializers.IntegerField()


class TaskDetailOutput(TaskOutput):
    """A task with what the team needs on scene."""

    incident = SceneIncidentOutput()  # type: ignore[assignment]
    hazards = HazardOutput(
        many=True, help_text=_("Other open incidents within 1 km that I may see.")
    )
    events = TaskEventOutput(many=True)

    def to_representation(self, detail: TaskDetail) -> dict[str, Any]:
        data: dict[str, Any] = dict(TaskOutput(detail.task, context=self.context).data)
        scene = dict(SceneIncidentOutput(detail.task.incident).data)
        if not detail.show_contact:
            scene["reporter_name"] = None
            scene["reporter_phone"] = None
        data["incident"] = scene
        data["hazards"] = HazardOutput(detail.hazards, many=True).data
        data["events"] = TaskEventOutput(detail.events, many=True).data
        return data


def _task_data(task: DispatchTask) -> dict[str, Any]:
    """Re-read the task with its relations (one query) and serialise it: services
    return locked rows without the incident's category and team loaded."""
    fresh = selectors.task_for_output(task_id=task.pk)
    return dict(TaskOutput(fresh).data)


# --- Operator: dispatch and the incident's tasks -------------------------------------------


class DispatchInput(serializers.Serializer):
    team_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=1,
        max_length=50,
        help_text=_(
            "Ids of the teams to send, as teams/, teams/{code}/ and "
            "incidents/{id}/recommendations/ (results[].team.id) give them."
        ),
    )
    instructions = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=services.TEXT_MAX_LENGTH
    )


class IncidentDispatchApi(APIView):
    """派单: send one or several teams; cross-department raises the loop to medium."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG_TASKS],
        summary=_("Dispatch teams to an incident"),
        request=DispatchInput,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: TaskOutput(many=True), **COMMON_ERRORS},
    )
    @idempotent
    def post(self, request: Request, incident_id: int) -> Response:
        incident = selectors.incident_for_dispatch(user=request.user, incident_id=incident_id)
        data = DispatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        tasks = services.task_dispatch(
            incident_id=incident.pk,
            team_ids=data.validated_data["team_ids"],
            by=request.user,
            instructions=data.validated_data["instructions"],
        )
        return Response([_task_data(task) for task in tasks], status=status.HTTP_201_CREATED)


class IncidentTasksApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG_TASKS],
        summary=_("The tasks of an incident, oldest first"),
        responses={200: TaskOutput(many=True), **COMMON_ERRORS},
    )
    def get(self, request: Request, incident_id: int) -> Response:
        incident = selectors.incident_for_dispatch(user=request.user, incident_id=incident_id)
        tasks = selectors.incident_tasks(incident=incident)
        for task in tasks:
            task.incident = incident  # one incident for all: no query per row
        return Response(TaskOutput(tasks, many=True).data)


class _NoInput(serializers.Serializer):
    pass


class TaskReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=services.TEXT_MAX_LENGTH)


class ReassignInput(serializers.Serializer):
    to_team_id = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=services.TEXT_MAX_LENGTH
    )


class InstructionsInput(serializers.Serializer):
    text = serializers.CharField(max_length=services.TEXT_MAX_LENGTH)


class TaskCommandApi(APIView):
    """Base of one-POST-per-action endpoints on a task; subclasses set ``InputSerializer``,
    ``operator`` (who may call) and :meth:`execute` (one service call)."""

    permission_classes = [IsAuthenticated]
    parser_classes: ClassVar[list[Any]] = [SafeJSONParser]
    InputSerializer: ClassVar[type[serializers.Serializer]] = _NoInput
    operator: ClassVar[bool] = True

    def execute(self, *, request: Request, task_id: int, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def input_data(self, request: Request) -> dict[str, Any]:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return dict(data.validated_data)

    @idempotent
    def post(self, request: Request, task_id: int) -> Response:
        data = self.input_data(request)
        if self.operator:
            selectors.task_for_operator(user=request.user, task_id=task_id)  # 404 / 403
            result = self.execute(request=request, task_id=task_id, data=data)
        else:
            # Responder actions: the service checks team membership itself, so the
            # common case reads nothing twice; only a refusal asks whether the caller may
            # even know the task exists (404 rather than 403 outside their view).
            try:
                result = self.execute(request=request, task_id=task_id, data=data)
            except ApplicationError as exc:
                if exc.code in (
                    DispatchErrorCode.NOT_TEAM_MEMBER,
                    DispatchErrorCode.TASK_NOT_FOUND,
                ):
                    selectors.task_for_reader(user=request.user, task_id=task_id)
                raise
        if isinstance(result, TaskOutcome):
            proposal = result.proposal
            return Response(
                {
                    "task": _task_data(result.task),
                    "proposal": ProposalOutput(proposal).data if proposal is not None else None,
                }
            )
        return Response(_task_data(result))


def _task_schema(summary: Any, request: Any, *, response: Any = None, mobile: bool = False) -> Any:
    return extend_schema(
        tags=[TAG_MOBILE if mobile else TAG_TASKS],
        summary=summary,
        request=request,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: response or TaskOutput, **COMMON_ERRORS},
    )


@_task_schema(_("Cancel a task (撤单)"), TaskReasonInput)
class TaskCancelApi(TaskCommandApi):
    InputSerializer = TaskReasonInput

    def execute(self, *, request: Request, task_id: int, data: dict[str, Any]) -> Any:
        return services.task_cancel(task_id=task_id, by=request.user, reason=data["reason"])


@_task_schema(_("Reassign a task to another team (改派); answers the new task"), ReassignInput)
class TaskReassignApi(TaskCommandApi):
    InputSerializer = ReassignInput

    def execute(self, *, request: Request, task_id: int, data: dict[str, Any]) -> Any:
        return services.task_reassign(
            task_id=task_id, to_team_id=data["to_team_id"], by=request.user, reason=data["reason"]
        )


@_task_schema(_("Add instructions to a live task"), InstructionsInput)
class TaskInstructionsApi(TaskCommandApi):
    InputSerializer = InstructionsInput

    def execute(self, *, request: Request, task_id: int, data: dict[str, Any]) -> Any:
        return services.task_add_instructions(task_id=task_id, by=request.user, text=data["text"])


@_task_schema(_("Verify a completed task (核查)"), None)
class TaskVerifyApi(TaskCommandApi):
    def execute(self, *, request: Request, task_id: int, data: dict[str, Any]) -> Any:
        return services.task_verify(task_id=task_id, by=request.user)


@_task_schema(_("Return a completed task for rework (重办)"), TaskReasonInput)
class TaskReturnApi(TaskCommandApi):
    InputSerializer = TaskReasonInput

    def execute(self, *, request: Request, task_id: int, data: dict[str, Any]) -> Any:
        return services.task_return(task_id=task_id, by=request.user, reason=data["reason"])


# --- Responder ---------------------------------------------------------------------------


@_task_schema(_("Accept a task (接单)"), None, mobile=True)
class TaskAcceptApi(TaskCommandApi):
    operator = False

    def execute(self, *, request: Request, task_id: int, data: dict[str, Any]) -> Any:
        return services.task_accept(task_id=task_id, by=request.user)


@_task_schema(
    _("Decline a task with a reason; answers the next proposed team"),
    TaskReasonInput,
    response=TaskOutcomeOutput,
    mobile=True,
)
class TaskDeclineApi(TaskCommandApi):
    operator = False
    InputSerializer = TaskReasonInput

    def execute(self, *, request: Request, task_id: int, data: dict[str, Any]) -> Any:
        return services.task_decline(task_id=task_id, by=request.user, reason=data["reason"])


@_task_schema(_("Set out (出发)"), None, mobile=True)
class TaskEnRouteApi(TaskCommandApi):
    operator = False

    def execute(self, *, request: Request, task_id: int, data: dict[str, Any]) -> Any:
        return services.task_en_route(task_id=task_id, by=request.user)


@_task_schema(_("Arrive on scene (到场)"), None, mobile=True)
class TaskOnSceneApi(TaskCommandApi):
    operator = False

    def execute(self, *, request: Request, task_id: int, data: dict[str, Any]) -> Any:
        return services.task_on_scene(task_id=task_id, by=request.user)


@_task_schema(_("Acknowledge receipt of the task push"), None, mobile=True)
class TaskAckApi(TaskCommandApi):
    operator = False

    def execute(self, *, request: Request, task_id: int, data: dict[str, Any]) -> Any:
        return services.task_ack_delivery(task_id=task_id, by=request.user)


class CompleteInput(serializers.Serializer):
    result = serializers.CharField(max_length=services.TEXT_MAX_LENGTH)
    photos = serializers.ListField(
        child=serializers.FileField(), required=False, default=list, max_length=20
    )


@_task_schema(
    _("Complete a task with the result and photos (multipart, field photos)"),
    {"multipart/form-data": CompleteInput, "application/json": CompleteInput},
    mobile=True,
)
class TaskCompleteApi(TaskCommandApi):
    operator = False
    parser_classes: ClassVar[list[Any]] = [SafeMultiPartParser, SafeFormParser, SafeJSONParser]

    def input_data(self, request: Request) -> dict[str, Any]:
        result = CompleteInput(data={"result": request.data.get("result", "")})
        result.is_valid(raise_exception=True)
        return {
            "result": result.validated_data["result"],
            "photos": request.FILES.getlist("photos"),
        }

    def execute(self, *, request: Request, task_id: int, data: dict[str, Any]) -> Any:
        return services.task_complete(
            task_id=task_id, by=request.user, result=data["result"], photos=data["photos"]
        )


class TaskDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG_MOBILE],
        summary=_("A task with the scene: location, reporter contact, hazards nearby"),
        responses={200: TaskDetailOutput, **COMMON_ERRORS},
    )
    def get(self, request: Request, task_id: int) -> Response:
        detail = selectors.task_detail(user=request.user, task_id=task_id)
        data = TaskDetailOutput(detail).data
        shown = [f for f in ("reporter_name", "reporter_phone") if data["incident"].get(f)]
        if shown:  # the reporter's contact reached this responder: audited
            audit_personal_read(
                request,
                object_type="incidents.incident",
                object_ids=[detail.task.incident_id],
                fields=shown,
            )
        return Response(data)


class MyCurrentTasksApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG_MOBILE],
        summary=_("My live tasks, newest first"),
        responses={200: TaskOutput(many=True), 401: COMMON_ERRORS[401]},
    )
    def get(self, request: Request) -> Response:
        tasks = selectors.my_current_tasks(user=request.user)
        return Response(TaskOutput(tasks, many=True).data)


class TaskHistoryPagination(CursorPagination):
    ordering = ("-dispatched_at", "-id")


class MyTasksApi(GenericAPIView):
    """My teams' tasks, newest first (history)."""

    permission_classes = [IsAuthenticated]
    pagination_class = TaskHistoryPagination
    serializer_class = TaskOutput
    queryset = DispatchTask.objects.none()  # for the schema generator; the selector scopes
    filter_backends: ClassVar[list[Any]] = []

    @extend_schema(
        tags=[TAG_MOBILE],
        summary=_("My tasks (history), newest first"),
        responses={200: TaskOutput(many=True), 401: COMMON_ERRORS[401]},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.my_tasks(user=request.user))
        return self.get_paginated_response(TaskOutput(page, many=True).data)


# --- Incident room -----------------------------------------------------------------------


class RoomMessageOutput(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.IntegerField(source="author_id", allow_null=True)
    author_name = serializers.SerializerMethodField()
    text = serializers.CharField()
    photo = serializers.IntegerField(
        source="attachment_id",
        allow_null=True,
        help_text=_("Attachment id: GET /api/v1/attachments/{id}/ (and /thumbnail/)."),
    )
    photo_url = serializers.SerializerMethodField(
        help_text=_("The photo's checked download (attachments/{id}/), or null.")
    )
    created_at = serializers.DateTimeField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_author_name(self, message: RoomMessage) -> str:
        return str(message.author) if message.author is not None else ""

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_photo_url(self, message: RoomMessage) -> str | None:
        if message.attachment_id is None:
            return None
        return attachment_url(message.attachment_id, request=self.context.get("request"))


class RoomInput(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    photo = serializers.ImageField(required=False, allow_null=True, default=None)


class RoomPagination(CursorPagination):
    ordering = ("-created_at", "-id")


class IncidentRoomApi(GenericAPIView):
    """会商: messages of everyone on the incident and the command post."""

    permission_classes = [IsAuthenticated]
    pagination_class = RoomPagination
    serializer_class = RoomMessageOutput
    queryset = RoomMessage.objects.none()
    filter_backends: ClassVar[list[Any]] = []
    parser_classes: ClassVar[list[Any]] = [SafeMultiPartParser, SafeFormParser, SafeJSONParser]

    @extend_schema(
        tags=[TAG_ROOM],
        summary=_("Room messages, newest first"),
        responses={200: RoomMessageOutput(many=True), **COMMON_ERRORS},
    )
    def get(self, request: Request, incident_id: int) -> Response:
        incident = selectors.incident_for_room(user=request.user, incident_id=incident_id)
        page = self.paginate_queryset(selectors.room_messages(incident=incident))
        output = RoomMessageOutput(page, many=True, context={"request": request})
        return self.get_paginated_response(output.data)

    @extend_schema(
        tags=[TAG_ROOM],
        summary=_("Post a message (text and/or one photo)"),
        request={"multipart/form-data": RoomInput, "application/json": RoomInput},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: RoomMessageOutput, **COMMON_ERRORS},
    )
    @idempotent
    def post(self, request: Request, incident_id: int) -> Response:
        incident = selectors.incident_for_room(user=request.user, incident_id=incident_id)
        text = request.data.get("text", "")
        if not isinstance(text, str):
            text = ""
        message = room_services.room_post(
            incident_id=incident.pk, by=request.user, text=text, photo=request.FILES.get("photo")
        )
        output = RoomMessageOutput(message, context={"request": request})
        return Response(output.data, status=status.HTTP_201_CREATED)


# --- Command post --------------------------------------------------------------------------


class CommandPostOutput(serializers.Serializer):
    id = serializers.IntegerField()
    incident = serializers.IntegerField(source="incident_id")
    commander = serializers.IntegerField(source="commander_id")
    members = serializers.SerializerMethodField()
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    address = serializers.CharField()
    established_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_members(self, post: CommandPost) -> list[int]:
        return sorted(user.pk for user in post.members.all())


class CommandPostInput(serializers.Serializer):
    commander_id = serializers.IntegerField(min_value=1)
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lng = serializers.FloatField(min_value=-180, max_value=180)
    address = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)
    member_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=100
    )


class CommandPostMembersInput(serializers.Serializer):
    add = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list
    )
    remove = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list
    )


def _post_data(incident_id: int) -> dict[str, Any]:
    post = selectors.command_post_get(incident_id=incident_id)
    return dict(CommandPostOutput(post).data)


class CommandPostApi(APIView):
    """现场指挥部: set up (operators of the incident); while open it directs dispatch."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG_POST],
        summary=_("The incident's command post (open or last closed)"),
        responses={200: CommandPostOutput, **COMMON_ERRORS},
    )
    def get(self, request: Request, incident_id: int) -> Response:
        incident = selectors.incident_for_room(user=request.user, incident_id=incident_id)
        post = selectors.command_post_get(incident_id=incident.pk)
        if post is None:
            raise ApplicationError(DispatchErrorCode.COMMAND_POST_NOT_FOUND, status=404)
        return Response(CommandPostOutput(post).data)

    @extend_schema(
        tags=[TAG_POST],
        summary=_("Set up an on-site command post"),
        request=CommandPostInput,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: CommandPostOutput, **COMMON_ERRORS},
    )
    @idempotent
    def post(self, request: Request, incident_id: int) -> Response:
        incident = _incident_for_post_admin(request, incident_id)
        data = CommandPostInput(data=request.data)
        data.is_valid(raise_exception=True)
        post_services.command_post_establish(
            incident_id=incident.pk, by=request.user, **data.validated_data
        )
        return Response(_post_data(incident.pk), status=status.HTTP_201_CREATED)


def _incident_for_post_admin(request: Request, incident_id: int) -> Incident:
    """Region operators of the incident, or the open post's own people."""
    return selectors.incident_for_dispatch(user=request.user, incident_id=incident_id)


class CommandPostCloseApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG_POST],
        summary=_("Close the command post (dispatch returns to the operators)"),
        request=None,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: CommandPostOutput, **COMMON_ERRORS},
    )
    @idempotent
    def post(self, request: Request, incident_id: int) -> Response:
        incident = _incident_for_post_admin(request, incident_id)
        post_services.command_post_close(incident_id=incident.pk, by=request.user)
        return Response(_post_data(incident.pk))


class CommandPostMembersApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG_POST],
        summary=_("Add or remove command post members"),
        request=CommandPostMembersInput,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: CommandPostOutput, **COMMON_ERRORS},
    )
    @idempotent
    def post(self, request: Request, incident_id: int) -> Response:
        incident = _incident_for_post_admin(request, incident_id)
        data = CommandPostMembersInput(data=request.data)
        data.is_valid(raise_exception=True)
        post_services.command_post_members_change(
            incident_id=incident.pk, by=request.user, **data.validated_data
        )
        return Response(_post_data(incident.pk))
