"""The base of the admin's CSV/XLSX exports (django-import-export).

Every export is the changelist the user is looking at: the ModelAdmin's queryset (region
scope, filters, search) is what ``ExportMixin`` exports, so nothing leaves that the list
does not show. Headers are the translated labels; datetimes are written in the current
time zone (Asia/Shanghai) by the library's widgets. The resource knows who exports
(``user``), for the columns that depend on it (masked phone numbers).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets


def column(attribute: str, label: Any, **kwargs: Any) -> fields.Field:
    """A column: the model attribute (``__`` across relations) under a translated header.
    Timestamps (``*_at``, the project's naming) are written in the current time zone."""
    if attribute == "at" or attribute.endswith("_at"):
        kwargs.setdefault("widget", widgets.DateTimeWidget())
    return fields.Field(attribute=attribute, column_name=label, **kwargs)


def yes_blank(value: Any) -> str:
    """A flag as a person reads it in a sheet: 是, or nothing."""
    return str(_("yes")) if value else ""


class ExportResource(resources.ModelResource):
    """Knows the exporting user; headers are rendered in the request's language."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user = kwargs.get("user")

    def get_export_headers(self, selected_fields: Any = None) -> list[str]:
        return [str(header) for header in super().get_export_headers(selected_fields)]


class ExportAdminMixin:
    """For ``ExportMixin`` admins: pass the user to the resource; CSV/XLSX only."""

    def get_export_resource_kwargs(self, request: Any, **kwargs: Any) -> dict[str, Any]:
        base: dict[str, Any] = super().get_export_resource_kwargs(  # type: ignore[misc]
            request, **kwargs
        )
        return {**base, "user": request.user}
