"""The dashboard's figures come from the KPI report: the same scope, window and rules,
picked into chart series; the heat map counts incidents by street and local weekday."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.utils import translation

from apps.analytics.charts import dashboard_charts
from apps.analytics.forms import KpiQuery
from apps.analytics.selectors import heat_row_path, incident_heatmap, overall_compliance
from tests.analytics.conftest import NOW, Scenario, at
from tests.factories.accounts import StaffUserFactory
from tests.factories.incidents import IncidentFactory
from tests.factories.regions import UnitFactory

pytestmark = pytest.mark.django_db

NOVEMBER = KpiQuery(date_from=date(2026, 11, 1), date_to=date(2026, 11, 21))


def test_the_heat_map_counts_incidents_by_street_and_shanghai_weekday(
    scenario: Scenario, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(4):  # scope, the counts, the names (+ membership)
        heat = incident_heatmap(user=scenario.fengdong_operator, query=NOVEMBER)

    # 三桥: I9 on Sunday 11-01 00:10 (still Saturday in UTC), I1 Tuesday 11-03, I3 and
    # the merged I6 Tuesday 11-10; the drill I4 left out. 建章: I2 Thursday, I5 Sunday.
    assert [(row["code"], row["counts"]) for row in heat["rows"]] == [
        ("fd-sanqiao", [0, 3, 0, 0, 0, 0, 1]),
        ("fd-jianzhang", [0, 0, 0, 1, 0, 0, 1]),
    ]
    assert heat["max"] == 3
    assert heat["more"] == 0


def test_the_fengxi_heat_map_has_none_of_fengdong(scenario: Scenario) -> None:
    heat = incident_heatmap(user=scenario.fengxi_operator, query=NOVEMBER)
    narrowed = incident_heatmap(
        user=scenario.fengxi_operator,
        query=KpiQuery(
            date_from=NOVEMBER.date_from, date_to=NOVEMBER.date_to, region_code="fd-sanqiao"
        ),
    )

    assert [(row["code"], row["counts"]) for row in heat["rows"]] == [
        ("fx-diaotai", [0, 0, 0, 0, 0, 0, 1])
    ]
    assert narrowed["rows"] == []


def test_community_incidents_count_in_their_street_and_new_town_ones_on_their_own(
    scenario: Scenario,
) -> None:
    community = UnitFactory(code="fd-sq-heping", name_zh="和平社区", parent=scenario.tree.sanqiao)
    for region in (community, scenario.tree.fengdong):
        IncidentFactory(region=region, created_at=at(11, 20, 9, 0))  # a Friday

    heat = incident_heatmap(user=scenario.fengdong_operator, query=NOVEMBER)

    rows = {row["code"]: row["counts"] for row in heat["rows"]}
    assert rows["fd-sanqiao"][4] == 1
    assert rows["fengdong"] == [0, 0, 0, 0, 1, 0, 0]
    assert (
        heat_row_path("/xixian/fengdong/fd-sanqiao/fd-sq-heping/") == "/xixian/fengdong/fd-sanqiao/"
    )


def test_the_dashboard_series_are_the_kpi_reports_groups(
    scenario: Scenario, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(36), translation.override("zh-hans"):
        charts = dashboard_charts(user=scenario.fengdong_operator, query=NOVEMBER, now=NOW)

    assert len(charts["daily"]["labels"]) == 21
    assert charts["daily"]["labels"][0] == "2026-11-01"
    assert len(charts["weekly"]["labels"]) == 12  # 12 weeks up to the week of 11-21
    assert sum(n or 0 for n in charts["daily"]["incidents"]) == charts["totals"]["incidents"]
    # The weekly trend reaches back 12 weeks, before the window: I8 (10-31) is in it.
    assert sum(n or 0 for n in charts["weekly"]["incidents"]) == charts["totals"]["incidents"] + 1
    assert charts["region"]["labels"] == ["建章路街道", "三桥街道"]  # in path order
    assert charts["category"]["labels"] == ["城市内涝", "燃气泄漏"]
    assert charts["team"]["incidents"] == [None, None]  # teams have tasks, not incidents
    assert set(charts["weekly"]["medians"]) == {"acquire", "respond", "arrive"}
    # met c1 c2 c6 c7 c10, breached c3 c4 c5 (c8 pending, drills and cancelled out).
    assert charts["totals"]["compliance"] == 62.5


def test_the_overall_rate_is_met_over_decided_across_kinds() -> None:
    rows: Any = [
        {"kind": "a", "met": 3, "breached": 1, "pending": 5, "compliance_rate": 0.75},
        {"kind": "b", "met": 0, "breached": 4, "pending": 0, "compliance_rate": 0.0},
    ]

    assert overall_compliance(rows) == 0.375
    assert overall_compliance([]) is None


def test_a_street_officer_gets_their_street_only(scenario: Scenario) -> None:
    officer = StaffUserFactory(region=scenario.tree.sanqiao)

    charts = dashboard_charts(user=officer, query=NOVEMBER, now=NOW)

    assert [row["code"] for row in charts["heatmap"]["rows"]] == ["fd-sanqiao"]
    assert len(charts["region"]["labels"]) == 1  # their street, at its own level
