"""The duty officer's dashboard: charts, the heat map, the overdue list and the export
links, each inside the user's regions and the dashboard's filter."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from apps.incidents.models import IncidentStatus
from apps.sla.models import ClockStatus
from tests.console.conftest import ZH, client_for
from tests.dispatch.task_support import Scene
from tests.factories.accounts import StaffUserFactory
from tests.factories.incidents import IncidentFactory, ReportFactory
from tests.factories.sla import SlaClockFactory

pytestmark = pytest.mark.django_db

NOW = "2026-12-07 10:00:00+08:00"  # a Monday
INDEX = "/admin/"
# Session and user, the cards (4), the filter's region picker, the overdue list (at most
# 3), five KPI reports (5-6 each) and the heat map (4): 35 today.
MAX_DASHBOARD_QUERIES = 40


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    """Before the scene is built, so its incident is created 'now' too."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _chart_data(html: str) -> dict[str, Any]:
    match = re.search(
        r'<script id="xc-chart-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, "no chart data on the page"
    return json.loads(match.group(1))


def _incident(region: Any, title: str, *, days_ago: int = 1, **kwargs: Any) -> Any:
    incident = IncidentFactory(region=region, title=title, **kwargs)
    type(incident).objects.filter(pk=incident.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )
    return incident


def test_the_dashboard_draws_its_charts_from_json_data_and_no_inline_script(scene: Scene) -> None:
    _incident(scene.street, "三桥的火情")

    html = client_for(scene.operator).get(INDEX, **ZH).content.decode()

    assert '<section id="xc-charts"' in html
    for name in ("daily", "weekly", "first_time", "category", "region", "team"):
        assert f'data-chart="{name}"' in html
    assert "console/dashboard.js" in html
    assert "unfold/js/chart/chart.js" in html  # the vendored Chart.js, no CDN
    inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
    assert inline == []
    data = _chart_data(html)
    assert len(data["series"]["daily"]["labels"]) == 30
    assert len(data["series"]["weekly"]["labels"]) == 12
    assert sum(data["series"]["daily"]["incidents"]) == 2  # the scene's incident + this one


def _html(user: Any, query: str = "") -> str:
    response = client_for(user).get(f"{INDEX}{query}", **ZH)
    assert response.status_code == 200
    return str(response.content.decode())


def _heat_rows(html: str) -> dict[str, list[int]]:
    rows = re.findall(r'<tr data-region="([^"]+)"><th>[^<]*</th>(.*?)<td>\d+</td></tr>', html)
    return {
        code: [int(n) for n in re.findall(r'data-count="(\d+)"', cells)] for code, cells in rows
    }


def _overdue_subjects(html: str) -> list[str]:
    return re.findall(
        r'<tr class="xc-(?:breached|supervised)" data-kind="overdue">'
        r'.*?<a data-role="open" href="[^"]+">([^<]+)</a>',
        html,
    )


@pytest.fixture
def both_towns(scene: Scene) -> dict[str, Any]:
    """Incidents, an overdue clock and a supervised incident in 三桥 (沣东) and in 钓台
    (沣西)."""
    from tests.factories.regions import StreetFactory

    wangsi = StreetFactory(code="fd-wangsi", name_zh="王寺街道", parent=scene.tree.fengdong)
    made = {
        "sanqiao": _incident(scene.street, "三桥的火情", days_ago=1),  # Sunday
        "wangsi": _incident(wangsi, "王寺的积水", days_ago=2),  # Saturday
        "diaotai": _incident(scene.tree.diaotai, "钓台的塌方", days_ago=1),
        "wangsi_region": wangsi,
    }
    for key, region in (("sanqiao", scene.street), ("diaotai", scene.tree.diaotai)):
        incident = made[key]
        SlaClockFactory(
            region=region,
            subject_id=incident.pk,
            subject_label=f"{incident.number} 超时{region.name_zh}",
            started_at=timezone.now() - timedelta(hours=6),
            due_at=timezone.now() - timedelta(hours=2),
            breached_at=timezone.now() - timedelta(hours=2),
        )
    made["supervised_diaotai"] = IncidentFactory(
        region=scene.tree.diaotai,
        title="钓台督办",
        status=IncidentStatus.ACCEPTED,
        supervised_at=timezone.now() - timedelta(hours=1),
    )
    return made


def test_the_fengxi_operator_sees_none_of_fengdong_numbers(
    scene: Scene, both_towns: dict[str, Any]
) -> None:
    html = _html(scene.outsider_operator)

    data = _chart_data(html)
    # 钓台: the incident of yesterday and the supervised one of today; 沣东's three: none.
    assert sum(data["series"]["daily"]["incidents"]) == 2
    assert data["series"]["region"]["labels"] == ["钓台街道"]
    assert _heat_rows(html) == {"fx-diaotai": [1, 0, 0, 0, 0, 0, 1]}
    subjects = _overdue_subjects(html)
    assert subjects == [
        f"{both_towns['diaotai'].number} 超时钓台街道",
        f"{both_towns['supervised_diaotai'].number} 钓台督办",
    ]
    for word in ("三桥", "王寺", "沣东"):
        assert word not in html


def test_the_fengdong_operator_sees_compliance_by_street_of_their_town(
    scene: Scene, both_towns: dict[str, Any]
) -> None:
    html = _html(scene.operator)

    data = _chart_data(html)
    assert sum(data["series"]["daily"]["incidents"]) == 3  # the scene's, 三桥's, 王寺's
    assert data["series"]["region"]["labels"] == ["三桥街道", "王寺街道"]
    assert _heat_rows(html) == {
        "fd-sanqiao": [1, 0, 0, 0, 0, 0, 1],
        "fd-wangsi": [0, 0, 0, 0, 0, 1, 0],
    }
    assert _overdue_subjects(html) == [f"{both_towns['sanqiao'].number} 超时三桥街道"]
    assert "钓台" not in html


def test_a_street_officer_sees_their_street_only(scene: Scene, both_towns: dict[str, Any]) -> None:
    officer = StaffUserFactory(region=scene.street)

    html = _html(officer)

    data = _chart_data(html)
    assert sum(data["series"]["daily"]["incidents"]) == 2
    assert list(_heat_rows(html)) == ["fd-sanqiao"]
    assert "王寺" not in html
    assert "钓台" not in html


def test_the_region_and_period_filter_narrow_charts_heat_map_and_overdue_list(
    scene: Scene, both_towns: dict[str, Any]
) -> None:
    street_only = _html(scene.operator, "?region=fd-wangsi")
    yesterday = _html(scene.operator, "?from=2026-12-06&to=2026-12-06")

    data = _chart_data(street_only)
    assert sum(data["series"]["daily"]["incidents"]) == 1
    assert list(_heat_rows(street_only)) == ["fd-wangsi"]
    assert _overdue_subjects(street_only) == []
    assert _chart_data(yesterday)["series"]["daily"]["labels"] == ["2026-12-06"]
    assert _heat_rows(yesterday) == {"fd-sanqiao": [0, 0, 0, 0, 0, 0, 1]}


def test_a_region_out_of_scope_gives_an_empty_dashboard_not_an_error(
    scene: Scene, both_towns: dict[str, Any]
) -> None:
    html = _html(scene.operator, "?region=fx-diaotai")

    data = _chart_data(html)
    assert sum(data["series"]["daily"]["incidents"]) == 0
    assert _heat_rows(html) == {}
    assert _overdue_subjects(html) == []
    assert "钓台" not in html


def test_an_invalid_period_shows_the_form_error_and_no_charts(scene: Scene) -> None:
    html = _html(scene.operator, "?from=2026-12-07&to=2026-12-01")

    assert 'id="xc-dashboard-filter"' in html
    assert "xc-errors" in html
    assert 'id="xc-charts"' not in html


def test_the_export_links_carry_the_filter_as_list_filters(
    scene: Scene, both_towns: dict[str, Any]
) -> None:
    html = _html(scene.operator, "?region=fd-sanqiao&from=2026-12-01&to=2026-12-07")

    links = dict(re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', html.replace("&amp;", "&")))
    by_label = {label: url for url, label in links.items()}
    incidents = by_label["事件"]
    assert incidents.startswith(reverse("admin:incidents_incident_export"))
    assert "in_street=fd-sanqiao" in incidents
    assert "created_at_from_0=2026-12-01" in incidents
    assert "created_at_to_0=2026-12-07" in incidents
    assert "is_drill__exact=0" in incidents
    assert "dispatched_at_from_0=2026-12-01" in by_label["派单任务"]
    assert "at_from_0=2026-12-01" in by_label["升级记录"]
    assert "_export=xlsx" in by_label["KPI（XLSX）"]
    assert "region=fd-sanqiao" in by_label["KPI（XLSX）"]


def test_the_dashboard_queries_do_not_grow_with_the_rows(
    scene: Scene, both_towns: dict[str, Any]
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(scene.operator)
    client.get(INDEX, **ZH)  # warm the session and the permission caches
    with CaptureQueriesContext(connection) as few:
        client.get(INDEX, **ZH)
    for n in range(20):
        _incident(scene.street, f"三桥的第{n}起", days_ago=n % 7)
        SlaClockFactory(
            region=scene.street,
            due_at=timezone.now() - timedelta(minutes=n + 1),
            started_at=timezone.now() - timedelta(hours=1),
        )
    with CaptureQueriesContext(connection) as many:
        response = client.get(INDEX, **ZH)

    assert response.status_code == 200
    # The same statements (the supervised read is skipped once clocks fill the list).
    assert len(few) <= MAX_DASHBOARD_QUERIES
    assert len(many) <= len(few)


def test_the_overdue_list_is_most_overdue_first_and_links_to_each_incident(scene: Scene) -> None:
    now = timezone.now()
    task = scene.task("accepted")
    report = ReportFactory(region=scene.street)
    supervised = IncidentFactory(
        region=scene.street, title="督办中", status=IncidentStatus.ACCEPTED, supervised_at=now
    )

    def clock(subject_type: str, subject_id: int, label: str, late: int, **kwargs: Any) -> None:
        SlaClockFactory(
            region=scene.street,
            subject_type=subject_type,
            subject_id=subject_id,
            subject_label=label,
            started_at=now - timedelta(hours=5),
            due_at=now - timedelta(minutes=late),
            **kwargs,
        )

    clock("task", task.pk, "任务超时", 30)
    clock("incident", scene.incident.pk, "事件超时", 90)
    clock("report", report.pk, "上报超时", 10)
    clock("incident", supervised.pk, "尚未到期", -60)  # due in an hour: not listed
    clock("incident", supervised.pk, "已停止", 120, status=ClockStatus.STOPPED, next_check_at=None)

    html = _html(scene.operator)

    rows = re.findall(r'data-kind="overdue">.*?href="([^"]+)">([^<]+)</a>', html)
    incident_page = reverse("admin:incidents_incident_change", args=[scene.incident.pk])
    assert rows == [
        (incident_page, "事件超时"),
        (incident_page, "任务超时"),  # a task's clock opens its incident
        (reverse("admin:incidents_report_change", args=[report.pk]), "上报超时"),
        (
            reverse("admin:incidents_incident_change", args=[supervised.pk]),
            f"{supervised.number} 督办中",
        ),
    ]
    assert "90 分钟" in html
