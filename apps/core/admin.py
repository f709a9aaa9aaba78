"""Admin for core models: idempotency keys are read-only diagnostics for superusers."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from unfold.admin import ModelAdmin

from apps.core.models import IdempotentRequest


@admin.register(IdempotentRequest)
class IdempotentRequestAdmin(ModelAdmin):
    list_display = ("key", "scope", "method", "path", "response_status", "created_at")
    search_fields = ("key", "scope", "path")
    readonly_fields = [f.name for f in IdempotentRequest._meta.fields]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
