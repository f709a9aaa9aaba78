"""``parse_alert``: untrusted CAP 1.2 bytes → :class:`~apps.early_warnings.cap.model.Alert`.

Three gates, each refusing with every problem it found (``errors.cap_invalid``, 422, or
``errors.cap_too_large``, 413) so that the caller stores nothing:

1. size: more than ``max_bytes`` (default :data:`MAX_CAP_BYTES`) is refused unread;
2. safe parsing with ``defusedxml``: no DTD at all (so no entity expansion, no external
   entity, no network or file access), nesting deeper than :data:`MAX_DEPTH` refused
   while reading, malformed XML refused with its line;
3. the OASIS CAP 1.2 XSD (``schema.py``): every violation with its line and path; then
   what the XSD cannot say (``model.py``: closed polygons, coordinates in range, tokens
   without spaces, readable date-times and references).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml.common import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from apps.early_warnings.cap.errors import Problem, cap_invalid, cap_too_large
from apps.early_warnings.cap.model import (
    CAP_NAMESPACE,
    Alert,
    Area,
    Circle,
    Info,
    Point,
    Reference,
    Resource,
    ValuePair,
    check_polygon,
)
from apps.early_warnings.cap.schema import schema_problems

MAX_CAP_BYTES = 1024 * 1024  # CAP messages are a few kB; embedded resources rarely reach this
MAX_DEPTH = 16  # a valid alert is 5 levels deep (alert/info/area/geocode/value)

_NS = "{" + CAP_NAMESPACE + "}"
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)")
_SPACED_ITEM = re.compile(r'"([^"]*)"|(\S+)')

T = TypeVar("T")


class _Refused(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem["reason"])


class _LineTreeBuilder(TreeBuilder):
    """Keeps each element's source line (for the problems list) and bounds the depth."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[int, int] = {}
        self.line: Callable[[], int] = lambda: 0
        self.depth = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refused(
                Problem(line=self.line(), path="/", reason=f"nested deeper than {MAX_DEPTH}")
            )
        element = super().start(tag, attrs)
        self.lines[id(element)] = self.line()
        return element

    def end(self, tag: str) -> Element:
        self.depth -= 1
        return super().end(tag)


def safe_parse(data: bytes) -> tuple[Element, dict[int, int]]:
    """The root element and the line of each element; raises ``_Refused``."""
    builder = _LineTreeBuilder()
    parser = DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    expat = parser.parser
    builder.line = lambda: expat.CurrentLineNumber
    try:
        parser.feed(data)
        root = parser.close()
    except ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise _Refused(Problem(line=line, path="/", reason=f"not well-formed XML: {exc}")) from None
    except DefusedXmlException as exc:
        reason = f"forbidden XML construct ({type(exc).__name__}): DTDs and entities are refused"
        raise _Refused(Problem(line=expat.CurrentLineNumber, path="/", reason=reason)) from None
    return root, builder.lines


def document_problems(data: bytes) -> list[Problem]:
    """Every problem of the document as XML and against the XSD (``[]``: valid)."""
    try:
        root, lines = safe_parse(data)
    except _Refused as refused:
        return [refused.problem]
    return schema_problems(root, lines)


def parse_alert(data: bytes, *, max_bytes: int = MAX_CAP_BYTES) -> Alert:
    """The alert in ``data``, or ``ApplicationError`` listing every problem found."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_alert takes the raw bytes of the message")
    data = bytes(data)
    if len(data) > max_bytes:
        raise cap_too_large(len(data), max_bytes)
    try:
        root, lines = safe_parse(data)
    except _Refused as refused:
        raise cap_invalid([refused.problem]) from None
    problems = schema_problems(root, lines)
    if problems:
        raise cap_invalid(problems)
    reader = _Reader(lines)
    alert = reader.alert(root)
    if reader.problems or alert is None:
        raise cap_invalid(reader.problems)
    return alert


def _local(element: Element) -> str:
    return element.tag[len(_NS) :] if element.tag.startswith(_NS) else element.tag


class _Reader:
    """Turns a schema-valid tree into dataclasses, collecting what the model refuses."""

    def __init__(self, lines: dict[int, int]) -> None:
        self.lines = lines
        self.problems: list[Problem] = []

    def _try(self, element: Element, path: str, build: Callable[[], T]) -> T | None:
        try:
            return build()
        except (ValueError, InvalidOperation) as exc:  # CapValueError is a ValueError
            self.problems.append(
                Problem(line=self.lines.get(id(element)), path=path, reason=str(exc))
            )
        return None

    @staticmethod
    def _children(element: Element) -> dict[str, list[Element]]:
        found: dict[str, list[Element]] = {}
        for child in element:
            if child.tag.startswith(_NS):  # xmldsig signatures (xs:any) are not kept
                found.setdefault(_local(child), []).append(child)
        return found

    @staticmethod
    def _text(children: dict[str, list[Element]], name: str) -> str | None:
        elements = children.get(name)
        return (elements[0].text or "") if elements else None

    def _moment(self, children: dict[str, list[Element]], name: str, path: str) -> Any:
        elements = children.get(name)
        if not elements:
            return None
        text = (elements[0].text or "").strip()
        return self._try(elements[0], f"{path}/{name}", lambda: parse_datetime(text))

    def _pairs(self, children: dict[str, list[Element]], name: str) -> list[ValuePair]:
        pairs = []
        for element in children.get(name, []):
            inner = self._children(element)
            pairs.append(
                ValuePair(
                    value_name=self._text(inner, "valueName") or "",
                    value=self._text(inner, "value") or "",
                )
            )
        return pairs

    def alert(self, root: Element) -> Alert | None:
        c = self._children(root)
        path = "/alert"
        references = []
        for element in c.get("references", []):
            for item in (element.text or "").split():
                reference = self._try(element, f"{path}/references", lambda i=item: _reference(i))
                if reference is not None:
                    references.append(reference)
        infos = []
        for index, element in enumerate(c.get("info", []), start=1):
            info = self.info(element, f"{path}/info[{index}]")
            if info is not None:
                infos.append(info)
        sent = self._moment(c, "sent", path)
        if sent is None:  # already listed as a problem
            return None
        return self._try(
            root,
            path,
            lambda: Alert(
                identifier=(self._text(c, "identifier") or "").strip(),
                sender=(self._text(c, "sender") or "").strip(),
                sent=sent,
                status=self._text(c, "status"),
                msg_type=self._text(c, "msgType"),
                source=self._text(c, "source"),
                scope=self._text(c, "scope"),
                restriction=self._text(c, "restriction"),
                addresses=_spaced(self._text(c, "addresses")),
                codes=[e.text or "" for e in c.get("code", [])],
                note=self._text(c, "note"),
                references=references,
                incidents=_spaced(self._text(c, "incidents")),
                infos=infos,
            ),
        )

    def info(self, element: Element, path: str) -> Info | None:
        c = self._children(element)
        resources = []
        for index, child in enumerate(c.get("resource", []), start=1):
            resource = self.resource(child, f"{path}/resource[{index}]")
            if resource is not None:
                resources.append(resource)
        areas = []
        for index, child in enumerate(c.get("area", []), start=1):
            area = self.area(child, f"{path}/area[{index}]")
            if area is not None:
                areas.append(area)
        moments = {name: self._moment(c, name, path) for name in ("effective", "onset", "expires")}
        return self._try(
            element,
            path,
            lambda: Info(
                language=(self._text(c, "language") or "en-US").strip(),
                categories=[e.text or "" for e in c.get("category", [])],
                event=self._text(c, "event") or "",
                response_types=[e.text or "" for e in c.get("responseType", [])],
                urgency=self._text(c, "urgency"),
                severity=self._text(c, "severity"),
                certainty=self._text(c, "certainty"),
                audience=self._text(c, "audience"),
                event_codes=self._pairs(c, "eventCode"),
                sender_name=self._text(c, "senderName"),
                headline=self._text(c, "headline"),
                description=self._text(c, "description"),
                instruction=self._text(c, "instruction"),
                web=_stripped(self._text(c, "web")),
                contact=self._text(c, "contact"),
                parameters=self._pairs(c, "parameter"),
                resources=resources,
                areas=areas,
                **moments,
            ),
        )

    def resource(self, element: Element, path: str) -> Resource | None:
        c = self._children(element)
        size = self._text(c, "size")
        return self._try(
            element,
            path,
            lambda: Resource(
                resource_desc=self._text(c, "resourceDesc") or "",
                mime_type=self._text(c, "mimeType") or "",
                size=None if size is None else int(size.strip()),
                uri=_stripped(self._text(c, "uri")),
                deref_uri=self._text(c, "derefUri"),
                digest=self._text(c, "digest"),
            ),
        )

    def area(self, element: Element, path: str) -> Area | None:
        c = self._children(element)
        polygons = []
        for index, child in enumerate(c.get("polygon", []), start=1):
            ring = self._try(child, f"{path}/polygon[{index}]", lambda e=child: _polygon(e.text))
            if ring is not None:
                polygons.append(ring)
        circles = []
        for index, child in enumerate(c.get("circle", []), start=1):
            circle = self._try(child, f"{path}/circle[{index}]", lambda e=child: _circle(e.text))
            if circle is not None:
                circles.append(circle)
        altitude, ceiling = self._text(c, "altitude"), self._text(c, "ceiling")
        return self._try(
            element,
            path,
            lambda: Area(
                area_desc=self._text(c, "areaDesc") or "",
                polygons=polygons,
                circles=circles,
                geocodes=self._pairs(c, "geocode"),
                altitude=None if altitude is None else Decimal(altitude.strip()),
                ceiling=None if ceiling is None else Decimal(ceiling.strip()),
            ),
        )


def parse_datetime(text: str) -> datetime:
    """A CAP date-time (``2003-06-11T20:56:00-07:00``): aware, as written."""
    value = datetime.fromisoformat(text)
    if value.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return value


def _number(text: str) -> float:
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{text!r} is not a decimal number")
    return float(text)


def _point(text: str) -> Point:
    lat, sep, lon = text.partition(",")
    if not sep:
        raise ValueError(f"{text!r} is not a 'lat,lon' pair")
    return Point(lat=_number(lat.strip()), lon=_number(lon.strip()))


def _polygon(text: str | None) -> tuple[Point, ...]:
    return check_polygon(_point(pair) for pair in (text or "").split())


def _circle(text: str | None) -> Circle:
    parts = (text or "").split()
    if len(parts) != 2:
        raise ValueError(f"{text!r} is not 'lat,lon radius'")
    return Circle(center=_point(parts[0]), radius_km=_number(parts[1]))


def _reference(item: str) -> Reference:
    parts = item.split(",")
    if len(parts) != 3:
        raise ValueError(f"{item!r} is not 'sender,identifier,sent'")
    return Reference(sender=parts[0], identifier=parts[1], sent=parse_datetime(parts[2]))


def _spaced(text: str | None) -> list[str]:
    return [m[1] if m[1] is not None else m[2] for m in _SPACED_ITEM.finditer(text or "")]


def _stripped(text: str | None) -> str | None:
    return None if text is None else text.strip()
