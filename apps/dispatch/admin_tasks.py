"""Command-centre admin for dispatch tasks, the incident room and command posts.

Read-only by design: a task changes only through the services (lock, transition table,
TaskEvent, timeline, team status), so every column — above all the "first-time" KPI
timestamps — is shown and never typed in; the admin actions call the services (verify,
cancel with a reason). Rows are region-scoped by their incident's region
(``RegionScopedAdminMixin``). Imported by ``apps/dispatch/admin.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.contrib.import_export.forms import ExportForm
from unfold.forms import ActionForm

from apps.core.admin_mixins import ReadOnlyInlineMixin
from apps.core.errors import ApplicationError
from apps.core.exports import ExportAdminMixin, ExportResource, column, yes_blank
from apps.dispatch.models import CommandPost, DispatchTask, RoomMessage, TaskEvent
from apps.dispatch.services import tasks as task_services
from apps.regions.admin_mixins import RegionScopedAdminMixin

TASK_TIMESTAMPS = (
    "dispatched_at",
    "delivered_at",
    "accepted_at",
    "declined_at",
    "expired_at",
    "en_route_at",
    "on_scene_at",
    "completed_at",
    "verified_at",
    "returned_at",
    "cancelled_at",
)


class TaskReasonActionForm(ActionForm):
    """The action bar with a text box for the cancel reason."""

    reason = forms.CharField(label=_("Reason"), required=False, max_length=2000)


class TaskEventInline(ReadOnlyInlineMixin, TabularInline):
    """The task's timeline, oldest first (append-only)."""

    model = TaskEvent
    fields = ("at", "kind", "actor", "data")
    readonly_fields = fields
    ordering = ("at", "id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskEvent]:
        return super().get_queryset(request).select_related("actor")


def _run_each(
    model_admin: ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[DispatchTask],
    call: Callable[[DispatchTask], Any],
) -> None:
    """Apply ``call`` per row; a refusal becomes that row's error message, never a 500."""
    done = 0
    for task in queryset:
        try:
            call(task)
        except ApplicationError as exc:
            model_admin.message_user(
                request,
                _("%(object)s: %(message)s (%(code)s)")
                % {"object": task, "message": exc.message, "code": exc.code},
                messages.ERROR,
            )
        else:
            done += 1
    if done:
        model_admin.message_user(
            request, _("%(count)s task(s) updated.") % {"count": done}, messages.SUCCESS
        )


class TaskResource(ExportResource):
    """A task's row in the export: who went where, and every first-time timestamp."""

    id = column("id", _("task"))
    incident = column("incident__number", _("incident"))
    incident_title = column("incident__title", _("title"))
    region = column("incident__region__name_zh", _("region"))
    team = column("team__name", _("team"))
    status = column("get_status_display", _("status"))
    cross_department = column("cross_department", _("cross-department"))
    dispatched_at = column("dispatched_at", _("dispatched at"))
    accepted_at = column("accepted_at", _("accepted at"))
    en_route_at = column("en_route_at", _("en route at"))
    on_scene_at = column("on_scene_at", _("on scene at"))
    completed_at = column("completed_at", _("completed at"))
    verified_at = column("verified_at", _("verified at"))
    cancelled_at = column("cancelled_at", _("cancelled at"))
    result = column("result", _("result"))
    decline_reason = column("decline_reason", _("decline reason"))
    return_reason = column("return_reason", _("return reason"))
    cancel_reason = column("cancel_reason", _("cancel reason"))

    class Meta:
        model = DispatchTask
        fields = export_order = (
            "id",
            "incident",
            "incident_title",
            "region",
            "team",
            "status",
            "cross_department",
            "dispatched_at",
            "accepted_at",
            "en_route_at",
            "on_scene_at",
            "completed_at",
            "verified_at",
            "cancelled_at",
            "result",
            "decline_reason",
            "return_reason",
            "cancel_reason",
        )

    def dehydrate_cross_department(self, task: DispatchTask) -> str:
        return yes_blank(task.cross_department)


@admin.register(DispatchTask)
class DispatchTaskAdmin(RegionScopedAdminMixin, ExportAdminMixin, ExportMixin, ModelAdmin):
    region_path_field = "incident__region__path"
    list_display = (
        "id",
        "incident",
        "team",
        "status",
        "cross_department",
        "dispatched_at",
        "accepted_at",
        "on_scene_at",
        "completed_at",
        "verified_at",
    )
    resource_classes = [TaskResource]
    export_form_class = ExportForm
    list_filter = (
        "status",
        "cross_department",
        "team__kind",
        ("dispatched_at", RangeDateTimeFilter),
    )
    list_filter_submit = True
    list_select_related = ("incident", "team")
    search_fields = ("incident__number", "incident__title", "team__code", "team__name")
    date_hierarchy = "dispatched_at"
    ordering = ("-dispatched_at", "-id")
    inlines = (TaskEventInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "incident",
                    "team",
                    "status",
                    "cross_department",
                    "instructions",
                    "dispatched_by",
                    "accepted_by",
                )
            },
        ),
        (_("Times"), {"fields": TASK_TIMESTAMPS}),
        (
            _("Outcome and reasons"),
            {"fields": ("result", "decline_reason", "return_reason", "cancel_reason")},
        ),
    )
    readonly_fields = (
        "incident",
        "team",
        "status",
        "cross_department",
        "instructions",
        "dispatched_by",
        "accepted_by",
        *TASK_TIMESTAMPS,
        "result",
        "decline_reason",
        "return_reason",
        "cancel_reason",
    )
    action_form = TaskReasonActionForm
    actions = ("verify", "cancel")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # dispatch goes through the service (recommendation, checks, timeline)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the KPI record is never deleted

    @admin.action(description=_("Verify the selected completed tasks"))
    def verify(self, request: HttpRequest, queryset: QuerySet[DispatchTask]) -> None:
        _run_each(
            self,
            request,
            queryset,
            lambda task: task_services.task_verify(task_id=task.pk, by=request.user),
        )

    @admin.action(description=_("Cancel the selected tasks (reason in the box)"))
    def cancel(self, request: HttpRequest, queryset: QuerySet[DispatchTask]) -> None:
        reason = request.POST.get("reason", "")
        _run_each(
            self,
            request,
            queryset,
            lambda task: task_services.task_cancel(task_id=task.pk, by=request.user, reason=reason),
        )


@admin.register(RoomMessage)
class RoomMessageAdmin(RegionScopedAdminMixin, ModelAdmin):
    region_path_field = "incident__region__path"
    list_display = ("created_at", "incident", "author", "text", "attachment")
    list_select_related = ("incident", "author", "attachment")
    search_fields = ("incident__number", "text")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    readonly_fields = ("incident", "author", "text", "attachment", "created_at")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CommandPost)
class CommandPostAdmin(RegionScopedAdminMixin, ModelAdmin):
    region_path_field = "incident__region__path"
    list_display = ("incident", "commander", "address", "established_at", "closed_at")
    list_select_related = ("incident", "commander")
    search_fields = ("incident__number", "address")
    ordering = ("-established_at",)
    readonly_fields = (
        "incident",
        "commander",
        "members",
        "lat",
        "lng",
        "address",
        "established_at",
        "closed_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # set up through the service / API (timeline, checks)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
