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

from apps.accounts.models import Role
from apps.incidents.models import IncidentStatus
from apps.sla.models import ClockStatus
from tests.console.conftest import ZH, client_for
from tests.dispatch.task_support import Scene
from tests.factories.accounts import StaffUserFactory
from tests.factories.incidents import IncidentFactory
from tests.factories.sla import SlaClockFactory

pytestmark = pytest.mark.django_db

NOW = "2026-12-07 10:00:00+08:00"  # a Monday
INDEX = "/admin/"


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    """Before the scene is built, so its incident is created 'now' too."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _chart_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script id="xc-chart-data" type="application/json">(.*?)</script>', html, re.S)
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

