"""一张图: the map page and its per-layer GeoJSON, region-scoped, in constant queries,
with local assets only and tile origins allowed on this page alone."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.accounts.roles import role_group_name
from apps.console import map as console_map
from apps.console.map_layers import SEVERITY_COLOURS
from apps.dispatch.models import Team, TeamStatus
from apps.incidents.models import Incident, IncidentStatus, Severity
from apps.regions import map_layers
from apps.regions.map_layers import LayerKind, MapLayer
from apps.regions.models import Region
from tests.console.conftest import ZH, client_for
from tests.dispatch.task_support import Scene
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.dispatch import TeamFactory
from tests.factories.incidents import IncidentFactory

pytestmark = pytest.mark.django_db

MAP = "/admin/console/dutydesk/map/"
CONSOLE_LAYERS = ("regions", "heat", "teams", "incidents")
TIANDITU = (
    "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
    "&TILECOL={x}&tk=test-key"
)
TIANDITU_SETTINGS = {
    "CONSOLE_MAP_TILES_URL": TIANDITU,
    "CONSOLE_MAP_TILES_LABELS_URL": TIANDITU.replace("vec_w", "cva_w").replace("=vec&", "=cva&"),
    "CONSOLE_MAP_TILES_SUBDOMAINS": ["0", "1", "2"],
    "CONSOLE_MAP_TILES_ATTRIBUTION": "天地图",
}


def data_url(key: str) -> str:
    return reverse("admin:console_dutydesk_map_data", args=[key])


def layer_of(client: Client, key: str) -> dict[str, Any]:
    response = client.get(data_url(key), **ZH)
    assert response.status_code == 200, response.content
    return response.json()


def config_of(html: str) -> dict[str, Any]:
    from html import unescape

    match = re.search(r'id="xc-map" data-config="([^"]*)"', html)
    assert match, "no #xc-map[data-config]"
    return json.loads(unescape(match.group(1)))


def img_src(response: Any) -> str:
    policy = response["Content-Security-Policy"]
    return next(d for d in policy.split(";") if d.strip().startswith("img-src")).strip()


class TwoTownsMap:
    """The scene (三桥, 沣东) with positioned teams, plus an incident and a team in 钓台
    (沣西), so each operator has something the other must not see."""

    def __init__(self, scene: Scene) -> None:
        now = timezone.now()
        self.scene = scene
        Team.objects.filter(pk__in=[scene.team.pk, scene.other_team.pk]).update(
            last_lat=34.277, last_lng=108.851, last_position_at=now
        )
        Team.objects.filter(pk=scene.other_team.pk).update(status=TeamStatus.BUSY)
        self.fengxi_incident = IncidentFactory(
            region=scene.tree.diaotai, lat=34.305, lng=108.718, severity=Severity.II
        )
        self.fengxi_team = TeamFactory(
            home_region=scene.tree.diaotai, last_lat=34.306, last_lng=108.719, last_position_at=now
        )


@pytest.fixture
def scene(db: Any) -> Scene:
    return Scene()


@pytest.fixture
def world(scene: Scene) -> TwoTownsMap:
    return TwoTownsMap(scene)


# --- The page ---------------------------------------------------------------------------------


def test_the_page_renders_for_an_operator_with_leaflet_served_locally(world: TwoTownsMap) -> None:
    response = client_for(world.scene.operator).get(MAP, **ZH)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="xc-map"' in html
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
    assert "/static/console/vendor/leaflet/leaflet.js" in assets
    assert "/static/console/vendor/leaflet/leaflet.css" in assets
    assert "/static/console/map.js" in assets
    assert all(a.startswith("/static/") for a in assets), assets
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)
    assert "<script>" not in html  # no inline script: every <script> has a src
    assert re.search(r"tracking-tight\">\s*一张图\s*</span\s*>", html)  # the header's title


def test_the_vendored_leaflet_is_complete() -> None:
    vendor = Path(console_map.__file__).parent / "static/console/vendor/leaflet"

    names = {p.relative_to(vendor).as_posix() for p in vendor.rglob("*") if p.is_file()}

    assert {"leaflet.js", "leaflet.css", "LICENSE", "images/layers.png"} <= names
    assert "Leaflet 1.9.4" in (vendor / "leaflet.js").read_text("utf-8")[:200]
    # The CSS's images must exist, or the manifest storage refuses collectstatic.
    for image in re.findall(r"url\((images/[^)]+)\)", (vendor / "leaflet.css").read_text("utf-8")):
        assert image in names


def test_the_layer_control_lists_every_console_layer_with_its_legend(world: TwoTownsMap) -> None:
    html = client_for(world.scene.operator).get(MAP, **ZH).content.decode()

    for key in CONSOLE_LAYERS:
        assert f'data-layer-toggle="{key}"' in html, key
    assert "事件热力" in html  # translated titles
    for colour in SEVERITY_COLOURS.values():
        assert f'data-colour="{colour}"' in html
    config = config_of(html)
    assert [layer["key"] for layer in config["layers"]] == [
        "regions",
        "heat",
        "warnings",  # apps/console/warning_layer.py
        "teams",
        "incidents",
    ]
    assert config["layers"][-1]["url"] == data_url("incidents")
    assert config["tiles"] is None


def test_a_layer_an_app_registers_appears_on_the_page_and_answers_its_own_data(
    world: TwoTownsMap,
) -> None:
    seen: list[Any] = []

    def shelters(user: Any) -> dict[str, Any]:
        seen.append(user)
        return map_layers.collection(
            [map_layers.feature(map_layers.point(34.3, 108.7), {"label": "避难场所"}, id=1)]
        )

    layer = MapLayer(
        key="shelters-test", title="避难场所", features=shelters, colour="#0d9488", order=50
    )
    map_layers.register(layer)
    try:
        client = client_for(world.scene.operator)
        html = client.get(MAP, **ZH).content.decode()
        data = layer_of(client, "shelters-test")
    finally:
        map_layers.unregister("shelters-test")

    assert 'data-layer-toggle="shelters-test"' in html
    keys = [entry["key"] for entry in config_of(html)["layers"]]
    assert keys.index("shelters-test") == keys.index("teams") - 1  # by order
    assert data["features"][0]["geometry"]["coordinates"] == [108.7, 34.3]
    assert [u.pk for u in seen] == [world.scene.operator.pk]


# --- Who may see it ---------------------------------------------------------------------------


def test_a_citizen_is_sent_to_the_login_for_the_page_and_the_data(world: TwoTownsMap) -> None:
    client = client_for(CitizenFactory())

    for url in (MAP, data_url("incidents")):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]


def test_a_role_without_the_duty_desk_permission_is_refused(world: TwoTownsMap) -> None:
    operator = world.scene.operator
    permission = Permission.objects.get(content_type__app_label="console", codename="view_dutydesk")
    Group.objects.get(name=role_group_name(Role.OPERATOR)).permissions.remove(permission)
    client = client_for(User.objects.get(pk=operator.pk))

    page = client.get(MAP)
    data = client.get(data_url("incidents"))

    assert page.status_code == 403
    assert data.status_code == 403
    assert data.json()["code"] == "permission_denied"
    assert "features" not in data.json()


def test_an_unknown_layer_is_a_404_in_the_error_envelope(world: TwoTownsMap) -> None:
    response = client_for(world.scene.operator).get(data_url("nothing-here"))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- Scope ------------------------------------------------------------------------------------


def test_the_fengxi_operator_gets_nothing_of_fengdong(world: TwoTownsMap) -> None:
    scene = world.scene
    client = client_for(scene.outsider_operator)

    incidents = layer_of(client, "incidents")["features"]
    teams = layer_of(client, "teams")["features"]
    regions = layer_of(client, "regions")["features"]
    heat = layer_of(client, "heat")["features"]

    assert [f["id"] for f in incidents] == [world.fengxi_incident.pk]
    assert [f["id"] for f in teams] == [world.fengxi_team.pk]
    assert {f["id"] for f in regions} == {"fx-diaotai"}  # 沣西新城 has no geometry here
    assert [f["geometry"]["coordinates"] for f in heat] == [[108.72, 34.305]]


def test_the_fengdong_operator_sees_fengdong_only(world: TwoTownsMap) -> None:
    scene = world.scene
    client = client_for(scene.operator)

    incidents = layer_of(client, "incidents")["features"]
    teams = layer_of(client, "teams")["features"]
    regions = layer_of(client, "regions")["features"]

    assert [f["id"] for f in incidents] == [scene.incident.pk]
    assert {f["id"] for f in teams} == {scene.team.pk, scene.other_team.pk}
    assert {f["id"] for f in regions} == {"fd-sanqiao"}


def test_a_commander_of_the_new_area_sees_both_towns(world: TwoTownsMap) -> None:
    commander = StaffUserFactory(region=world.scene.tree.root, region__role=Role.COMMANDER)
    client = client_for(commander)

    incidents = {f["id"] for f in layer_of(client, "incidents")["features"]}

    assert incidents == {world.scene.incident.pk, world.fengxi_incident.pk}


@pytest.mark.parametrize("key", CONSOLE_LAYERS)
def test_every_layer_is_empty_for_someone_without_regions(world: TwoTownsMap, key: str) -> None:
    # given a staff account holding the page's permissions but no membership (no scope)
    user = StaffUserFactory(is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="console", codename="view_dutydesk"),
        Permission.objects.get(content_type__app_label="incidents", codename="view_incident"),
    )
    # then
    assert layer_of(client_for(user), key)["features"] == []


# --- What each layer says ---------------------------------------------------------------------


def test_an_incident_marker_carries_its_id_severity_and_a_popup_with_a_link(
    world: TwoTownsMap,
) -> None:
    incident = world.scene.incident
    Incident.objects.filter(pk=incident.pk).update(severity=Severity.III)

    (marker,) = layer_of(client_for(world.scene.operator), "incidents")["features"]

    assert marker["geometry"] == {"type": "Point", "coordinates": [incident.lng, incident.lat]}
    properties = marker["properties"]
    assert properties["attrs"]["incident-id"] == incident.pk
    assert properties["colour"] == SEVERITY_COLOURS[Severity.III]
    popup = properties["popup"]
    assert popup["title"] == f"{incident.number} {incident.title}"
    rows = dict(popup["rows"])
    assert rows["状态"] == "已受理"
    assert rows["事件等级"].startswith("Ⅲ")
    assert rows["事件类型"] == incident.category.name_zh
    assert rows["上报时间"] == timezone.localtime(incident.created_at).strftime("%Y-%m-%d %H:%M")
    assert popup["link"]["url"] == reverse("admin:incidents_incident_change", args=[incident.pk])


def test_closed_incidents_leave_the_map(world: TwoTownsMap) -> None:
    Incident.objects.filter(pk=world.scene.incident.pk).update(
        status=IncidentStatus.CLOSED, closed_at=timezone.now()
    )

    assert layer_of(client_for(world.scene.operator), "incidents")["features"] == []


def test_teams_show_their_status_and_teams_without_a_position_are_left_out(
    world: TwoTownsMap,
) -> None:
    scene = world.scene
    scene.new_team()  # no position yet

    teams = layer_of(client_for(scene.operator), "teams")["features"]

    by_id = {f["id"]: f["properties"] for f in teams}
    assert set(by_id) == {scene.team.pk, scene.other_team.pk}
    assert by_id[scene.other_team.pk]["status"] == TeamStatus.BUSY
    assert by_id[scene.other_team.pk]["attrs"] == {
        "team-id": scene.other_team.pk,
        "team-status": "busy",
    }
    assert dict(by_id[scene.team.pk]["popup"]["rows"])["状态"] == "待命"


def test_regions_are_outlines_where_a_boundary_is_known_and_centres_otherwise(
    world: TwoTownsMap,
) -> None:
    tree = world.scene.tree
    Region.objects.filter(pk=tree.fengdong.pk).update(
        centre_lat=34.30, centre_lng=108.80, estimated=True, accuracy_km=5
    )
    Region.objects.filter(pk=tree.sanqiao.pk).update(estimated=False)

    regions = layer_of(client_for(world.scene.operator), "regions")["features"]

    by_id = {f["id"]: f for f in regions}
    assert set(by_id) == {"fengdong", "fd-sanqiao"}
    street = by_id["fd-sanqiao"]
    assert street["geometry"] == tree.sanqiao.boundary
    assert street["properties"]["label"] == "三桥街道"
    assert street["properties"]["dashed"] is False
    town = by_id["fengdong"]
    assert town["geometry"] == {"type": "Point", "coordinates": [108.80, 34.30]}
    assert town["properties"]["dashed"] is True
    assert dict(town["properties"]["popup"]["rows"])["位置"] == "估算中心点，误差约 5 公里"


def test_heat_counts_the_last_30_days_per_cell_without_merged_rejected_or_drills(
    world: TwoTownsMap,
) -> None:
    scene = world.scene
    street = scene.street
    with time_machine.travel(timezone.now() - timedelta(days=31)):
        IncidentFactory(region=street, lat=34.276, lng=108.850)  # too old
    IncidentFactory(region=street, lat=34.2761, lng=108.8501)  # same cell as the scene's
    IncidentFactory(region=street, lat=34.276, lng=108.850, status=IncidentStatus.REJECTED)
    IncidentFactory(region=street, lat=34.276, lng=108.850, is_drill=True)
    IncidentFactory(region=street, lat=34.290, lng=108.860, status=IncidentStatus.CLOSED)

    heat = layer_of(client_for(scene.operator), "heat")

    cells = {
        tuple(f["geometry"]["coordinates"]): f["properties"]["weight"] for f in heat["features"]
    }
    assert cells == {(108.85, 34.275): 2, (108.86, 34.29): 1}


# --- Constant queries -------------------------------------------------------------------------


def _queries(client: Client, key: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        layer_of(client, key)
    return len(captured.captured_queries)


@pytest.mark.parametrize("key", CONSOLE_LAYERS)
def test_each_layer_reads_in_constant_queries(world: TwoTownsMap, key: str) -> None:
    scene = world.scene
    client = client_for(scene.operator)
    client.get(MAP)  # warm the session
    few = _queries(client, key)

    for i in range(25):
        IncidentFactory(region=scene.street, lat=34.27 + i / 1000, lng=108.84 + i / 1000)
        TeamFactory(
            home_region=scene.street,
            last_lat=34.28,
            last_lng=108.85,
            last_position_at=timezone.now(),
        )
    many = _queries(client, key)

    assert many == few
    assert few <= 6


# --- Base tiles and the Content-Security-Policy -----------------------------------------------


def test_without_tiles_the_map_page_allows_no_image_origin(world: TwoTownsMap) -> None:
    response = client_for(world.scene.operator).get(MAP)

    assert img_src(response) == "img-src 'self' data:"


@override_settings(**TIANDITU_SETTINGS)
def test_configured_tiles_are_allowed_on_the_map_page_only(world: TwoTownsMap) -> None:
    client = client_for(world.scene.operator)

    page = client.get(MAP)
    other = client.get(reverse("admin:incidents_incident_changelist"))
    data = client.get(data_url("incidents"))

    allowed = img_src(page).split()[1:]
    assert allowed == [
        "'self'",
        "data:",
        "https://t0.tianditu.gov.cn",
        "https://t1.tianditu.gov.cn",
        "https://t2.tianditu.gov.cn",
    ]
    assert "tianditu" not in other["Content-Security-Policy"]
    assert "tianditu" not in data["Content-Security-Policy"]
    # the theme's relaxation stays as it is, and nothing else is widened
    assert "'unsafe-eval'" in page["Content-Security-Policy"]
    assert "script-src 'self' 'unsafe-eval'" in page["Content-Security-Policy"]
    tiles = config_of(page.content.decode())["tiles"]
    assert tiles["url"] == TIANDITU
    assert tiles["subdomains"] == ["0", "1", "2"]
    assert tiles["crs"] == "wgs84"


@override_settings(
    CONSOLE_MAP_TILES_URL="https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}",
    CONSOLE_MAP_TILES_SUBDOMAINS=["1", "2"],
    CONSOLE_MAP_TILES_CRS="gcj02",
)
def test_gcj02_tiles_tell_the_page_to_shift_coordinates(world: TwoTownsMap) -> None:
    page = client_for(world.scene.operator).get(MAP)

    assert config_of(page.content.decode())["tiles"]["crs"] == "gcj02"
    assert "https://webrd01.is.autonavi.com" in img_src(page)


@pytest.mark.parametrize(
    ("url", "subdomains", "origins"),
    [
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", [], ["https://tile.openstreetmap.org"]),
        (
            "https://{s}.tile.example.cn/{z}/{x}/{y}.png",
            [],
            ["https://a.tile.example.cn", "https://b.tile.example.cn", "https://c.tile.example.cn"],
        ),
        ("http://10.0.0.5:8080/tiles/{z}/{x}/{y}.png", [], ["http://10.0.0.5:8080"]),
    ],
)
def test_tile_origins_are_one_per_subdomain(
    url: str, subdomains: list[str], origins: list[str]
) -> None:
    config = {"url": url, "labels_url": "", "subdomains": subdomains}

    assert console_map.tile_origins(config) == origins


@pytest.mark.parametrize(
    "url", ["ftp://tiles.example.cn/{z}/{x}/{y}.png", "https://{r}.example.cn/{z}/{x}/{y}"]
)
def test_a_tile_url_that_cannot_be_allowed_is_a_configuration_error(url: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        console_map.tile_origins({"url": url, "labels_url": "", "subdomains": []})


# --- WGS84 → GCJ-02 in map.js -----------------------------------------------------------------

# Known values (eviltransform's published test points, and 三桥 of the fixture).
GCJ02_KNOWN = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
    ((34.276, 108.85), (34.27443217073002, 108.85461694014643)),
    ((48.8584, 2.2945), (48.8584, 2.2945)),  # outside China: unchanged
]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run map.js")
def test_the_pages_gcj02_transform_gives_the_known_values() -> None:
    script = Path(console_map.__file__).parent / "static/console/map.js"
    program = (
        "const vm = require('vm'), fs = require('fs'); const ctx = {}; vm.createContext(ctx);"
        f"vm.runInContext(fs.readFileSync({json.dumps(str(script))}, 'utf8'), ctx);"
        f"const points = {json.dumps([list(w) for w, _g in GCJ02_KNOWN])};"
        "console.log(JSON.stringify(points.map(p => ctx.xcMap.wgs84ToGcj02(p[0], p[1]))));"
    )
    node = shutil.which("node") or "node"

    result = subprocess.run([node, "-e", program], capture_output=True, text=True, check=True)

    shifted = json.loads(result.stdout)
    for (lat, lng), (_wgs, gcj) in zip(shifted, GCJ02_KNOWN, strict=True):
        assert lat == pytest.approx(gcj[0], abs=1e-9)
        assert lng == pytest.approx(gcj[1], abs=1e-9)


def test_the_layer_kinds_the_page_draws_are_the_registrys() -> None:
    script = (Path(console_map.__file__).parent / "static/console/map.js").read_text("utf-8")

    for kind in LayerKind:
        if kind is not LayerKind.POINTS:  # the default branch
            assert f'"{kind.value}"' in script
