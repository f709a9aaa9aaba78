"""An Atom (RFC 4287) feed of warnings, each entry linking to the CAP XML of its version.

This is the "CAP index feed" CAP aggregators poll: the entry's ``link rel="alternate"``
of type ``application/cap+xml`` is where the alert is fetched. Pure: the caller passes
the versions to list (the active warnings, latest version of each, as
:class:`~apps.early_warnings.cap.mapping.WarningData`) and a function giving the absolute
URL of each version's CAP document (``apps/early_warnings/api/cap.py`` wires the URLs
and the view).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from xml.etree import ElementTree as ET  # writing only

from apps.early_warnings.cap.build import format_datetime
from apps.early_warnings.cap.mapping import LEVELS, SHANGHAI, WARNING_TYPES, WarningData

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
CAP_MIME_TYPE = "application/cap+xml"
ATOM_MIME_TYPE = "application/atom+xml"


def _child(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, name, attrs)
    if text is not None:
        element.text = text
    return element


def warnings_atom_feed(
    *,
    feed_id: str,
    title: str,
    self_url: str,
    author: str,
    warnings: Iterable[WarningData],
    cap_url: Callable[[WarningData], str],
    updated: datetime,
) -> bytes:
    """The Atom document (UTF-8) listing ``warnings`` newest first.

    ``feed_id`` is a permanent IRI of the feed; each entry's id is the URL of its CAP
    document, which is permanent because a version is never edited, only superseded.
    ``updated`` is the feed's time when it lists nothing; otherwise the latest ``sent``
    wins if it is later.
    """
    items = sorted(warnings, key=lambda w: w.sent, reverse=True)
    latest = max([updated, *(w.sent for w in items)])
    # Unqualified tags under a literal xmlns: ElementTree's default_namespace option
    # refuses the unqualified attributes Atom uses (rel, href, term).
    feed = ET.Element(
        "feed", {"xmlns": ATOM_NAMESPACE, "{http://www.w3.org/XML/1998/namespace}lang": "zh-CN"}
    )
    _child(feed, "id", feed_id)
    _child(feed, "title", title)
    _child(feed, "updated", format_datetime(latest.astimezone(SHANGHAI)))
    _child(feed, "link", rel="self", type=ATOM_MIME_TYPE, href=self_url)
    _child(_child(feed, "author"), "name", author)
    for warning in items:
        url = cap_url(warning)
        entry = _child(feed, "entry")
        _child(entry, "id", url)
        _child(entry, "title", warning.title)
        _child(entry, "updated", format_datetime(warning.sent.astimezone(SHANGHAI)))
        if warning.sender_name:
            _child(_child(entry, "author"), "name", warning.sender_name)
        _child(entry, "link", rel="alternate", type=CAP_MIME_TYPE, href=url)
        warning_type = WARNING_TYPES.get(warning.type)
        level = LEVELS.get(warning.level)
        _child(
            entry,
            "category",
            term=warning.type,
            label=warning_type.name_zh if warning_type else warning.type,
        )
        _child(
            entry, "category", term=warning.level, label=level.colour_zh if level else warning.level
        )
        _child(entry, "summary", warning.description)
    ET.indent(feed, space="  ")
    body = ET.tostring(feed, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")
