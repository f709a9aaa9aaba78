"""The map-layer registry: apps register region-scoped layers; the map lists them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.regions import map_layers
from apps.regions.map_layers import LayerKind, MapLayer


def nothing(user: Any) -> dict[str, Any]:
    return map_layers.collection([])


@pytest.fixture
def throwaway() -> Iterator[list[str]]:
    keys: list[str] = []
    yield keys
    for key in keys:
        map_layers.unregister(key)


def test_a_registered_layer_is_listed_in_order(throwaway: list[str]) -> None:
    late = MapLayer(key="zz-late", title="late", features=nothing, order=1000)
    early = MapLayer(key="aa-early", title="early", features=nothing, order=-1)
    throwaway += ["zz-late", "aa-early"]

    map_layers.register(late)
    map_layers.register(early)

    keys = [layer.key for layer in map_layers.registered()]
    assert keys[0] == "aa-early"
    assert keys[-1] == "zz-late"
    assert map_layers.get("zz-late") is late


def test_the_console_registers_its_layers_through_the_registry() -> None:
    keys = {layer.key for layer in map_layers.registered()}

    assert {"regions", "heat", "teams", "incidents"} <= keys
    assert map_layers.get("heat").kind is LayerKind.HEAT  # type: ignore[union-attr]


def test_registering_the_same_layer_twice_is_harmless(throwaway: list[str]) -> None:
    layer = MapLayer(key="twice", title="twice", features=nothing)
    throwaway.append("twice")

    map_layers.register(layer)
    map_layers.register(layer)

    assert [lay.key for lay in map_layers.registered()].count("twice") == 1


def test_another_layer_under_a_taken_key_is_refused(throwaway: list[str]) -> None:
    map_layers.register(MapLayer(key="taken", title="one", features=nothing))
    throwaway.append("taken")

    with pytest.raises(ImproperlyConfigured):
        map_layers.register(MapLayer(key="taken", title="two", features=nothing))


@pytest.mark.parametrize(
    "options",
    [
        {"key": "Bad Key"},
        {"key": "../etc"},
        {"colour": "red"},
        {"colour": "#12345"},
        {"legend": (("url(x)", "label"),)},
        {"icon": "<b>"},
        {"kind": "lines"},
    ],
)
def test_a_malformed_layer_is_a_configuration_error(options: dict[str, Any]) -> None:
    values: dict[str, Any] = {"key": "fine", "title": "fine", "features": nothing, **options}

    with pytest.raises(ImproperlyConfigured):
        MapLayer(**values)


def test_points_are_written_in_geojson_axis_order() -> None:
    feature = map_layers.feature(map_layers.point(34.276, 108.85), {"label": "三桥"}, id=7)

    assert feature == {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [108.85, 34.276]},
        "properties": {"label": "三桥"},
        "id": 7,
    }
    assert map_layers.collection([feature], truncated=False) == {
        "type": "FeatureCollection",
        "features": [feature],
        "truncated": False,
    }
