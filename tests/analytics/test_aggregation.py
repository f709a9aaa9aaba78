"""The statistics themselves: percentile_cont in Python, the SQL and Python paths agree,
and SLA clocks are classified as the rules say (pauses included)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection

from apps.accounts.models import User
from apps.analytics import aggregation
from apps.analytics.aggregation import percentile, summarise
from apps.analytics.forms import KpiQuery
from apps.analytics.selectors import kpi_report
from apps.sla.models import ClockStatus, SlaKind
from tests.analytics.conftest import NOW, Scenario, at
from tests.factories.regions import StreetFactory
from tests.factories.sla import SlaClockFactory

NOVEMBER = {"date_from": date(2026, 11, 1), "date_to": date(2026, 11, 21)}


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([42.0], 0.9, 42.0),
        ([0.0, 100.0], 0.9, 90.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.5),
        ([60.0, 120.0, 180.0], 0.9, 168.0),
        ([120.0, 240.0, 300.0, 600.0], 0.9, 510.0),
    ],
)
def test_percentile_interpolates_between_the_nearest_ranks(
    values: list[float], fraction: float, expected: float
) -> None:
    assert percentile(values, fraction) == pytest.approx(expected)


def test_an_empty_series_has_no_statistics() -> None:
    summary = summarise([])

    assert (summary.count, summary.mean, summary.median, summary.p90) == (0, None, None, None)


@pytest.mark.django_db
@pytest.mark.parametrize("group_by", ["", "category", "team", "region", "day", "week"])
def test_the_python_fallback_gives_the_database_answer(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch, group_by: str
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("both paths are the Python one without PostgreSQL")
    query = KpiQuery(**NOVEMBER, group_by=group_by, include_drills=True)
    user = scenario.fengdong_operator

    in_database = kpi_report(user=user, query=query, now=NOW)
    monkeypatch.setattr(aggregation, "aggregates_in_database", lambda alias: False)
    in_python = kpi_report(user=User.objects.get(pk=user.pk), query=query, now=NOW)

    assert in_python == in_database


def _compliance(user: Any) -> dict[str, tuple[int, int, int]]:
    report = kpi_report(user=user, query=KpiQuery(**NOVEMBER), now=NOW)
    return {
        row["kind"]: (row["met"], row["breached"], row["pending"]) for row in report["total"]["sla"]
    }


@pytest.mark.django_db
def test_paused_clocks_are_judged_by_when_they_were_paused() -> None:
    # given
    street = StreetFactory()
    admin = User.objects.create_superuser(username="kpi-root", password="x" * 12)
    start = at(11, 20, 9, 0)
    # paused before its deadline and still paused: pending, however late it is now
    SlaClockFactory(
        kind=SlaKind.TASK_ARRIVAL,
        region=street,
        status=ClockStatus.PAUSED,
        started_at=start,
        due_at=start + timedelta(minutes=20),
        paused_at=start + timedelta(minutes=10),
    )
    # paused when it was already late: breached
    SlaClockFactory(
        kind=SlaKind.TASK_ARRIVAL,
        region=street,
        status=ClockStatus.PAUSED,
        started_at=start,
        due_at=start + timedelta(minutes=20),
        paused_at=start + timedelta(minutes=30),
    )
    # stopped while paused (due_at not shifted, no breach recorded): met
    SlaClockFactory(
        kind=SlaKind.TASK_ARRIVAL,
        region=street,
        status=ClockStatus.STOPPED,
        started_at=start,
        due_at=start + timedelta(minutes=20),
        stopped_at=start + timedelta(hours=2),
    )

    # when / then
    with time_machine.travel(NOW, tick=False):
        assert _compliance(admin) == {SlaKind.TASK_ARRIVAL: (1, 1, 1)}
