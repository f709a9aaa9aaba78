"""Admin for Open311 API keys: create one (its plain key is shown once), revoke it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.admin import ModelAdmin

from apps.accounts.admin_mixins import InternalAdminMixin
from apps.open311 import services
from apps.open311.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(InternalAdminMixin, ModelAdmin):
    list_display = ("name", "prefix", "is_active", "created_at", "last_used_at")
    list_filter = ("is_active",)
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    fields = ("name", "is_active", "prefix", "created_at", "last_used_at")
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # New keys go through the service, which generates the key and stores its hash.
        api_key, raw = services.api_key_create(name=obj.name)
        if not obj.is_active:
            ApiKey.objects.filter(pk=api_key.pk).update(is_active=False)
        obj.pk = api_key.pk
        obj.prefix, obj.key_hash = api_key.prefix, api_key.key_hash
        obj.created_at, obj.updated_at = api_key.created_at, api_key.updated_at
        obj._state.adding = False
        messages.warning(
            request,
            _("The API key for %(name)s is: %(key)s — copy it now, it will not be shown again.")
            % {"name": api_key.name, "key": raw},
        )

    @admin.action(description=gettext_lazy("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = queryset.update(is_active=False)
        messages.success(request, _("%(count)d keys revoked.") % {"count": count})
