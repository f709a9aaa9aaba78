"""The console's own layers of the map (一张图): regions, incident heat, open incidents and
teams, registered with ``apps.regions.map_layers`` like any later app's layer.

Every layer reads through the one scope rule — incidents and regions through their
``visible_to(user)``, team positions through the dispatch rule for positions (staff roles
only, ``POSITION_READ_ROLES``) — in a constant number of queries, whatever the number of
rows. Coordinates leave as stored: WGS84.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Q
from django.db.models.functions import Round
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.accounts.permissions import role_scope
from apps.dispatch.models import Team, TeamStatus
from apps.dispatch.selectors.positions import POSITION_READ_ROLES
from apps.incidents.models import Incident, IncidentStatus, Severity
from apps.regions import map_layers
from apps.regions.map_layers import FeatureCollection, LayerKind, MapLayer
from apps.regions.models import Region, RegionLevel

# The national emergency colours of the four grades (Ⅰ red, Ⅱ orange, Ⅲ yellow, Ⅳ blue).
SEVERITY_COLOURS: dict[str, str] = {
    Severity.I: "#dc2626",
    Severity.II: "#ea580c",
    Severity.III: "#ca8a04",
    Severity.IV: "#2563eb",
    Severity.UNCLASSIFIED: "#6b7280",
}
TEAM_COLOURS: dict[str, str] = {
    TeamStatus.AVAILABLE: "#16a34a",
    TeamStatus.DISPATCHED: "#d97706",
    TeamStatus.BUSY: "#dc2626",
    TeamStatus.OFF_DUTY: "#9ca3af",
    TeamStatus.OUT_OF_SERVICE: "#4b5563",
}
UNCLASSIFIED_COLOUR = SEVERITY_COLOURS[Severity.UNCLASSIFIED]
REGION_COLOUR = "#0f766e"
HEAT_COLOUR = "#f97316"

# A disaster can open thousands of incidents at once: the newest this many are drawn
# (the collection says ``truncated``), each one a DOM marker.
MAX_INCIDENTS = 2000
HEAT_DAYS = 30
# Heat cells of 0.005° (about 555 m north–south, 460 m east–west at 34° N).
HEAT_CELL_DEG = 0.005
# Incidents that were not emergencies of their own stay off the heat layer.
HEAT_EXCLUDED = (IncidentStatus.MERGED, IncidentStatus.REJECTED)


def _time(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _localised(name_zh: str, name_en: str) -> str:
    language = translation.get_language() or ""
    return name_en if language.startswith("en") and name_en else name_zh


def _label(model: type, field: str) -> str:
    return str(capfirst(model._meta.get_field(field).verbose_name))  # type: ignore[attr-defined]


def _link(user: Any, perm: str, view: str, pk: int, text: Any) -> dict[str, str] | None:
    if not user.has_perm(perm):
        return None
    return {"url": reverse(view, args=[pk]), "text": str(text)}


# --- Open incidents ----------------------------------------------------------------------------


def incident_features(user: Any) -> FeatureCollection:
    """Open incidents of the user's regions, newest first, coloured by severity: two
    queries after the user's scope (the incidents with category and region, and the
    user's permissions, cached)."""
    rows = list(
        Incident.objects.visible_to(user)
        .open()
        .select_related("category", "region")
        .order_by("-created_at", "-id")[: MAX_INCIDENTS + 1]
    )
    truncated = len(rows) > MAX_INCIDENTS
    labels = {name: _label(Incident, name) for name in ("status", "severity", "category", "region")}
    labels["created_at"] = _("Reported at")
    features = []
    for incident in rows[:MAX_INCIDENTS]:
        popup = {
            "title": f"{incident.number} {incident.title}",
            "rows": [
                [labels["status"], incident.get_status_display()],
                [labels["severity"], incident.get_severity_display()],
                [
                    labels["category"],
                    _localised(incident.category.name_zh, incident.category.name_en),
                ],
                [labels["region"], _localised(incident.region.name_zh, incident.region.name_en)],
                [labels["created_at"], _time(incident.created_at)],
            ],
            "link": _link(
                user,
                "incidents.view_incident",
                "admin:incidents_incident_change",
                incident.pk,
                _("Open the incident"),
            ),
        }
        if incident.is_drill:
            popup["rows"].append([_("Drill"), _("yes")])
        features.append(
            map_layers.feature(
                map_layers.point(incident.lat, incident.lng),
                {
                    "label": incident.title,
                    "colour": SEVERITY_COLOURS.get(incident.severity, UNCLASSIFIED_COLOUR),
                    "severity": incident.severity,
                    "status": incident.status,
                    "popup": popup,
                    "attrs": {"incident-id": incident.pk, "severity": incident.severity},
                },
                id=incident.pk,
            )
        )
    return map_layers.collection(features, truncated=truncated)


# --- Teams at their last positions --------------------------------------------------------------


def team_features(user: Any) -> FeatureCollection:
    """Active teams at their last known position (``Team.last_lat``/``last_lng``, moved
    by every GPS batch of their members), coloured by status. Positions are shown under
    the dispatch rule: only inside the subtrees of the user's staff roles."""
    scope = role_scope(user, POSITION_READ_ROLES)
    if scope.is_empty:
        return map_layers.collection([])
    teams = (
        Team.objects.filter(
            scope.q("home_region__path"),
            is_active=True,
            last_lat__isnull=False,
            last_lng__isnull=False,
            last_position_at__isnull=False,
        )
        .select_related("home_region")
        .order_by("code")
    )
    labels = {name: _label(Team, name) for name in ("status", "kind", "home_region")}
    labels["last_position_at"] = _label(Team, "last_position_at")
    features = []
    for team in teams:
        popup = {
            "title": team.name,
            "rows": [
                [labels["status"], team.get_status_display()],
                [labels["kind"], team.get_kind_display()],
                [
                    labels["home_region"],
                    _localised(team.home_region.name_zh, team.home_region.name_en),
                ],
                [labels["last_position_at"], _time(team.last_position_at)],
            ],
            "link": _link(
                user,
                "dispatch.view_team",
                "admin:dispatch_team_change",
                team.pk,
                _("Open the team"),
            ),
        }
        features.append(
            map_layers.feature(
                map_layers.point(team.last_lat, team.last_lng),  # type: ignore[arg-type]
                {
                    "label": team.name,
                    "colour": TEAM_COLOURS.get(team.status, TEAM_COLOURS[TeamStatus.OFF_DUTY]),
                    "status": team.status,
                    "popup": popup,
                    "attrs": {"team-id": team.pk, "team-status": team.status},
                },
                id=team.pk,
            )
        )
    return map_layers.collection(features)


# --- Regions: boundaries where known, centres otherwise --------------------------------------


def _estimate(region: Region) -> str:
    """What the fixture says of the geometry drawn: an estimate, and how far off."""
    km = f"{region.accuracy_km:g}" if region.accuracy_km is not None else None
    if region.boundary:
        if km is None:
            return _("Estimated boundary")
        return _("Estimated boundary, within about %(km)s km") % {"km": km}
    if km is None:
        return _("Estimated centre")
    return _("Estimated centre, within about %(km)s km") % {"km": km}


def region_features(user: Any) -> FeatureCollection:
    """The new area, new towns and streets of the user's scope (and any community that
    has a boundary): the boundary where the region has one, else its centre. Estimated
    geometry is drawn dashed and says so. One query."""
    regions = (
        Region.objects.visible_to(user)
        .active()
        .filter(Q(depth__lte=2) | Q(boundary__isnull=False))
        .filter(Q(boundary__isnull=False) | Q(centre_lat__isnull=False, centre_lng__isnull=False))
        .order_by("path")
    )
    level_label = _label(Region, "level")
    confidence_label = _label(Region, "confidence")
    features = []
    for region in regions:
        name = _localised(region.name_zh, region.name_en)
        rows = [
            [level_label, region.get_level_display()],
            [confidence_label, region.get_confidence_display()],
        ]
        if region.estimated:
            rows.append([_("Position"), _estimate(region)])
        geometry = region.boundary or map_layers.point(region.centre_lat, region.centre_lng)  # type: ignore[arg-type]
        features.append(
            map_layers.feature(
                geometry,
                {
                    "label": name,
                    "level": region.level,
                    "dashed": region.estimated,
                    "stroke": {RegionLevel.NEW_AREA: 3, RegionLevel.NEW_TOWN: 2}.get(
                        region.level, 1
                    ),
                    "popup": {"title": name, "rows": rows, "link": None},
                    "attrs": {"region": region.code},
                },
                id=region.code,
            )
        )
    return map_layers.collection(features)


# --- Heat: where incidents happened in the last 30 days --------------------------------------


def heat_features(user: Any) -> FeatureCollection:
    """Incidents of the last ``HEAT_DAYS`` days in the user's regions (not merged, not
    rejected, no drills), counted per cell of ``HEAT_CELL_DEG`` by the database: one
    query, one feature per non-empty cell."""
    since = timezone.now() - timedelta(days=HEAT_DAYS)
    cells = (
        Incident.objects.visible_to(user)
        .filter(created_at__gte=since, is_drill=False)
        .exclude(status__in=HEAT_EXCLUDED)
        .annotate(
            cell_y=Round(F("lat") / HEAT_CELL_DEG),
            cell_x=Round(F("lng") / HEAT_CELL_DEG),
        )
        .values("cell_y", "cell_x")
        .annotate(n=Count("id"))
        .order_by("cell_y", "cell_x")
    )
    features = []
    for cell in cells:
        n = cell["n"]
        label = ngettext(
            "%(count)d incident in %(days)d days", "%(count)d incidents in %(days)d days", n
        ) % {"count": n, "days": HEAT_DAYS}
        lat = round(cell["cell_y"] * HEAT_CELL_DEG, 6)
        lng = round(cell["cell_x"] * HEAT_CELL_DEG, 6)
        features.append(
            map_layers.feature(
                map_layers.point(lat, lng),
                {"weight": n, "label": label},
            )
        )
    return map_layers.collection(features, days=HEAT_DAYS)


# --- Registration ------------------------------------------------------------------------------


def _legend(colours: dict[str, str], choices: list[tuple[str, Any]]) -> tuple[Any, ...]:
    """(colour, label) in the order of ``choices``; labels stay lazy (the page's language)."""
    return tuple((colours[value], label) for value, label in choices if value in colours)


# Gravest first, unclassified last.
_SEVERITY_ORDER = [Severity.I, Severity.II, Severity.III, Severity.IV, Severity.UNCLASSIFIED]


CONSOLE_LAYERS = (
    MapLayer(
        key="regions",
        title=_("Regions"),
        features=region_features,
        kind=LayerKind.AREAS,
        colour=REGION_COLOUR,
        icon="location_city",
        order=10,
    ),
    MapLayer(
        key="heat",
        title=_("Incident heat (last 30 days)"),
        features=heat_features,
        kind=LayerKind.HEAT,
        colour=HEAT_COLOUR,
        icon="local_fire_department",
        order=20,
        shown=False,
    ),
    MapLayer(
        key="teams",
        title=_("Teams"),
        features=team_features,
        kind=LayerKind.POINTS,
        colour=TEAM_COLOURS[TeamStatus.AVAILABLE],
        icon="groups",
        legend=_legend(TEAM_COLOURS, TeamStatus.choices),
        order=80,
    ),
    MapLayer(
        key="incidents",
        title=_("Open incidents"),
        features=incident_features,
        kind=LayerKind.POINTS,
        colour=SEVERITY_COLOURS[Severity.UNCLASSIFIED],
        icon="emergency",
        legend=_legend(SEVERITY_COLOURS, [(s, Severity(s).label) for s in _SEVERITY_ORDER]),
        order=90,
    ),
)


def register_console_layers() -> None:
    """Called from ``ConsoleConfig.ready()``."""
    for layer in CONSOLE_LAYERS:
        map_layers.register(layer)
