"""The layers of the command centre's map (一张图): a registry the apps that own the data
fill, and the GeoJSON they answer in.

The map page (``apps.console``, the top layer) lists every registered layer in its layer
control and fetches each one from ``/admin/console/dutydesk/map/data/<key>/``. The
registry lives here, in the geography app, so that every app above may register with it
from its ``AppConfig.ready()`` without the console importing it or it importing the
console (docs/architecture.md section 2):

    from apps.regions.map_layers import LayerKind, MapLayer, register

    register(MapLayer(key="shelters", title=_("Shelters"), features=shelter_features,
                      kind=LayerKind.POINTS, colour="#0d9488", icon="night_shelter"))

``features(user)`` returns a GeoJSON ``FeatureCollection`` of what ``user`` may see: it
MUST be region-scoped (the app's ``visible_to(user)``, conventions R9) and should read in
a constant number of queries. Coordinates are WGS84, in GeoJSON order ``[lng, lat]`` —
:func:`point` takes ``lat, lng`` and writes them in that order. The page shifts them
for GCJ-02 tiles itself (docs/admin.md, "Map").

Properties the page understands on each feature (all optional):

- ``label``: a short text, the marker's tooltip (an area's permanent label);
- ``colour``: ``#rrggbb``, instead of the layer's colour; ``icon``: a Material Symbols
  name, instead of the layer's icon (points);
- ``popup``: ``{"title": str, "rows": [[label, value], ...], "link": {"url", "text"}}``,
  shown on click, every text as text (never HTML);
- ``attrs``: ``{"incident-id": 7}`` → ``data-incident-id="7"`` on the marker's element;
- ``dashed``: draw the outline dashed (an estimated boundary); ``stroke``: its width;
- ``weight`` (heat layers): the point's weight (the heaviest is drawn darkest and largest).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import Promise

__all__ = [
    "FeatureCollection",
    "LayerKind",
    "MapLayer",
    "collection",
    "feature",
    "get",
    "point",
    "register",
    "registered",
    "unregister",
]

FeatureCollection = dict[str, Any]
Text = str | Promise

_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ICON = re.compile(r"^[a-z0-9_]{0,40}$")


class LayerKind(StrEnum):
    """How the page draws a layer's features."""

    POINTS = "points"  # a pin per Point, in the feature's or the layer's colour
    AREAS = "areas"  # outlines of (Multi)Polygons; Points as small labelled centres
    HEAT = "heat"  # Points with a ``weight``: shaded cells, darker where heavier


@dataclass(frozen=True)
class MapLayer:
    """One layer of the map. ``key`` is its URL part; ``order`` sorts the layer control
    (lower first, drawn below); ``shown``: drawn when the page opens. ``legend`` pairs
    a colour with what it means (e.g. the severities)."""

    key: str
    title: Text
    features: Callable[[Any], FeatureCollection]
    kind: LayerKind = LayerKind.POINTS
    colour: str = "#2563eb"
    icon: str = "location_on"
    legend: tuple[tuple[str, Text], ...] = ()
    order: int = 100
    shown: bool = True

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ImproperlyConfigured(f"map layer key {self.key!r}: lowercase slug expected")
        colours = [self.colour, *(colour for colour, _label in self.legend)]
        for colour in colours:
            if not _COLOUR.match(colour):
                raise ImproperlyConfigured(f"map layer {self.key}: colour {colour!r} not #rrggbb")
        if not _ICON.match(self.icon):
            raise ImproperlyConfigured(f"map layer {self.key}: icon {self.icon!r}")
        try:
            object.__setattr__(self, "kind", LayerKind(self.kind))
        except ValueError:
            raise ImproperlyConfigured(f"map layer {self.key}: kind {self.kind!r}") from None


_layers: dict[str, MapLayer] = {}


def register(layer: MapLayer) -> MapLayer:
    """Add ``layer``; registering the same layer again is a no-op, another one under a
    key already taken is a configuration error."""
    existing = _layers.get(layer.key)
    if existing is not None and existing != layer:
        raise ImproperlyConfigured(f"map layer {layer.key!r} is already registered")
    _layers[layer.key] = layer
    return layer


def unregister(key: str) -> None:
    """Remove the layer under ``key`` (tests; an app that turns a layer off)."""
    _layers.pop(key, None)


def registered() -> list[MapLayer]:
    """Every layer, in the order of the layer control."""
    return sorted(_layers.values(), key=lambda layer: (layer.order, layer.key))


def get(key: str) -> MapLayer | None:
    return _layers.get(key)


# --- GeoJSON (RFC 7946) ----------------------------------------------------------------------


def point(lat: float, lng: float) -> dict[str, Any]:
    """A GeoJSON Point: axes in GeoJSON order, ``[lng, lat]``."""
    return {"type": "Point", "coordinates": [lng, lat]}


def feature(
    geometry: dict[str, Any], properties: dict[str, Any], *, id: Any = None
) -> dict[str, Any]:
    result: dict[str, Any] = {"type": "Feature", "geometry": geometry, "properties": properties}
    if id is not None:
        result["id"] = id
    return result


def collection(features: Iterable[dict[str, Any]], **members: Any) -> FeatureCollection:
    """A FeatureCollection; ``members`` are foreign members (e.g. ``truncated=True``)."""
    return {"type": "FeatureCollection", "features": list(features), **members}
