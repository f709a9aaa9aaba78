"""Admin building blocks that need to know who is an administrator."""

from __future__ import annotations

from django.http import HttpRequest

from apps.accounts.selectors import user_is_administrator


class InternalAdminMixin:
    """A page of the system's internals (outboxes, devices, groups, taxonomies): listed in
    the menus and the app index for administrators only, so an operator's admin shows the
    pages of the work. The model permissions still decide what a direct link opens."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        allowed: bool = super().has_module_permission(request)  # type: ignore[misc]
        return allowed and user_is_administrator(request.user)
