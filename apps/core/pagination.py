"""Cursor pagination: stable under inserts, which offset pagination is not (R7)."""

from __future__ import annotations

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Default for list endpoints. Views override ``ordering`` with a unique-ending tuple."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-created_at", "-id")
