"""一张图, the command centre's map: the page and its per-layer GeoJSON endpoint, both
under ``/admin/console/dutydesk/map/`` (``DutyDeskAdmin`` routes them here).

The page lists every layer registered with ``apps.regions.map_layers`` (the console's own
and those of later apps) and draws them with the vendored Leaflet
(``static/console/vendor/leaflet/``, ``static/console/map.js``); each layer's data comes
from ``map/data/<key>/``, region-scoped by the layer's own function. Base tiles are a
setting (``CONSOLE_MAP_TILES_*``, docs/admin.md "Map"); without them the map draws on a
plain background and needs nothing from outside. With them, the tile servers' origins
are added to this page's ``img-src`` only.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.core.errors import DEFAULT_MESSAGES, ErrorCode
from apps.core.exceptions import envelope
from apps.regions import map_layers

TILE_CRS = ("wgs84", "gcj02")
# Where the map opens when no layer has anything to fit (the new area's middle).
DEFAULT_CENTRE = (34.33, 108.75)
DEFAULT_ZOOM = 11
# The page reloads each shown layer's data this often (seconds), unless a popup is open.
REFRESH_SECONDS = 60


def tiles() -> dict[str, Any] | None:
    """The base-map settings as the page's script takes them, or ``None`` (no tiles)."""
    url = getattr(settings, "CONSOLE_MAP_TILES_URL", "")
    if not url:
        return None
    crs = getattr(settings, "CONSOLE_MAP_TILES_CRS", "wgs84")
    if crs not in TILE_CRS:
        raise ImproperlyConfigured(f"CONSOLE_MAP_TILES_CRS must be one of {TILE_CRS}")
    return {
        "url": url,
        "labels_url": getattr(settings, "CONSOLE_MAP_TILES_LABELS_URL", ""),
        "attribution": getattr(settings, "CONSOLE_MAP_TILES_ATTRIBUTION", ""),
        "subdomains": list(getattr(settings, "CONSOLE_MAP_TILES_SUBDOMAINS", []) or []),
        "max_zoom": int(getattr(settings, "CONSOLE_MAP_TILES_MAX_ZOOM", 18)),
        "crs": crs,
        "referrer_policy": getattr(settings, "CONSOLE_MAP_TILES_REFERRER_POLICY", ""),
    }


def tile_origins(config: dict[str, Any] | None = None) -> list[str]:
    """The origins the page loads tiles from, one per subdomain (``{s}`` in the host):
    what its ``img-src`` must allow. Leaflet's default subdomains are ``a``, ``b``, ``c``."""
    config = tiles() if config is None else config
    if config is None:
        return []
    origins: list[str] = []
    for template in (config["url"], config["labels_url"]):
        if not template:
            continue
        parts = urlsplit(template)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ImproperlyConfigured(f"map tiles URL {template!r}: http(s) URL expected")
        hosts = [parts.netloc]
        if "{s}" in parts.netloc:
            hosts = [parts.netloc.replace("{s}", s) for s in config["subdomains"] or "abc"]
        for host in hosts:
            if "{" in host or "}" in host:
                raise ImproperlyConfigured(f"map tiles URL {template!r}: only {{s}} in the host")
            origin = f"{parts.scheme}://{host}"
            if origin not in origins:
                origins.append(origin)
    return origins


def allow_tile_images(response: HttpResponseBase, origins: list[str]) -> None:
    """Add ``origins`` to the response's ``img-src`` (django-csp's per-response update,
    which ``AdminThemeCspMiddleware`` extends for the theme)."""
    if not origins:
        return
    update = dict(getattr(response, "_csp_update", None) or {})
    update["img-src"] = [*update.get("img-src", []), *origins]
    response._csp_update = update  # type: ignore[attr-defined]


def map_page(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """The page: layer control with legends, the map, and its configuration."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    base = tiles()
    layers = map_layers.registered()
    config = {
        "layers": [
            {
                "key": layer.key,
                "title": layer.title,
                "kind": layer.kind,
                "colour": layer.colour,
                "icon": layer.icon,
                "shown": layer.shown,
                "url": reverse("admin:console_dutydesk_map_data", args=[layer.key]),
            }
            for layer in layers
        ],
        "tiles": base,
        "centre": DEFAULT_CENTRE,
        "zoom": DEFAULT_ZOOM,
        "refresh": REFRESH_SECONDS,
        "strings": {
            "failed": _("This layer could not be loaded. It is tried again in a minute."),
            "truncated": _("Only the newest are shown."),
        },
    }
    context = {
        # no "opts": the theme's header then reads 一张图 (the title), not the model's name
        **model_admin.admin_site.each_context(request),
        "title": _("Map"),
        "layers": layers,
        "tiles": base,
        "config": json.dumps(config, cls=DjangoJSONEncoder, ensure_ascii=False),
    }
    response = TemplateResponse(request, "admin/console/map.html", context)
    allow_tile_images(response, tile_origins(base))
    return response


def picker_config(user: Any) -> dict[str, Any]:
    """The location picker of 电话接警 (``static/console/intake_map.js``): the same base
    tiles as the map and, for those who may open the map, the region outlines as a guide."""
    regions_url = None
    if user.has_perm("console.view_dutydesk"):
        regions_url = reverse("admin:console_dutydesk_map_data", args=["regions"])
    return {
        "tiles": tiles(),
        "centre": DEFAULT_CENTRE,
        "zoom": DEFAULT_ZOOM,
        "regions_url": regions_url,
    }


def map_data(model_admin: Any, request: HttpRequest, key: str) -> JsonResponse:
    """One layer's GeoJSON FeatureCollection for ``request.user``."""
    if not model_admin.has_view_permission(request):
        code = ErrorCode.PERMISSION_DENIED
        return JsonResponse(envelope(code, DEFAULT_MESSAGES[code]), status=403)
    layer = map_layers.get(key)
    if layer is None:
        code = ErrorCode.NOT_FOUND
        return JsonResponse(envelope(code, DEFAULT_MESSAGES[code]), status=404)
    return JsonResponse(layer.features(request.user), json_dumps_params={"ensure_ascii": False})
