"""Photos on the console's pages: links through the checked download, never media URLs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apps.incidents.api.attachment_urls import attachment_url


def photo_links(attachments: Iterable[Any]) -> list[dict[str, Any]]:
    """``[{"id", "url", "thumbnail_url"}]``: the admin session authenticates the download
    (the same check as the API's ``attachments/{id}/``)."""
    return [
        {
            "id": a.pk,
            "url": attachment_url(a) if a.file else attachment_url(a, thumbnail=True),
            "thumbnail_url": attachment_url(a, thumbnail=True) if a.thumbnail else "",
        }
        for a in attachments
    ]
