"""The JSON frames the event socket sends (docs/realtime.md is the contract).

An event frame is encoded once, when it is published (or read back for a replay), and
sent as that same text to every subscribed socket: a broadcast to 10,000 sockets must
not encode 10,000 times.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.utils import timezone


def _dumps(content: dict[str, Any]) -> str:
    # Compact, and UTF-8 text as it is (Chinese titles would triple as \\u escapes).
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))


def iso(value: datetime) -> str:
    """Aware time in the project's zone (Asia/Shanghai), ISO 8601 with offset."""
    return timezone.localtime(value).isoformat()


def event_frame(*, stream: str, seq: int, kind: str, at: datetime, data: Any) -> str:
    """``{"type": "event", "stream", "seq", "kind", "at", "data"}``."""
    return _dumps(
        {"type": "event", "stream": stream, "seq": seq, "kind": kind, "at": iso(at), "data": data}
    )


def encode(content: dict[str, Any]) -> str:
    """Any other frame (``hello``, ``subscribed``, ``resync``, ``error`` ...)."""
    return _dumps(content)


def event_frame_from_text(
    stream: str, seq: int, kind: str, at: datetime | str, data_json: str
) -> str:
    """:func:`event_frame` around an already encoded payload (no second encoding: the
    same payload goes to several streams, and the stored text is what clients get).
    ``at`` may come already formatted (:func:`iso`): a batch shares one time."""
    stamp = at if isinstance(at, str) else iso(at)
    head = _dumps({"type": "event", "stream": stream, "seq": seq, "kind": kind, "at": stamp})
    return f'{head[:-1]},"data":{data_json}}}'
