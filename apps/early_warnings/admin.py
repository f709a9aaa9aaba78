"""Plain admin of early warnings (the richer console page is a later change).

- **Warnings and versions**: read-only, region-scoped (by the chain's region), with the
  targets, the timeline and the 叫应 rows inline. Composition and approval go through
  the services (``apps.early_warnings.services``), never through these forms.
- **Responsible persons** (责任人): editable, region-scoped; a save or a delete calls
  ``responsible_person_add`` / ``responsible_person_remove``.
- **Approval rules**: the rule table (``apps.early_warnings.approval``), edited by
  administrators, read by everyone who approves.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline

from apps.core.admin_mixins import ReadOnlyAdminMixin, ReadOnlyInlineMixin
from apps.early_warnings import services
from apps.early_warnings.models import (
    Acknowledgement,
    ApprovalRule,
    ResponsiblePerson,
    WarningChain,
    WarningTarget,
    WarningTimelineEntry,
    WarningVersion,
)
from apps.regions.admin_mixins import RegionScopedAdminMixin


class TargetInline(ReadOnlyInlineMixin, TabularInline):
    model = WarningTarget
    fields = ("region",)
    readonly_fields = ("region",)
    extra = 0


class AckInline(ReadOnlyInlineMixin, TabularInline):
    model = Acknowledgement
    fields = ("user", "region", "role", "acked_at", "channel")
    readonly_fields = fields
    extra = 0


class VersionInline(ReadOnlyInlineMixin, TabularInline):
    model = WarningVersion
    fields = ("number", "msg_type", "status", "level", "title", "identifier", "sent")
    readonly_fields = fields
    extra = 0
    show_change_link = True


class TimelineInline(ReadOnlyInlineMixin, TabularInline):
    model = WarningTimelineEntry
    fields = ("at", "kind", "version", "actor", "reason", "data")
    readonly_fields = fields
    extra = 0


@admin.register(WarningChain)
class WarningChainAdmin(ReadOnlyAdminMixin, RegionScopedAdminMixin, ModelAdmin):
    region_path_field = "region__path"
    list_display = ("__str__", "region", "source", "versions_count", "created_at")
    list_select_related = ("region",)
    list_filter = ("source",)
    ordering = ("-created_at", "-id")
    inlines = (VersionInline, TimelineInline)
    fields = ("region", "source", "versions_count", "created_by", "created_at")
    readonly_fields = fields


@admin.register(WarningVersion)
class WarningVersionAdmin(ReadOnlyAdminMixin, RegionScopedAdminMixin, ModelAdmin):
    region_path_field = "chain__region__path"
    list_display = (
        "__str__",
        "msg_type",
        "status",
        "level",
        "warning_type",
        "title",
        "onset",
        "expires",
    )
    list_select_related = ("chain",)
    list_filter = ("status", "level", "msg_type", "warning_type", "source")
    search_fields = ("title", "identifier", "upstream_identifier")
    ordering = ("-created_at", "-id")
    inlines = (TargetInline, AckInline)
    readonly_fields = (
        "chain",
        "number",
        "msg_type",
        "status",
        "warning_type",
        "level",
        "title",
        "description",
        "instruction",
        "title_en",
        "description_en",
        "instruction_en",
        "onset",
        "expires",
        "incident",
        "sensor_alarm_ref",
        "identifier",
        "sender",
        "sent",
        "references",
        "source",
        "upstream_sender",
        "upstream_identifier",
        "upstream_raw",
        "created_by",
        "submitted_at",
        "approved_by",
        "approved_at",
        "rejection_reason",
        "ended_at",
    )
    fields = readonly_fields


@admin.register(ResponsiblePerson)
class ResponsiblePersonAdmin(RegionScopedAdminMixin, ModelAdmin):
    region_path_field = "region__path"
    list_display = ("region", "user", "role", "order", "is_active")
    list_select_related = ("region", "user")
    list_filter = ("role", "is_active")
    search_fields = ("user__username", "user__display_name", "region__name_zh")
    ordering = ("region__path", "order", "id")
    autocomplete_fields = ("user",)
    fields = ("region", "user", "role", "order", "is_active")
    actions = ("remove_selected",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Through the services: add (or reactivate), or take off the roster."""
        if change and not obj.is_active:
            saved = services.responsible_person_remove(by=request.user, person_id=obj.pk)
        else:
            saved = services.responsible_person_add(
                by=request.user,
                region_id=obj.region_id,
                user_id=obj.user_id,
                role=obj.role,
                order=obj.order,
            )
            if change and saved.pk != obj.pk:
                services.responsible_person_remove(by=request.user, person_id=obj.pk)
        obj.pk = saved.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # taken off the roster, never deleted: "who was responsible" stays

    @admin.action(description=_("Take the selected persons off the roster"))
    def remove_selected(self, request: HttpRequest, queryset: QuerySet[ResponsiblePerson]) -> None:
        for person in queryset:
            services.responsible_person_remove(by=request.user, person_id=person.pk)


@admin.register(ApprovalRule)
class ApprovalRuleAdmin(ModelAdmin):
    list_display = (
        "level",
        "target_level",
        "approver_role",
        "approver_level",
        "allow_self_approval",
        "note",
    )
    list_filter = ("level", "target_level")
    ordering = ("level", "target_level")
