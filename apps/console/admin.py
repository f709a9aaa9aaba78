"""Console admin: the duty-desk pages and the incident and report pages of the command
centre (``admin_incidents``, ``admin_reports``), all under ``/admin/``."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from unfold.admin import ModelAdmin

from apps.console import admin_incidents, admin_reports, admin_warnings, board  # noqa: F401 (registers)
from apps.console.map import map_data, map_page
from apps.console.models import DutyDesk


@admin.register(DutyDesk)
class DutyDeskAdmin(ModelAdmin):
    """值班台 (the live board, ``board.py``) and 一张图."""

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("", view(self.board_view), name="console_dutydesk_changelist"),
            path("board/", view(self.board_view), name="console_dutydesk_board"),
            path("board/rows/", view(self.board_rows_view), name="console_dutydesk_rows"),
            path("map/", view(self.map_view), name="console_dutydesk_map"),
            path(
                "map/data/<slug:key>/", view(self.map_data_view), name="console_dutydesk_map_data"
            ),
        ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def board_view(self, request: HttpRequest) -> HttpResponse:
        """值班台 (apps/console/board.py)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "opts": self.opts}
        return board.board_page(request, context)

    def board_rows_view(self, request: HttpRequest) -> HttpResponse:
        """The board's rows as JSON, for board.js (apps/console/board.py)."""
        if not self.has_view_permission(request):
            return board.forbidden()
        return board.board_rows_page(request)

    def map_view(self, request: HttpRequest) -> HttpResponse:
        return map_page(self, request)

    def map_data_view(self, request: HttpRequest, key: str) -> HttpResponse:
        return map_data(self, request, key)
