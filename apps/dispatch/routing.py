"""Travel time from a team to an incident, behind one small interface.

``RoutingProvider.eta_seconds(from_lat, from_lng, to_lat, to_lng, *, profile=...)``
answers the driving time in seconds. The default, :class:`GreatCircleProvider`, needs no
network: great-circle distance × a road-winding factor ÷ a speed from a profile.

Settings (all optional):

``DISPATCH_SPEED_PROFILE_KMH``
    average speed by profile, e.g. ``{"default": 30, "fire": 40, "medical": 40,
    "volunteer": 20}``. The profile is the team's kind; a key ``"<kind>@<region code>"``
    (e.g. ``"fire@fengxi"``) overrides it in that region, for towns with slower roads.
    Missing keys fall back to ``"default"`` (30 km/h if absent too).
``DISPATCH_ROAD_FACTOR``
    road distance ÷ great-circle distance, default 1.3 (typical for a grid of urban
    roads; a straight line underestimates every real route).
``DISPATCH_ROUTING_PROVIDER``
    dotted path of a class implementing :class:`RoutingProvider` (e.g. an adapter to a
    map vendor's routing API); default ``apps.dispatch.routing.GreatCircleProvider``.

Contract for other providers: an ETA must never be shorter than the great-circle
distance at :func:`max_speed_kmh` (``recommendation.py`` uses that lower bound to stop
widening its search). A real road network satisfies it by construction.
"""

from __future__ import annotations

import functools
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string

from apps.regions.geo import haversine_km

DEFAULT_SPEED_KMH = 30.0
DEFAULT_ROAD_FACTOR = 1.3
DEFAULT_PROVIDER = "apps.dispatch.routing.GreatCircleProvider"


@runtime_checkable
class RoutingProvider(Protocol):
    """Anything that answers a driving time between two WGS84 points."""

    def eta_seconds(
        self,
        from_lat: float,
        from_lng: float,
        to_lat: float,
        to_lng: float,
        *,
        profile: str = "default",
    ) -> float: ...


def speed_profile() -> dict[str, float]:
    configured = getattr(settings, "DISPATCH_SPEED_PROFILE_KMH", None) or {}
    profile = {str(key): float(value) for key, value in configured.items()}
    profile.setdefault("default", DEFAULT_SPEED_KMH)
    return profile


def road_factor() -> float:
    return float(getattr(settings, "DISPATCH_ROAD_FACTOR", DEFAULT_ROAD_FACTOR))


def max_speed_kmh() -> float:
    """The fastest configured speed: with a factor of 1 it bounds every ETA from below."""
    return max(speed_profile().values())


def profile_key(kind: str, region_code: str | None = None) -> str:
    """The profile of a team kind, region-specific when configured (``"fire@fengxi"``)."""
    if region_code:
        regional = f"{kind}@{region_code}"
        if regional in speed_profile():
            return regional
    return kind


class GreatCircleProvider:
    """ETA = great-circle km × road factor ÷ profile speed. No network, ~1 µs a call.

    Speeds and the factor are read once per instance (settings do not change at run
    time; tests that override them build a new provider).
    """

    def __init__(
        self, speeds_kmh: dict[str, float] | None = None, factor: float | None = None
    ) -> None:
        self.speeds_kmh = speeds_kmh if speeds_kmh is not None else speed_profile()
        self.speeds_kmh.setdefault("default", DEFAULT_SPEED_KMH)
        self.factor = factor if factor is not None else road_factor()

    def speed_kmh(self, profile: str) -> float:
        return self.speeds_kmh.get(profile) or self.speeds_kmh["default"]

    def eta_seconds(
        self,
        from_lat: float,
        from_lng: float,
        to_lat: float,
        to_lng: float,
        *,
        profile: str = "default",
    ) -> float:
        km = haversine_km(from_lat, from_lng, to_lat, to_lng) * self.factor
        return km / self.speed_kmh(profile) * 3600.0

    def eta_lower_bound_seconds(self, km: float) -> float:
        """No team ``km`` away in a straight line arrives sooner than this (any profile)."""
        return km * self.factor / max(self.speeds_kmh.values()) * 3600.0


@functools.cache
def _provider_for(path: str) -> RoutingProvider:
    provider: RoutingProvider = import_string(path)()
    return provider


def get_routing_provider() -> RoutingProvider:
    """The configured provider (one instance per process and setting value)."""
    return _provider_for(getattr(settings, "DISPATCH_ROUTING_PROVIDER", DEFAULT_PROVIDER))
