"""Exports are the list the user is looking at: the same scope and filters, as CSV or
XLSX, with the caller's phone masked for roles that do not call back."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from django.urls import reverse
from django.utils import timezone

from apps.incidents.models import IncidentStatus
from apps.sla.models import Escalation, EscalationKind
from tests.console.conftest import ZH, client_for
from tests.dispatch.task_support import Scene
from tests.factories.incidents import IncidentFactory, ReportFactory
from tests.factories.sla import SlaClockFactory

pytestmark = pytest.mark.django_db

CSV, XLSX = "0", "1"  # the format's index in settings.EXPORT_FORMATS


def _export(client: object, url: str, fmt: str = CSV, query: str = "") -> list[list[str]]:
    response = client.post(f"{url}{query}", {"format": fmt, "export_items": []}, **ZH)
    assert response.status_code == 200, response.content[:300]
    if fmt == XLSX:
        book = openpyxl.load_workbook(io.BytesIO(response.content))
        return [["" if v is None else str(v) for v in row] for row in book.active.values]
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def _column(rows: list[list[str]], header: str) -> list[str]:
    index = rows[0].index(header)
    return [row[index] for row in rows[1:]]


@pytest.fixture
def incidents(scene: Scene) -> dict[str, object]:
    return {
        "mine_open": scene.incident,
        "mine_closed": IncidentFactory(
            region=scene.street,
            status=IncidentStatus.CLOSED,
            title="已销号",
            reporter_phone="+8613911112222",
        ),
        "theirs": IncidentFactory(region=scene.tree.diaotai, title="沣西的事件"),
    }


def test_the_incident_export_is_the_scoped_filtered_list_in_chinese(
    scene: Scene, incidents: dict[str, object]
) -> None:
    url = reverse("admin:incidents_incident_export")

    everything = _export(client_for(scene.operator), url)
    accepted = _export(client_for(scene.operator), url, query="?status__exact=accepted")

    assert everything[0][:3] == ["编号", "标题", "状态"]
    numbers = _column(everything, "编号")
    assert sorted(numbers) == sorted([scene.incident.number, incidents["mine_closed"].number])
    assert incidents["theirs"].number not in numbers  # out of scope: never in a file
    assert _column(accepted, "编号") == [scene.incident.number]
    assert _column(accepted, "状态") == ["已受理"]
    shanghai = timezone.localtime(scene.incident.created_at)  # Asia/Shanghai, not UTC
    assert _column(accepted, "创建时间") == [f"{shanghai:%Y-%m-%d %H:%M:%S}"]


def test_xlsx_has_the_same_rows_with_full_phones_for_the_operator(
    scene: Scene, incidents: dict[str, object]
) -> None:
    rows = _export(client_for(scene.operator), reverse("admin:incidents_incident_export"), fmt=XLSX)

    assert "+8613900000001" in _column(rows, "上报人电话")
    assert len(rows) == 3


def test_a_liaison_gets_the_phone_numbers_masked(
    scene: Scene, liaison: object, incidents: dict[str, object]
) -> None:
    rows = _export(client_for(liaison), reverse("admin:incidents_incident_export"))

    phones = _column(rows, "上报人电话")
    assert "+86139****0001" in phones
    assert not any("00000001" in phone for phone in phones)


def test_a_superuser_sees_every_region_in_the_export(
    scene: Scene, incidents: dict[str, object]
) -> None:
    from tests.factories.accounts import UserFactory

    admin = UserFactory(is_superuser=True, is_staff=True)

    rows = _export(client_for(admin), reverse("admin:incidents_incident_export"))

    assert incidents["theirs"].number in _column(rows, "编号")


def test_report_and_task_exports_are_scoped(scene: Scene) -> None:
    ReportFactory(region=scene.street, text="三桥的上报", phone="+8613700002222")
    ReportFactory(region=scene.tree.diaotai, text="钓台的上报")
    scene.task("accepted")
    foreign = IncidentFactory(region=scene.tree.diaotai, status=IncidentStatus.ACCEPTED)
    scene.task("accepted", team=scene.other_team).__class__.objects.filter(
        team=scene.other_team
    ).update(incident=foreign)
    client = client_for(scene.operator)

    reports = _export(client, reverse("admin:incidents_report_export"))
    tasks = _export(client, reverse("admin:dispatch_dispatchtask_export"), fmt=XLSX)

    assert _column(reports, "内容") == ["三桥的上报"]
    assert _column(reports, "联系电话") == ["+8613700002222"]
    assert _column(tasks, "事件") == [scene.incident.number]


def test_the_escalation_export_is_scoped(scene: Scene) -> None:
    for region in (scene.street, scene.tree.diaotai):
        clock = SlaClockFactory(region=region, subject_label=f"{region.name_zh}的时钟")
        Escalation.objects.create(
            clock=clock,
            kind=EscalationKind.BREACHED,
            scheduled_at=timezone.now(),
            at=timezone.now(),
            region=region,
            subject_type="incident",
            subject_id=1,
        )

    rows = _export(client_for(scene.operator), reverse("admin:sla_escalation_export"))

    assert list(_column(rows, "对象")) == ["三桥街道的时钟"]


def test_the_kpi_page_exports_its_figures(scene: Scene) -> None:
    client = client_for(scene.operator)
    url = reverse("admin:analytics_kpireport_changelist")

    page = client.get(url, **ZH).content.decode()
    csv_file = client.get(f"{url}?_export=csv", **ZH)
    xlsx_file = client.get(f"{url}?_export=xlsx", **ZH)

    assert "_export=xlsx" in page
    assert csv_file["Content-Type"].startswith("text/csv")
    assert csv_file.content.decode("utf-8-sig").startswith("分组")
    book = openpyxl.load_workbook(io.BytesIO(xlsx_file.content))
    assert len(book.sheetnames) == 2
