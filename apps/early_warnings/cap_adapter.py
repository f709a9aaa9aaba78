"""Our warning versions ↔ the pure CAP package (``apps/early_warnings/cap/``, ``docs/cap.md``).

The package knows nothing of models; this module is the seam between the two:

- **Export**: :func:`warning_data` turns a ``WarningVersion`` into
  :class:`~apps.early_warnings.cap.mapping.WarningData` — identity, ``references``, texts,
  times, and one CAP ``area`` per target region (the region's boundary as polygons, else a
  circle around its centre, always the geocode ``XIXIAN-REGION`` = region code).
  :func:`version_cap_xml` is the CAP document of a version: a received (upstream) version
  is its stored raw message, byte for byte where its encoding allows; a draft or a version
  awaiting approval is a ``status`` Draft preview for staff.
- **Import**: :func:`receive_plan` turns a parsed upstream message
  (:class:`~apps.early_warnings.cap.mapping.ReceivedWarning`) into the keyword arguments of
  :func:`apps.early_warnings.services.warning_receive` and the regions it targets; the
  service ``warning_import_cap`` checks who may import it and stores it.

Reads only (conventions R1): the writes are the services'.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.core.errors import ApplicationError
from apps.early_warnings.cap.build import alert_to_xml
from apps.early_warnings.cap.mapping import (
    ReceivedWarning,
    WarningArea,
    WarningData,
    ring_from_lonlat,
    warning_to_alert,
)
from apps.early_warnings.cap.model import Circle, Point, Polygon, Reference, Status
from apps.early_warnings.errors import WarningErrorCode
from apps.early_warnings.models import OPEN_STATUSES, Source, WarningVersion
from apps.regions.geo import geometry_from_geojson
from apps.regions.models import Region, RegionLevel

# A circle stands for a region without a boundary: its radius by tier (km), generous so
# that the whole region is inside (centres are estimates, docs/regions.md).
CIRCLE_RADIUS_KM: dict[str, float] = {
    RegionLevel.NEW_AREA: 40.0,
    RegionLevel.NEW_TOWN: 15.0,
    RegionLevel.STREET: 5.0,
    RegionLevel.UNIT: 1.5,
}
# Receivers run point-in-polygon tests on every ring: boundaries are simplified until each
# ring has at most this many points (tolerance doubling from ~10 m).
MAX_RING_POINTS = 500
_SIMPLIFY_START_DEG = 0.0001
TEXT_MAX = 4000
TITLE_MAX = 200
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def sender_name() -> str:
    return str(getattr(settings, "EARLY_WARNINGS_SENDER_NAME", "陕西西咸新区应急管理局"))


# --- Export ----------------------------------------------------------------------------------


def _rings(boundary: Any) -> tuple[Polygon, ...]:
    """The exterior ring of each part of a (Multi)Polygon boundary, as CAP rings; holes are
    dropped (CAP polygons have none). ``()`` when the boundary is unusable."""
    try:
        geometry = geometry_from_geojson(boundary)
    except ValueError:
        return ()
    parts = list(getattr(geometry, "geoms", [geometry]))
    rings: list[Polygon] = []
    for part in parts:
        tolerance = _SIMPLIFY_START_DEG
        shape = part
        while len(shape.exterior.coords) > MAX_RING_POINTS:
            shape = part.simplify(tolerance, preserve_topology=True)
            tolerance *= 2
        coords = list(shape.exterior.coords)
        if len(coords) >= 4:
            rings.append(ring_from_lonlat(coords))
    return tuple(rings)


def area_for(region: Region) -> WarningArea:
    """One CAP area of a target region: boundary polygons, else a circle around the centre,
    else the geocode alone."""
    polygons = _rings(region.boundary) if region.boundary else ()
    circles: tuple[Circle, ...] = ()
    if not polygons and region.has_centre:
        circles = (
            Circle(
                center=Point(lat=float(region.centre_lat), lon=float(region.centre_lng)),  # type: ignore[arg-type]
                radius_km=CIRCLE_RADIUS_KM.get(region.level, 5.0),
            ),
        )
    return WarningArea(
        area_desc=region.name_zh,
        area_desc_en=region.name_en or None,
        polygons=polygons,
        circles=circles,
        region_codes=(region.code,),
    )


def _references(version: WarningVersion) -> tuple[Reference, ...]:
    """The stored references of a sent version; for a draft, the chain's sent versions
    (what publication will store)."""
    rows = version.references
    if version.status in OPEN_STATUSES:
        rows = [
            {"sender": v.sender, "identifier": v.identifier, "sent": v.sent.isoformat()}
            for v in WarningVersion.objects.filter(
                chain_id=version.chain_id, identifier__isnull=False
            )
            .exclude(pk=version.pk)
            .order_by("number")
        ]
    return tuple(
        Reference(row["sender"], row["identifier"], datetime.fromisoformat(row["sent"]))
        for row in rows
    )


def warning_data(
    version: WarningVersion, *, web: str | None = None, with_areas: bool = True
) -> WarningData:
    """The CAP view of one version (``targets__region`` prefetched saves a query per
    target). A draft gets the identifier and ``sent`` it would have if sent now."""
    from apps.early_warnings.services import identifier_for, sender

    sent = version.sent or timezone.now()
    identifier = version.identifier or identifier_for(
        chain_id=version.chain_id, number=version.number, sent=sent
    )
    areas: tuple[WarningArea, ...] = ()
    if with_areas:
        regions = sorted((t.region for t in version.targets.all()), key=lambda r: r.path)
        areas = tuple(area_for(region) for region in regions)
    return WarningData(
        identifier=identifier,
        sender=version.sender or sender(),
        sent=sent,
        msg_type=version.msg_type,
        type=version.warning_type,
        level=version.level,
        title=version.title,
        description=version.description,
        instruction=version.instruction,
        references=_references(version),
        title_en=version.title_en or None,
        description_en=version.description_en or None,
        instruction_en=version.instruction_en or None,
        onset=version.onset,
        expires=version.expires,
        web=web,
        sender_name=sender_name(),
        areas=areas,
        # The model has no drill flag yet: every warning issued here is Actual.
        is_drill=False,
        observed=bool(version.sensor_alarm_ref),
    )


def _declared_encoding(data: bytes) -> str:
    """The encoding a stored raw message is written back in: a UTF-16 BOM, else the XML
    declaration's, else UTF-8 (the encodings the safe parser reads, docs/cap.md)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    match = _DECLARED_ENCODING.match(data.lstrip(b"\xef\xbb\xbf"))
    return match.group(1).decode("ascii").lower() if match else "utf-8"


def raw_text(data: bytes) -> str:
    """A received message as text for ``WarningVersion.upstream_raw`` (the parser already
    accepted it, so it decodes)."""
    encoding = _declared_encoding(data)
    text = data.decode(encoding)
    return text.removeprefix("\ufeff") if encoding == "utf-16" else text


def raw_bytes(text: str) -> tuple[bytes, str]:
    """A stored raw message back to bytes in its declared encoding, and that encoding."""
    head = text[:200].encode("utf-8", "replace")
    encoding = _declared_encoding(head)
    if encoding.startswith("utf-16"):
        encoding = "utf-16"
    return text.encode(encoding), encoding


@dataclass(frozen=True)
class CapDocument:
    content: bytes
    charset: str | None  # the content type's charset (None: let the declaration speak)
    draft: bool  # a preview of an unsent version (never cache)


def version_cap_xml(version: WarningVersion, *, web: str | None = None) -> CapDocument:
    """The CAP 1.2 document of ``version``: the upstream message as received, or ours
    (``status`` Draft for an unsent version). ``cap_unrepresentable`` (422) when ours
    cannot be valid CAP."""
    if version.source == Source.UPSTREAM and version.upstream_raw:
        content, encoding = raw_bytes(version.upstream_raw)
        return CapDocument(
            content=content, charset="utf-8" if encoding == "utf-8" else None, draft=False
        )
    alert = warning_to_alert(warning_data(version, web=web))
    draft = version.status in OPEN_STATUSES
    if draft:
        alert = dataclasses.replace(alert, status=Status.DRAFT)
    return CapDocument(content=alert_to_xml(alert), charset="utf-8", draft=draft)


# --- Import ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivePlan:
    """What ``warning_receive`` is called with, and where the target regions came from."""

    kwargs: dict[str, Any]
    regions: list[Region]
    notes: list[str]


def _clip(text: str, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _refuse(code: WarningErrorCode, message: Any, **extra: Any) -> ApplicationError:
    return ApplicationError(code, message, extra=extra, status=422)


def _referenced_targets(identifiers: Sequence[str]) -> list[Region]:
    """The targets of the latest sent version of the chain ``identifiers`` point to."""
    if not identifiers:
        return []
    hit = (
        WarningVersion.objects.filter(
            Q(upstream_identifier__in=identifiers) | Q(identifier__in=identifiers)
        )
        .values_list("chain_id", flat=True)
        .first()
    )
    if hit is None:
        return []
    latest = (
        WarningVersion.objects.filter(chain_id=hit, identifier__isnull=False)
        .order_by("-number")
        .prefetch_related("targets__region")
        .first()
    )
    return [t.region for t in latest.targets.all()] if latest else []


def _root() -> Region:
    root = Region.objects.filter(parent__isnull=True, is_active=True).order_by("path").first()
    if root is None:  # pragma: no cover - a deployment without regions imports nothing
        raise _refuse(WarningErrorCode.CAP_NO_AREA, gettext_lazy("No region to target."))
    return root


def receive_plan(received: ReceivedWarning) -> ReceivePlan:
    """How an upstream message is stored (``docs/early-warnings.md``, "CAP 1.2"):

    - only ``Actual`` messages of type Alert, Update or Cancel (a drill would reach the
      citizens as real: the model has no drill flag), else 422;
    - targets: the active regions named by geocodes ``XIXIAN-REGION``; else, for an
      update or cancel, the targets of the chain it references; else the whole new area;
    - ``onset`` = CAP ``onset`` else ``sent``; ``expires`` = CAP ``expires`` else onset +
      ``EARLY_WARNINGS_IMPORT_DEFAULT_HOURS``; texts clipped to our field lengths (the
      raw message keeps them whole).
    """
    if not received.is_actual:
        raise _refuse(
            WarningErrorCode.CAP_NOT_ACTUAL,
            gettext_lazy("Only actual alerts are imported (not exercises, tests or drafts)."),
            status=received.status.value,
        )
    if received.msg_type not in ("alert", "update", "cancel"):
        raise _refuse(
            WarningErrorCode.CAP_UNSUPPORTED,
            gettext_lazy("Only Alert, Update and Cancel messages are imported."),
            msg_type=received.msg_type,
        )
    notes = list(received.notes)
    references = [r.identifier for r in received.references]
    codes = list(dict.fromkeys(received.region_codes))
    regions = list(Region.objects.filter(code__in=codes, is_active=True).order_by("path"))
    unknown = sorted(set(codes) - {r.code for r in regions})
    if unknown:
        notes.append(_("Unknown region codes ignored: %(codes)s.") % {"codes": ", ".join(unknown)})
    if not regions and received.msg_type != "alert":
        regions = _referenced_targets(references)
        if regions:
            notes.append(_("No region code: the targets of the referenced warning."))
    if not regions:
        regions = [_root()]
        notes.append(_("No region code: the whole new area is targeted."))
    onset = received.onset or received.sent
    expires = received.expires or onset + timedelta(
        hours=int(getattr(settings, "EARLY_WARNINGS_IMPORT_DEFAULT_HOURS", 24))
    )
    title = _clip(received.title or received.event or received.identifier, TITLE_MAX)
    kwargs: dict[str, Any] = {
        "upstream_identifier": received.identifier,
        "upstream_sender": received.sender,
        "msg_type": received.msg_type,
        "warning_type": received.type,
        "level": received.level,
        "title": title,
        "description": _clip(received.description or title, TEXT_MAX),
        "instruction": _clip(received.instruction, TEXT_MAX),
        "targets": [r.pk for r in regions],
        "onset": onset,
        "expires": expires,
        "references": references,
        "raw": raw_text(received.raw_xml),
        "notes": notes,
    }
    return ReceivePlan(kwargs=kwargs, regions=regions, notes=notes)
