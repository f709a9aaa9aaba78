"""The audit trail in the admin: searchable, and never added to, changed or deleted.

Who sees it: holders of ``audit.view_auditentry`` — the admin and commander role groups
(``apps.accounts.roles``) and superusers. A viewer whose scope is not the whole tree sees
the entries of people holding (or having held) a role in their regions; anonymous
entries and citizens' entries need the whole tree.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.audit.models import AuditEntry
from apps.core.admin_mixins import ReadOnlyAdminMixin
from apps.core.scoping import restrict, scope_for


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "at",
        "action",
        "channel",
        "actor_label",
        "method",
        "view",
        "object_type",
        "object_id",
        "status",
        "client_address",
    )
    list_filter = ("action", "channel", "method", "status", "at")
    search_fields = (
        "=actor_label",
        "path",
        "=view",
        "=object_type",
        "=object_id",
        "=client_address",
    )
    fields = (
        "at",
        "action",
        "channel",
        "actor",
        "actor_label",
        "method",
        "path",
        "view",
        "object_type",
        "object_id",
        "status",
        "client_address",
        "user_agent",
        "detail",
    )
    readonly_fields = fields
    raw_id_fields = ("actor",)
    actions = None  # no "delete selected", for anyone
    show_full_result_count = False  # no COUNT(*) over a big table per page

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEntry]:
        qs = super().get_queryset(request)
        if request.user.is_superuser or scope_for(request.user).is_global:
            return qs
        people = restrict(get_user_model().objects.all(), request.user, "memberships__region__path")
        return qs.filter(actor_id__in=people.values("pk"))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
