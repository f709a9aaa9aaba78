"""Stream names: ``user.<id>``, ``region.<code>``, ``incident.<id>``, ``report.<id>``.

A stream name is also the Channels group its live events are published to, so every name
is a valid group name (ASCII letters, digits, ``-``, ``_``, ``.``; under 100 characters).
Names are canonical: ``incident.007`` is not a name (it would be a second group and a
second counter for the same incident), so :func:`parse` refuses it.

An event of an incident goes to ``incident.<id>`` and to ``region.<code>`` of the
incident's street *and every ancestor* (:func:`region_and_ancestors`): an operator of
沣东新城 subscribes once, to ``region.fengdong``, and sees every street below it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Protocol

from apps.realtime.models import STREAM_MAX_LENGTH


class StreamKind(StrEnum):
    USER = "user"
    REGION = "region"
    INCIDENT = "incident"
    REPORT = "report"


# Kinds whose key is a database id; region keys are region codes (slugs).
ID_KINDS = frozenset({StreamKind.USER, StreamKind.INCIDENT, StreamKind.REPORT})
_ID_RE = re.compile(r"[1-9][0-9]{0,18}")
_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")


class HasPath(Protocol):
    path: str


def user(user_id: int) -> str:
    return f"{StreamKind.USER}.{int(user_id)}"


def region(code: str) -> str:
    return f"{StreamKind.REGION}.{code}"


def incident(incident_id: int) -> str:
    return f"{StreamKind.INCIDENT}.{int(incident_id)}"


def report(report_id: int) -> str:
    return f"{StreamKind.REPORT}.{int(report_id)}"


def region_and_ancestors(place: HasPath | str) -> list[str]:
    """``region.<code>`` of ``place`` and of every ancestor, root first, with no query:
    the materialised path (``/xixian/fengdong/fd-sanqiao/``) is made of the codes."""
    path = place if isinstance(place, str) else place.path
    return [region(code) for code in path.strip("/").split("/") if code]


def parse(name: Any) -> tuple[StreamKind, str]:
    """``(kind, key)`` of a canonical stream name, or ``ValueError``."""
    if not isinstance(name, str) or len(name) > STREAM_MAX_LENGTH or "." not in name:
        raise ValueError("not a stream name")
    raw_kind, key = name.split(".", 1)
    try:
        kind = StreamKind(raw_kind)
    except ValueError:
        raise ValueError("unknown stream kind") from None
    pattern = _ID_RE if kind in ID_KINDS else _CODE_RE
    if not pattern.fullmatch(key):
        raise ValueError("malformed stream key")
    return kind, key
