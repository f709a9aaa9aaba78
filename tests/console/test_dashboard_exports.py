"""The dashboard's export links: each file holds exactly the rows of the dashboard's
region and period that the list would show (scope, then filters), nothing out of scope,
with the caller's phone masked for roles that do not call back."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.incidents.models import IncidentStatus
from apps.sla.models import Escalation, EscalationKind
from tests.console.conftest import ZH, client_for
from tests.dispatch.task_support import Scene, responder_with_scope
from tests.factories.accounts import StaffUserFactory
from tests.factories.dispatch import DispatchTaskFactory
from tests.factories.incidents import IncidentFactory, ReportFactory
from tests.factories.regions import StreetFactory
from tests.factories.sla import SlaClockFactory

pytestmark = pytest.mark.django_db

NOW = "2026-12-07 10:00:00+08:00"
SHANGHAI = timezone.get_default_timezone()


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 12, day, hour, 0, tzinfo=SHANGHAI)


def _links(client: Any, query: str) -> dict[str, str]:
    html = client.get(f"/admin/{query}", **ZH).content.decode().replace("&amp;", "&")
    section = html[html.index('id="xc-exports"') :]
    return {
        label: url for url, label in re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', section)
    }


def _export(client: Any, url: str) -> list[list[str]]:
    response = client.post(url, {"format": "0", "export_items": []}, **ZH)  # 0: CSV
    assert response.status_code == 200, response.content[:300]
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def _column(rows: list[list[str]], header: str) -> list[str]:
    index = rows[0].index(header)
    return sorted(row[index] for row in rows[1:])


@pytest.fixture
def world(scene: Scene) -> dict[str, Any]:
    """In and out of the filter (三桥, 12-01…12-05, no drill) and out of scope (钓台)."""
    wangsi = StreetFactory(code="fd-wangsi", name_zh="王寺街道", parent=scene.tree.fengdong)
    made: dict[str, Any] = {}
    for key, region, day, drill in (
        ("in", scene.street, 3, False),
        ("too_early", scene.street, 1, False),  # before the period (12-02 … 12-05)
        ("drill", scene.street, 3, True),
        ("other_street", wangsi, 3, False),
        ("out_of_scope", scene.tree.diaotai, 3, False),
    ):
        incident = IncidentFactory(
            region=region,
            is_drill=drill,
            status=IncidentStatus.ACCEPTED,
            title=f"{key}事件",
            reporter_phone="+8613911110000",
        )
        type(incident).objects.filter(pk=incident.pk).update(created_at=_at(day))
        task = DispatchTaskFactory(incident=incident, team=scene.team, dispatched_at=_at(day, 10))
        clock = SlaClockFactory(region=region, subject_label=f"{key}时钟", started_at=_at(day))
        Escalation.objects.create(
            clock=clock,
            kind=EscalationKind.BREACHED,
            scheduled_at=_at(day, 11),
            at=_at(day, 11),
            region=region,
            subject_type="incident",
            subject_id=incident.pk,
        )
        made[key] = {"incident": incident, "task": task}
    return made


FILTER = "?region=fd-sanqiao&from=2026-12-02&to=2026-12-05"


def test_the_incident_export_from_the_dashboard_is_exactly_the_filtered_rows(
    scene: Scene, world: dict[str, Any]
) -> None:
    client = client_for(scene.operator)

    rows = _export(client, _links(client, FILTER)["事件"])

    assert _column(rows, "编号") == [world["in"]["incident"].number]


def test_the_task_export_from_the_dashboard_is_exactly_the_filtered_rows(
    scene: Scene, world: dict[str, Any]
) -> None:
    client = client_for(scene.operator)

    rows = _export(client, _links(client, FILTER)["派单任务"])

    # Tasks carry no drill filter: the drill's task is in the street and the period too.
    assert _column(rows, "任务") == sorted(
        [str(world["in"]["task"].pk), str(world["drill"]["task"].pk)]
    )


def test_the_escalation_export_from_the_dashboard_is_exactly_the_filtered_rows(
    scene: Scene, world: dict[str, Any]
) -> None:
    client = client_for(scene.operator)

    rows = _export(client, _links(client, FILTER)["升级记录"])

    assert _column(rows, "对象") == ["drill时钟", "in时钟"]


def test_the_fengxi_operator_following_a_fengdong_filter_exports_nothing(
    scene: Scene, world: dict[str, Any]
) -> None:
    client = client_for(scene.outsider_operator)
    links = _links(client, FILTER)

    for label in ("事件", "派单任务", "升级记录"):
        assert _export(client, links[label])[1:] == []
    kpi = client.get(links["KPI（CSV）"], **ZH).content.decode("utf-8-sig")
    assert kpi.splitlines()[1].startswith("全部,0,0")  # the total row: nothing counted


def test_the_whole_scope_export_leaves_the_other_town_out(
    scene: Scene, world: dict[str, Any]
) -> None:
    client = client_for(scene.operator)

    rows = _export(client, _links(client, "?from=2026-12-01&to=2026-12-07")["事件"])

    numbers = _column(rows, "编号")
    assert world["out_of_scope"]["incident"].number not in numbers
    assert world["other_street"]["incident"].number in numbers
    assert world["too_early"]["incident"].number in numbers


def test_report_contacts_leave_in_full_for_the_operator_and_never_for_a_liaison(
    scene: Scene, liaison: Any
) -> None:
    ReportFactory(region=scene.street, text="三桥的上报", phone="+8613700002222")
    url = reverse("admin:incidents_report_export")

    operator_rows = _export(client_for(scene.operator), url)
    refused = client_for(liaison).post(url, {"format": "0", "export_items": []}, **ZH)
    liaison_links = _links(client_for(liaison), "")

    assert _column(operator_rows, "联系电话") == ["+8613700002222"]
    assert refused.status_code == 403  # liaisons do no triage: no report list, no file
    assert "群众上报" not in liaison_links
    assert "事件" in liaison_links


def test_a_new_area_liaison_exports_every_town_with_the_phones_masked(scene: Scene) -> None:
    """Full numbers only for those who may act on the incident (contact_visible)."""
    wide_liaison = StaffUserFactory(region=scene.tree.root, region__role=Role.DEPARTMENT_LIAISON)

    rows = _export(client_for(wide_liaison), reverse("admin:incidents_incident_export"))

    phones = _column(rows, "上报人电话")
    assert phones == ["+86139****0001"]


def test_a_responder_has_no_export_at_all(scene: Scene) -> None:
    responder = responder_with_scope(scene)

    response = client_for(responder).post(
        reverse("admin:incidents_incident_export"), {"format": "0"}, **ZH
    )

    assert response.status_code == 302  # to the admin login: not staff
    assert "login" in response["Location"]
