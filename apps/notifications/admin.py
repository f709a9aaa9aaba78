"""Command-centre admin: the outbox (read-only) and people's notification preferences.

Scoped like everything else (conventions R9): a non-superuser sees messages to people they
may see (``accounts.selectors.user_list_visible``) and topic messages of regions in
their scope. The outbox is never edited by hand: rows are the record of what was sent.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from apps.accounts.admin_mixins import InternalAdminMixin
from apps.accounts.selectors import user_list_visible
from apps.core.admin_mixins import ReadOnlyAdminMixin
from apps.notifications import selectors
from apps.notifications.models import Notification, NotificationPreference


@admin.register(Notification)
class NotificationAdmin(InternalAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "kind",
        "channel",
        "priority",
        "status",
        "recipient",
        "title",
        "attempts",
        "sent_at",
        "acknowledged_at",
    )
    list_filter = ("status", "kind", "channel", "priority")
    list_select_related = ("user",)
    search_fields = ("dedupe_key", "title", "topic", "user__username", "user__display_name")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    fieldsets = (
        (None, {"fields": ("dedupe_key", "kind", "channel", "priority", "status")}),
        (_("Recipient"), {"fields": ("user", "topic", "region", "language")}),
        (_("Message"), {"fields": ("title", "body", "data", "template")}),
        (
            _("Delivery"),
            {
                "fields": (
                    "attempts",
                    "next_attempt_at",
                    "claimed_at",
                    "sent_at",
                    "skip_reason",
                    "last_error",
                    "result",
                )
            },
        ),
        (
            _("Receipt"),
            {"fields": ("ack_deadline", "acknowledged_at", "fallback_at", "fallback_for")},
        ),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Notification]:
        visible = selectors.notification_list_visible(viewer=request.user)
        return visible.select_related("user", "region", "fallback_for")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    @admin.display(description=_("recipient"), ordering="user__username")
    def recipient(self, obj: Notification) -> str:
        return str(obj.user) if obj.user_id else f"#{obj.topic}"


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(InternalAdminMixin, ModelAdmin):
    list_display = ("user", "mute_off_duty", "updated_at")
    list_filter = ("mute_off_duty",)
    list_select_related = ("user",)
    search_fields = ("user__username", "user__display_name")
    raw_id_fields = ("user",)
    ordering = ("user_id",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[NotificationPreference]:
        visible = selectors.preference_list_visible(viewer=request.user)
        return visible.select_related("user")

    def formfield_for_foreignkey(
        self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = user_list_visible(viewer=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
