"""OASIS CAP 1.2 as frozen dataclasses: one class per element with children.

Field names follow the standard in snake case; repeated elements are tuples (lists passed
in are turned into tuples, so two equal messages compare equal). Optional texts are
``None`` when absent (an empty optional element reads as absent too). The constructors
check what the XSD cannot, or what our serialiser needs to write a valid document, and
raise :class:`CapValueError` otherwise:

- date-times are aware and whole-second (microseconds are dropped: CAP has none); the
  serialiser writes them with their own offset, ``+08:00`` for Asia/Shanghai;
- ``identifier`` and ``sender`` (also in references) hold no space, comma, ``<`` or ``&``
  (CAP 1.2 section 3.2.1), so ``references`` can be written and read back;
- texts hold only characters XML 1.0 allows; line ends are normalised to ``\\n`` (an XML
  parser does the same, so a round trip is exact);
- polygons are closed rings of at least four ``Point`` (first == last), latitudes in
  [-90, 90], longitudes in [-180, 180] (WGS 84); circle radii are kilometres, >= 0.

Nothing here touches Django models or XML: ``build.py`` writes, ``parse.py`` reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"


class CapValueError(ValueError):
    """A value CAP 1.2 (or our serialiser) cannot carry; ``path`` names the field."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class Status(StrEnum):
    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class MsgType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class Scope(StrEnum):
    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


class Category(StrEnum):
    GEO = "Geo"
    MET = "Met"
    SAFETY = "Safety"
    SECURITY = "Security"
    RESCUE = "Rescue"
    FIRE = "Fire"
    HEALTH = "Health"
    ENV = "Env"
    TRANSPORT = "Transport"
    INFRA = "Infra"
    CBRNE = "CBRNE"
    OTHER = "Other"


class ResponseType(StrEnum):
    SHELTER = "Shelter"
    EVACUATE = "Evacuate"
    PREPARE = "Prepare"
    EXECUTE = "Execute"
    AVOID = "Avoid"
    MONITOR = "Monitor"
    ASSESS = "Assess"
    ALL_CLEAR = "AllClear"
    NONE = "None"


class Urgency(StrEnum):
    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class Severity(StrEnum):
    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class Certainty(StrEnum):
    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


# XML 1.0 "Char": anything else cannot be written into a document at all.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# CAP 1.2 section 3.2.1: identifier and sender "MUST NOT include spaces, commas or
# restricted characters (< and &)".
_NOT_IN_IDENTIFIER = re.compile(r"[\s,<&]")


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _text(obj: Any, name: str, *, optional: bool) -> None:
    value = getattr(obj, name)
    if value is None:
        if not optional:
            raise CapValueError(name, "is required")
        return
    if not isinstance(value, str):
        raise CapValueError(name, "must be text")
    bad = _NOT_XML_CHAR.search(value)
    if bad:
        raise CapValueError(name, f"holds a character XML cannot carry (U+{ord(bad[0]):04X})")
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    _set(obj, name, None if optional and value == "" else value)


def _token(obj: Any, name: str) -> None:
    _text(obj, name, optional=False)
    value = getattr(obj, name)
    if value == "" or _NOT_IN_IDENTIFIER.search(value):
        raise CapValueError(name, "must be non-empty, without spaces, commas, '<' or '&'")


def _moment(obj: Any, name: str, *, optional: bool) -> None:
    value = getattr(obj, name)
    if value is None:
        if not optional:
            raise CapValueError(name, "is required")
        return
    if not isinstance(value, datetime):
        raise CapValueError(name, "must be a datetime")
    offset = value.utcoffset()
    if offset is None:
        raise CapValueError(name, "must be timezone-aware")
    if offset % timedelta(minutes=1) or abs(offset) >= timedelta(hours=24):
        raise CapValueError(name, "has a UTC offset CAP cannot write (whole minutes only)")
    if value.microsecond:
        _set(obj, name, value.replace(microsecond=0))


def _tuple(obj: Any, name: str, kind: type | tuple[type, ...]) -> None:
    value = getattr(obj, name)
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise CapValueError(name, "must be a list")
    items = tuple(value)
    for item in items:
        if not isinstance(item, kind):
            raise CapValueError(name, f"holds {type(item).__name__}, not the expected type")
    _set(obj, name, items)


def _enum(obj: Any, name: str, enum: type[StrEnum]) -> None:
    value = getattr(obj, name)
    try:
        _set(obj, name, enum(value))
    except ValueError:
        raise CapValueError(name, f"{value!r} is not a CAP {enum.__name__}") from None


def _enums(obj: Any, name: str, enum: type[StrEnum]) -> None:
    value = getattr(obj, name)
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise CapValueError(name, "must be a list")
    try:
        _set(obj, name, tuple(enum(item) for item in value))
    except ValueError as exc:
        raise CapValueError(name, f"{exc}; not a CAP {enum.__name__}") from None


def _texts(obj: Any, name: str) -> None:
    _tuple(obj, name, str)
    for item in getattr(obj, name):
        bad = _NOT_XML_CHAR.search(item)
        if bad or item == "":
            raise CapValueError(name, "holds an empty item or a character XML cannot carry")


@dataclass(frozen=True)
class ValuePair:
    """``eventCode``, ``parameter`` and ``geocode``: a ``valueName`` and a ``value``."""

    value_name: str
    value: str

    def __post_init__(self) -> None:
        _text(self, "value_name", optional=False)
        _text(self, "value", optional=False)


@dataclass(frozen=True)
class Point:
    """A WGS 84 point in CAP's order: latitude first (GeoJSON and Shapely put x = lon first)."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        for name, limit in (("lat", 90), ("lon", 180)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
                raise CapValueError(name, "must be a number")
            value = float(value)
            if not -limit <= value <= limit:
                raise CapValueError(name, f"{value} is outside [-{limit}, {limit}]")
            _set(self, name, value)


@dataclass(frozen=True)
class Circle:
    """CAP ``circle``: a centre and a radius in kilometres."""

    center: Point
    radius_km: float

    def __post_init__(self) -> None:
        if not isinstance(self.center, Point):
            raise CapValueError("center", "must be a Point")
        radius = self.radius_km
        if isinstance(radius, bool) or not isinstance(radius, int | float | Decimal):
            raise CapValueError("radius_km", "must be a number")
        if not 0 <= float(radius) < float("inf"):
            raise CapValueError("radius_km", "must be a finite number >= 0")
        _set(self, "radius_km", float(radius))


Polygon = tuple[Point, ...]


def check_polygon(ring: Any) -> Polygon:
    """A closed ring of at least four points (first == last), as a tuple."""
    if isinstance(ring, str) or not hasattr(ring, "__iter__"):
        raise CapValueError("polygons", "a polygon must be a list of points")
    points = tuple(ring)
    if not all(isinstance(point, Point) for point in points):
        raise CapValueError("polygons", "a polygon must be a list of points")
    if len(points) < 4:
        raise CapValueError("polygons", "a polygon needs at least four points")
    if points[0] != points[-1]:
        raise CapValueError("polygons", "a polygon must be closed (first point == last point)")
    return points


@dataclass(frozen=True)
class Reference:
    """One entry of ``references``: the earlier message this one updates or cancels."""

    sender: str
    identifier: str
    sent: datetime

    def __post_init__(self) -> None:
        _token(self, "sender")
        _token(self, "identifier")
        _moment(self, "sent", optional=False)


@dataclass(frozen=True)
class Resource:
    resource_desc: str
    mime_type: str
    size: int | None = None
    uri: str | None = None
    deref_uri: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        _text(self, "resource_desc", optional=False)
        _text(self, "mime_type", optional=False)
        if self.size is not None and (
            isinstance(self.size, bool) or not isinstance(self.size, int)
        ):
            raise CapValueError("size", "must be an integer")
        for name in ("uri", "deref_uri", "digest"):
            _text(self, name, optional=True)


@dataclass(frozen=True)
class Area:
    area_desc: str
    polygons: tuple[Polygon, ...] = ()
    circles: tuple[Circle, ...] = ()
    geocodes: tuple[ValuePair, ...] = ()
    altitude: Decimal | None = None
    ceiling: Decimal | None = None

    def __post_init__(self) -> None:
        _text(self, "area_desc", optional=False)
        if isinstance(self.polygons, str) or not hasattr(self.polygons, "__iter__"):
            raise CapValueError("polygons", "must be a list of rings")
        _set(self, "polygons", tuple(check_polygon(ring) for ring in self.polygons))
        _tuple(self, "circles", Circle)
        _tuple(self, "geocodes", ValuePair)
        for name in ("altitude", "ceiling"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | Decimal):
                raise CapValueError(name, "must be a Decimal (feet above mean sea level)")
            value = Decimal(value)
            if not value.is_finite():
                raise CapValueError(name, "must be finite")
            _set(self, name, value)
        if self.ceiling is not None and self.altitude is None:
            raise CapValueError("ceiling", "needs an altitude (CAP 1.2 section 3.2.4)")


@dataclass(frozen=True)
class Info:
    categories: tuple[Category, ...]
    event: str
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    language: str = "en-US"  # the XSD's default when the element is absent
    response_types: tuple[ResponseType, ...] = ()
    audience: str | None = None
    event_codes: tuple[ValuePair, ...] = ()
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    parameters: tuple[ValuePair, ...] = ()
    resources: tuple[Resource, ...] = ()
    areas: tuple[Area, ...] = ()

    def __post_init__(self) -> None:
        _text(self, "language", optional=False)
        if not re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", self.language):
            raise CapValueError("language", f"{self.language!r} is not an RFC 3066 tag")
        _enums(self, "categories", Category)
        if not self.categories:
            raise CapValueError("categories", "at least one category is required")
        _text(self, "event", optional=False)
        _enums(self, "response_types", ResponseType)
        _enum(self, "urgency", Urgency)
        _enum(self, "severity", Severity)
        _enum(self, "certainty", Certainty)
        for name in ("audience", "sender_name", "headline", "description", "instruction"):
            _text(self, name, optional=True)
        for name in ("web", "contact"):
            _text(self, name, optional=True)
        for name in ("effective", "onset", "expires"):
            _moment(self, name, optional=True)
        _tuple(self, "event_codes", ValuePair)
        _tuple(self, "parameters", ValuePair)
        _tuple(self, "resources", Resource)
        _tuple(self, "areas", Area)


@dataclass(frozen=True)
class Alert:
    identifier: str
    sender: str
    sent: datetime
    status: Status
    msg_type: MsgType
    scope: Scope
    source: str | None = None
    restriction: str | None = None
    addresses: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    note: str | None = None
    references: tuple[Reference, ...] = ()
    incidents: tuple[str, ...] = ()
    infos: tuple[Info, ...] = ()

    def __post_init__(self) -> None:
        _token(self, "identifier")
        _token(self, "sender")
        _moment(self, "sent", optional=False)
        _enum(self, "status", Status)
        _enum(self, "msg_type", MsgType)
        _enum(self, "scope", Scope)
        for name in ("source", "restriction", "note"):
            _text(self, name, optional=True)
        for name in ("addresses", "incidents"):
            _texts(self, name)
            if any('"' in item for item in getattr(self, name)):
                raise CapValueError(name, "an item cannot hold a double quote")
        _texts(self, "codes")
        _tuple(self, "references", Reference)
        _tuple(self, "infos", Info)
