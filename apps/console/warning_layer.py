"""The map's (一张图) layer of early warnings in force: the outline of every target region
of each published warning the user may see, coloured by level (blue, yellow, orange,
red), with a popup (title, level, type, expiry) linking to the warning page.

Registered with ``apps.regions.map_layers`` from ``ConsoleConfig.ready()`` like the
console's other layers. Scope: ``apps.early_warnings.selectors.warning_list`` (the staff
rule: targets overlapping the user's scope; nothing without ``warning.read``). Three
queries whatever the number of warnings (versions, their targets with regions, the
user's permissions).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from apps.console.map_layers import _label, _legend, _link, _localised, _time
from apps.early_warnings.models import LEVEL_RANK, WarningLevel, WarningStatus, WarningVersion
from apps.early_warnings.selectors import warning_list
from apps.regions import map_layers
from apps.regions.map_layers import FeatureCollection, LayerKind, MapLayer

LEVEL_COLOURS: dict[str, str] = {
    WarningLevel.BLUE: "#2563eb",
    WarningLevel.YELLOW: "#eab308",
    WarningLevel.ORANGE: "#ea580c",
    WarningLevel.RED: "#dc2626",
}
# Gravest first in the legend.
_LEVEL_ORDER = [WarningLevel.RED, WarningLevel.ORANGE, WarningLevel.YELLOW, WarningLevel.BLUE]


def warning_features(user: Any) -> FeatureCollection:
    """One feature per (warning in force × target region): the region's boundary, or its
    centre when it has none. The gravest are listed last, so they are drawn on top."""
    versions = list(warning_list(user=user).filter(status=WarningStatus.PUBLISHED))
    versions.sort(key=lambda v: (LEVEL_RANK.get(v.level, 0), v.sent or v.created_at))
    labels = {name: _label(WarningVersion, name) for name in ("level", "warning_type", "expires")}
    labels["targets"] = _label(WarningVersion, "regions")
    features = []
    for version in versions:
        regions = [target.region for target in version.targets.all()]
        names = "、".join(_localised(r.name_zh, r.name_en) for r in regions)
        popup = {
            "title": version.title,
            "rows": [
                [labels["level"], version.get_level_display()],
                [labels["warning_type"], version.get_warning_type_display()],
                [labels["expires"], _time(version.expires)],
                [labels["targets"], names],
            ],
            "link": _link(
                user,
                "early_warnings.view_warningversion",
                "admin:early_warnings_warningversion_change",
                version.pk,
                _("Open the warning"),
            ),
        }
        for region in regions:
            geometry = region.boundary
            if not geometry:
                if region.centre_lat is None or region.centre_lng is None:
                    continue
                geometry = map_layers.point(region.centre_lat, region.centre_lng)
            features.append(
                map_layers.feature(
                    geometry,
                    {
                        "label": version.title,
                        "colour": LEVEL_COLOURS.get(version.level, LEVEL_COLOURS["blue"]),
                        "stroke": 3,
                        "popup": popup,
                        "attrs": {"warning-id": version.pk, "level": version.level},
                    },
                    id=f"{version.pk}:{region.code}",
                )
            )
    return map_layers.collection(features)


WARNING_LAYER = MapLayer(
    key="warnings",
    title=_("Early warnings in force"),
    features=warning_features,
    kind=LayerKind.AREAS,
    colour=LEVEL_COLOURS[WarningLevel.ORANGE],
    icon="warning",
    legend=_legend(LEVEL_COLOURS, [(lv, WarningLevel(lv).label) for lv in _LEVEL_ORDER]),
    order=30,
)
