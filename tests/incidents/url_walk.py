"""Find the URLs an API answer hands out, wherever they sit in the JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

# Paths of downloads that carry a photo's bytes (and the public media path, which no
# answer may contain at all).
PHOTO_PATH_MARKERS = ("/attachments/", "/media/")


def urls_in(data: Any) -> Iterator[str]:
    """Every string in ``data`` (nested dicts and lists) that is a URL or a path."""
    if isinstance(data, dict):
        for value in data.values():
            yield from urls_in(value)
    elif isinstance(data, list):
        for value in data:
            yield from urls_in(value)
    elif isinstance(data, str) and (
        data.startswith(("http://", "https://")) or (data.startswith("/") and " " not in data)
    ):
        yield data


def attachment_urls_in(data: Any) -> list[str]:
    """The URLs in ``data`` that lead to a photo."""
    return [
        url for url in urls_in(data) if any(m in urlsplit(url).path for m in PHOTO_PATH_MARKERS)
    ]
