"""KPI API on the known scenario of conftest.py: the numbers equal the hand-computed ones.

Percentiles are continuous (``percentile_cont``): p90 of [a, b, c] sits at rank
0.9 × 2 = 1.8, i.e. b + 0.8 × (c − b); of [a, b] at 0.9, i.e. a + 0.9 × (b − a).
"""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.models import User
from tests.analytics.conftest import NOW, WINDOW, Scenario, at
from tests.factories.accounts import CitizenFactory
from tests.factories.dispatch import DispatchTaskFactory
from tests.factories.incidents import IncidentFactory, ReportFactory
from tests.factories.sla import SlaClockFactory

pytestmark = pytest.mark.django_db

URL = "v1:analytics-kpis"


def kpis(user: User, **params: Any) -> dict[str, Any]:
    client = APIClient()
    client.force_authenticate(user)
    with time_machine.travel(NOW, tick=False):
        response = client.get(reverse(URL), {**WINDOW, **params})
    assert response.status_code == 200, response.json()
    return response.json()  # type: ignore[no-any-return]


def stats(count: int, mean: float | None, median: float | None, p90: float | None) -> dict:
    return {"count": count, "mean_s": mean, "median_s": median, "p90_s": p90}


def by_key(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {group["key"]: group for group in report["groups"]}


def sla(report_group: dict[str, Any]) -> dict[str, tuple[int, int, int, float | None]]:
    return {
        row["kind"]: (row["met"], row["breached"], row["pending"], row["compliance_rate"])
        for row in report_group["sla"]
    }


NO_INTERVAL = stats(0, None, None, None)


# --- The totals of 沣东 --------------------------------------------------------------------------


def test_the_totals_of_fengdong_equal_the_hand_computed_intervals(scenario: Scenario) -> None:
    # when
    report = kpis(scenario.fengdong_operator)

    # then
    total = report["total"]
    # I1, I2, I3, I5 (rejected), I6 (merged), I9; not the drill I4, not I8 (before the
    # window), not 沣西's I7.
    assert total["incidents"] == {"total": 6, "rejected": 1, "merged": 1, "reopened": 1}
    assert total["tasks"] == {"total": 4, "declined": 1, "expired": 0, "cancelled": 0}
    intervals = total["intervals"]
    # acquire: I1 report 09:00 → 09:04 = 240, I2 600, I3 report 08:00 → 08:02 = 120,
    # I9 300 (the merged I6 is not measured) → [120, 240, 300, 600]
    assert intervals["acquire"] == stats(4, 315.0, 270.0, 510.0)
    # dispatch: I1 09:04 → 09:10 = 360, I2 14:10 → 14:30 (the declined K2) = 1200, I3 180
    assert intervals["dispatch"] == stats(3, 580.0, 360.0, 1032.0)
    # respond: K1 120, K3 60, K4 180 (K2 declined: not counted)
    assert intervals["respond"] == stats(3, 120.0, 120.0, 168.0)
    # arrive: K1 900, K3 1800 (K4 is still en route: not measured up to now)
    assert intervals["arrive"] == stats(2, 1350.0, 1350.0, 1710.0)
    # resolve: I1 09:04 → 10:40 = 5760; reopened I2 11-05 14:10 → 11-06 16:00 = 93000
    # (the standing resolution); I3 is still in progress
    assert intervals["resolve"] == stats(2, 49380.0, 49380.0, 84276.0)
    # verify: I1 10:40 → 11-04 09:40 = 82800; I2 11-06 16:00 → 11-07 09:00 = 61200
    assert intervals["verify"] == stats(2, 72000.0, 72000.0, 80640.0)


def test_sla_compliance_of_fengdong_counts_met_breached_and_pending_per_kind(
    scenario: Scenario,
) -> None:
    report = kpis(scenario.fengdong_operator)

    assert sla(report["total"]) == {
        "report_triage": (0, 0, 1, None),  # c8 still within its deadline
        "dispatch": (1, 0, 0, 1.0),  # c7; the cancelled c9 is not counted
        "task_accept": (2, 1, 0, 0.6667),  # c1, c2 (stopped at the deadline) / c3
        "task_arrival": (1, 1, 0, 0.5),  # c10 / c4 running past due, not yet swept
        "incident_resolution": (0, 1, 0, 0.0),  # c5 marked by the sweeper
        "incident_verification": (1, 0, 0, 1.0),  # c6
    }
    # Listed in SlaKind order.
    assert [row["kind"] for row in report["total"]["sla"]] == [
        "report_triage",
        "dispatch",
        "task_accept",
        "task_arrival",
        "incident_resolution",
        "incident_verification",
    ]


def test_the_report_echoes_the_query_and_the_timezone(scenario: Scenario) -> None:
    report = kpis(scenario.fengdong_operator, region="fengdong", group_by="category")

    assert report["region"] == {
        "code": "fengdong",
        "name_zh": "沣东新城",
        "name_en": scenario.tree.fengdong.name_en,
        "level": "new_town",
    }
    assert (report["date_from"], report["date_to"]) == ("2026-11-01", "2026-11-21")
    assert report["group_by"] == "category"
    assert report["include_drills"] is False
    assert report["timezone"] == "Asia/Shanghai"


# --- Groups ------------------------------------------------------------------------------------


def test_grouped_by_team_only_task_intervals_and_task_clocks_count(scenario: Scenario) -> None:
    report = kpis(scenario.fengdong_operator, group_by="team")

    assert [(g["key"], g["label"]) for g in report["groups"]] == [
        ("fd-team-1", "三桥救援队"),
        ("fd-team-2", "建章路救援队"),
    ]
    team1, team2 = report["groups"]
    assert team1["tasks"] == {"total": 3, "declined": 0, "expired": 0, "cancelled": 0}
    assert team1["intervals"]["respond"] == stats(3, 120.0, 120.0, 168.0)
    assert team1["intervals"]["arrive"] == stats(2, 1350.0, 1350.0, 1710.0)
    # An incident is not one team's: no incident figures in team groups.
    assert team1["incidents"] is None
    assert {name: team1["intervals"][name] for name in ("acquire", "dispatch", "resolve")} == {
        "acquire": None,
        "dispatch": None,
        "resolve": None,
    }
    assert sla(team1) == {"task_accept": (2, 0, 0, 1.0), "task_arrival": (1, 1, 0, 0.5)}
    assert team2["tasks"] == {"total": 1, "declined": 1, "expired": 0, "cancelled": 0}
    assert team2["intervals"]["respond"] == NO_INTERVAL
    assert sla(team2) == {"task_accept": (0, 1, 0, 0.0)}
    # The total still covers everything, incident intervals included.
    assert report["total"]["intervals"]["acquire"]["count"] == 4


def test_grouped_by_region_splits_fengdong_into_its_streets(scenario: Scenario) -> None:
    report = kpis(scenario.fengdong_operator, group_by="region")

    assert [(g["key"], g["label"]) for g in report["groups"]] == [
        ("fd-jianzhang", "Jianzhanglu Subdistrict"),
        ("fd-sanqiao", scenario.tree.sanqiao.name_en),
    ]
    groups = by_key(report)
    jianzhang, sanqiao = groups["fd-jianzhang"], groups["fd-sanqiao"]
    assert jianzhang["incidents"] == {"total": 2, "rejected": 1, "merged": 0, "reopened": 1}
    assert jianzhang["intervals"]["acquire"] == stats(1, 600.0, 600.0, 600.0)
    # K3 (team 1 from 三桥) worked in 建章路: a task counts where its incident is.
    assert jianzhang["intervals"]["respond"] == stats(1, 60.0, 60.0, 60.0)
    assert jianzhang["intervals"]["resolve"] == stats(1, 93000.0, 93000.0, 93000.0)
    assert sla(jianzhang) == {"report_triage": (0, 0, 1, None), "task_accept": (0, 1, 0, 0.0)}
    assert sanqiao["incidents"] == {"total": 4, "rejected": 0, "merged": 1, "reopened": 0}
    # I1 240, I3 120, I9 300 → [120, 240, 300]: p90 = 240 + 0.8 × 60
    assert sanqiao["intervals"]["acquire"] == stats(3, 220.0, 240.0, 288.0)
    assert sanqiao["intervals"]["dispatch"] == stats(2, 270.0, 270.0, 342.0)
    assert sanqiao["intervals"]["arrive"] == stats(1, 900.0, 900.0, 900.0)


def test_grouped_by_category_orders_by_the_taxonomy(scenario: Scenario) -> None:
    report = kpis(scenario.fengdong_operator, group_by="category")

    # N02 sorts before A02 (sort_order 1 < 2); labels follow the request language (en).
    assert [(g["key"], g["label"]) for g in report["groups"]] == [
        ("N02", "Waterlogging"),
        ("A02", "Gas leak"),
    ]
    gas = by_key(report)["A02"]
    assert gas["incidents"]["total"] == 4
    assert gas["intervals"]["respond"] == stats(2, 150.0, 150.0, 174.0)  # K1 120, K4 180


def test_grouped_by_day_lists_every_local_day_of_the_window(scenario: Scenario) -> None:
    report = kpis(scenario.fengdong_operator, group_by="day")

    days = [g["key"] for g in report["groups"]]
    assert len(days) == 21
    assert (days[0], days[-1]) == ("2026-11-01", "2026-11-21")
    groups = by_key(report)
    # I9 came in at 00:10 on 11-01 Asia/Shanghai (still 10-31 in UTC): it is 11-01's.
    assert groups["2026-11-01"]["intervals"]["acquire"] == stats(1, 300.0, 300.0, 300.0)
    assert groups["2026-11-03"]["intervals"]["arrive"] == stats(1, 900.0, 900.0, 900.0)
    assert sla(groups["2026-11-03"]) == {
        "dispatch": (1, 0, 0, 1.0),
        "task_accept": (1, 0, 0, 1.0),
        "task_arrival": (1, 0, 0, 1.0),
        "incident_verification": (1, 0, 0, 1.0),
    }
    # A quiet day is listed with zeros.
    quiet = groups["2026-11-02"]
    assert quiet["incidents"] == {"total": 0, "rejected": 0, "merged": 0, "reopened": 0}
    assert quiet["intervals"]["acquire"] == NO_INTERVAL
    assert quiet["sla"] == []


def test_grouped_by_week_starts_weeks_on_monday(scenario: Scenario) -> None:
    report = kpis(scenario.fengdong_operator, group_by="week")

    # 2026-11-01 is a Sunday: its week began on Monday 10-26.
    assert [g["key"] for g in report["groups"]] == [
        "2026-10-26",
        "2026-11-02",
        "2026-11-09",
        "2026-11-16",
    ]
    groups = by_key(report)
    assert groups["2026-10-26"]["incidents"]["total"] == 1  # I9 only: I8 lies before "from"
    assert groups["2026-11-02"]["incidents"]["total"] == 2  # I1, I2
    # I3, I6 and I5 (Sunday 11-15); the drill I4 left out
    assert groups["2026-11-09"]["incidents"]["total"] == 3
    assert groups["2026-11-16"]["incidents"]["total"] == 0
    assert groups["2026-11-02"]["label"] == "Week of 2026-11-02"


def test_grouped_by_month_is_one_period_here(scenario: Scenario) -> None:
    report = kpis(scenario.fengdong_operator, group_by="month")

    assert [(g["key"], g["label"]) for g in report["groups"]] == [("2026-11-01", "2026-11")]
    assert report["groups"][0]["intervals"] == report["total"]["intervals"]


def test_a_window_without_data_lists_its_periods_with_zeros(scenario: Scenario) -> None:
    report = kpis(
        scenario.fengdong_operator, group_by="day", **{"from": "2026-01-01"}, to="2026-01-02"
    )

    assert [g["key"] for g in report["groups"]] == ["2026-01-01", "2026-01-02"]
    assert report["total"]["incidents"]["total"] == 0
    assert report["total"]["intervals"]["resolve"] == NO_INTERVAL
    assert report["total"]["sla"] == []


# --- Drills ------------------------------------------------------------------------------------


def test_drills_are_left_out_unless_asked_for(scenario: Scenario) -> None:
    without = kpis(scenario.fengdong_operator)
    with_drills = kpis(scenario.fengdong_operator, include_drills="true")

    assert without["total"]["incidents"]["total"] == 6
    assert with_drills["include_drills"] is True
    assert with_drills["total"]["incidents"]["total"] == 7
    # The drill I4 adds acquire 60 → [60, 120, 240, 300, 600]: p90 at rank 3.6.
    assert with_drills["total"]["intervals"]["acquire"] == stats(5, 264.0, 240.0, 480.0)
    # K5: respond 60 → [60, 60, 120, 180]; arrive 480 → [480, 900, 1800]
    assert with_drills["total"]["intervals"]["respond"] == stats(4, 105.0, 90.0, 162.0)
    assert with_drills["total"]["intervals"]["arrive"] == stats(3, 1060.0, 900.0, 1620.0)
    # The drill's breached acceptance clock c11 joins task_accept.
    assert sla(with_drills["total"])["task_accept"] == (2, 2, 0, 0.5)


# --- Scope -------------------------------------------------------------------------------------


def test_an_operator_of_fengxi_sees_only_fengxi(scenario: Scenario) -> None:
    report = kpis(scenario.fengxi_operator, group_by="team")

    assert report["total"]["incidents"] == {
        "total": 1,
        "rejected": 0,
        "merged": 0,
        "reopened": 0,
    }
    assert report["total"]["intervals"]["acquire"] == stats(1, 1800.0, 1800.0, 1800.0)
    assert report["total"]["intervals"]["respond"] == stats(1, 300.0, 300.0, 300.0)
    assert sla(report["total"]) == {"task_accept": (1, 0, 0, 1.0)}
    assert [g["key"] for g in report["groups"]] == ["fx-team-3"]


def test_asking_for_another_new_town_gives_an_empty_report(scenario: Scenario) -> None:
    for group_by in ("", "region", "day", "team"):
        report = kpis(scenario.fengxi_operator, region="fengdong", group_by=group_by)

        assert report["region"] is None
        assert report["groups"] == []
        assert report["total"]["incidents"]["total"] == 0
        assert report["total"]["tasks"]["total"] == 0
        assert report["total"]["intervals"]["respond"] == NO_INTERVAL
        assert report["total"]["sla"] == []


def test_an_unknown_region_gives_the_same_empty_report(scenario: Scenario) -> None:
    unknown = kpis(scenario.fengxi_operator, region="no-such-region")
    other = kpis(scenario.fengxi_operator, region="fengdong")

    unknown.pop("generated_at")
    other.pop("generated_at")
    assert unknown == other


def test_asking_for_the_whole_area_gives_only_my_part_of_it(scenario: Scenario) -> None:
    mine = kpis(scenario.fengdong_operator)
    area = kpis(scenario.fengdong_operator, region="xixian", group_by="region")

    # The new area is not all mine: it is not named, and only 沣东's streets are groups.
    assert area["region"] is None
    assert area["total"] == mine["total"]
    assert [g["key"] for g in area["groups"]] == ["fd-jianzhang", "fd-sanqiao"]


def test_a_street_filter_narrows_to_that_street(scenario: Scenario) -> None:
    report = kpis(scenario.fengdong_operator, region="fd-sanqiao", group_by="region")

    assert report["region"]["code"] == "fd-sanqiao"
    assert report["total"]["incidents"]["total"] == 4
    # No units below the street in this tree: its rows are filed at its own level.
    assert [(g["key"], g["label"]) for g in report["groups"]] == [
        ("fd-sanqiao", f"{scenario.tree.sanqiao.name_en} (own level)")
    ]
    assert report["groups"][0]["intervals"] == report["total"]["intervals"]


def test_a_superuser_grouped_by_region_sees_the_new_towns(scenario: Scenario) -> None:
    admin = User.objects.create_superuser(username="root-admin", password="x" * 12)

    report = kpis(admin, group_by="region")

    assert [g["key"] for g in report["groups"]] == ["fengdong", "fengxi"]
    assert report["total"]["incidents"]["total"] == 7  # 沣东's 6 and 沣西's I7
    assert by_key(report)["fengxi"]["intervals"]["acquire"]["count"] == 1


# --- Access and validation ---------------------------------------------------------------------


def test_a_citizen_is_refused(scenario: Scenario) -> None:
    client = APIClient()
    client.force_authenticate(CitizenFactory())

    response = client.get(reverse(URL))

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_an_anonymous_caller_must_log_in(scenario: Scenario) -> None:
    response = APIClient().get(reverse(URL))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"from": "2026-13-01"}, "from", "invalid"),
        ({"to": "yesterday"}, "to", "invalid"),
        ({"from": "2026-11-21", "to": "2026-11-01"}, "to", "before_from"),
        ({"from": "2025-01-01", "to": "2026-11-21"}, "to", "too_long"),
        ({"group_by": "street"}, "group_by", "invalid_choice"),
        ({"include_drills": "maybe"}, "include_drills", "invalid"),
        ({"region": "x" * 41}, "region", "max_length"),
    ],
)
def test_bad_parameters_are_refused_in_the_envelope(
    scenario: Scenario, params: dict[str, str], field: str, code: str
) -> None:
    client = APIClient()
    client.force_authenticate(scenario.fengdong_operator)

    response = client.get(reverse(URL), params)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert [error["code"] for error in body["extra"]["fields"][field]] == [code]


def test_the_window_defaults_to_the_last_30_days(scenario: Scenario) -> None:
    client = APIClient()
    client.force_authenticate(scenario.fengdong_operator)

    with time_machine.travel(NOW, tick=False):
        report = client.get(reverse(URL)).json()

    assert (report["date_from"], report["date_to"]) == ("2026-10-23", "2026-11-21")
    # I8 (10-31) is now inside the window.
    assert report["total"]["incidents"]["total"] == 7


# --- Queries -----------------------------------------------------------------------------------


def _queries_for(user: User, params: dict[str, str]) -> int:
    client = APIClient()
    # A fresh instance: the scope is cached on the user object for one request.
    client.force_authenticate(User.objects.get(pk=user.pk))
    with CaptureQueriesContext(connection) as captured, time_machine.travel(NOW, tick=False):
        response = client.get(reverse(URL), {**WINDOW, **params})
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    ("params", "most"),
    [
        # permission + scope (2), the three aggregates (3), then what the grouping needs
        ({}, 5),
        ({"group_by": "category"}, 6),  # + category names
        ({"group_by": "team"}, 6),  # + team names
        ({"group_by": "region"}, 6),  # + the region and its children
        ({"group_by": "region", "region": "fengdong"}, 7),  # + the region asked for
        ({"group_by": "week"}, 5),
    ],
)
def test_the_query_count_is_small_and_does_not_grow_with_the_data(
    scenario: Scenario, params: dict[str, str], most: int
) -> None:
    # given
    before = _queries_for(scenario.fengdong_operator, params)

    # when: ten more incidents, each with a report, a task and a clock
    for n in range(10):
        incident = IncidentFactory(
            category=scenario.gas,
            region=scenario.tree.sanqiao,
            status="accepted",
            created_at=at(11, 20, 8, n),
            accepted_at=at(11, 20, 9, n),
        )
        ReportFactory(incident=incident, status="accepted", created_at=at(11, 20, 7, n))
        task = DispatchTaskFactory(
            incident=incident, team=scenario.team1, dispatched_at=at(11, 20, 9, 30)
        )
        SlaClockFactory(
            kind="task_accept",
            subject_type="task",
            subject_id=task.pk,
            region=scenario.tree.sanqiao,
            category_code="A02",
            started_at=at(11, 20, 9, 30),
            due_at=at(11, 20, 9, 33),
        )
    after = _queries_for(scenario.fengdong_operator, params)

    # then
    assert after == before
    assert after <= most
