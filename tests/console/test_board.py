"""值班台: the live duty board's page and its rows endpoint (apps/console/board.py,
apps/console/selectors.py): scope, urgency order, the SLA countdown and constant queries."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.console.board import FIRST_PAINT
from apps.console.selectors import board_rows, board_streams, local_iso
from apps.incidents.models import Incident, IncidentStatus, Priority
from apps.regions.models import Region
from apps.sla.models import ClockStatus, SlaKind
from tests.console.conftest import ZH, client_for
from tests.dispatch.task_support import Scene
from tests.factories.dispatch import DispatchTaskFactory
from tests.factories.incidents import CategoryFactory, IncidentFactory, ReportFactory
from tests.factories.sla import SlaClockFactory

BOARD = "admin:console_dutydesk_board"
ROWS = "admin:console_dutydesk_rows"


def clock(subject: Any, *, subject_type: str = "incident", minutes: int = 60, **kw: Any) -> Any:
    now = timezone.now()
    values: dict[str, Any] = {
        "kind": SlaKind.INCIDENT_RESOLUTION,
        "subject_type": subject_type,
        "subject_id": subject.pk,
        "region": subject.incident.region if subject_type == "task" else subject.region,
        "started_at": now - timedelta(minutes=30),
        "due_at": now + timedelta(minutes=minutes),
    }
    values.update(kw)
    return SlaClockFactory(**values)


def page(client: Any) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    response = client.get(reverse(BOARD), **ZH)
    assert response.status_code == 200
    html = response.content.decode()
    rows = unpack(json.loads(_json_script(html, "xc-board-rows")))
    config = json.loads(_json_script(html, "xc-board-config"))
    return response, rows, config


def _json_script(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}" type="application/json">')
    start = html.index(">", start) + 1
    return html[start : html.index("</script>", start)]


def unpack(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows as board.js unpacks them (board.py ``pack``)."""
    rows = []
    for values in body["rows"]:
        row = dict(zip(body["columns"], values, strict=True))
        row["tasks"] = [{"id": t[0], "team": t[1], "status": t[2]} for t in row["tasks"]]
        rows.append(row)
    return rows


def keys(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{row['kind']}:{row['id']}" for row in rows]


# --- The page -------------------------------------------------------------------------------


def test_the_board_shows_the_open_incidents_and_pending_reports_of_my_regions_only(
    scene: Scene,
) -> None:
    # given: in 沣东 the scene's accepted incident, a pending report, a closed incident and
    # a triaged report; in 沣西 an open incident and a pending report
    report = ReportFactory(region=scene.street)
    IncidentFactory(region=scene.street, status=IncidentStatus.CLOSED)
    ReportFactory(region=scene.street, status="rejected")
    foreign = IncidentFactory(region=scene.tree.diaotai, status=IncidentStatus.ACCEPTED)
    foreign_report = ReportFactory(region=scene.tree.diaotai)
    task = scene.task("en_route")
    # when
    response, rows, config = page(client_for(scene.operator))
    # then
    html = response.content.decode()
    assert sorted(keys(rows)) == sorted([f"incident:{scene.incident.pk}", f"report:{report.pk}"])
    assert f'<tr data-kind="incident" data-id="{scene.incident.pk}"' in html
    assert f'<tr data-kind="report" data-id="{report.pk}"' in html
    assert f'data-task-id="{task.pk}" data-task-state="en_route"' in html
    assert reverse("admin:incidents_incident_change", args=[scene.incident.pk]) in html
    assert 'data-role="open"' in html
    assert str(foreign.number) not in html
    assert f'data-id="{foreign_report.pk}"' not in html
    assert config["streams"] == {"region.fengdong": 0}
    assert config["streets"]["fd-sanqiao"] == "三桥街道"
    assert scene.tree.diaotai.code not in config["streets"]
    assert 'id="xc-board" data-state="connecting"' in html
    assert "<script>" not in html  # no inline script (CSP): only application/json data
    assert "console/board.js" in html


def test_the_fengxi_operator_sees_nothing_of_fengdong(scene: Scene) -> None:
    ReportFactory(region=scene.street)
    _response, rows, config = page(client_for(scene.outsider_operator))
    assert rows == []
    assert config["streams"] == {"region.fengxi": 0}
    assert "fd-sanqiao" not in config["streets"]


def test_a_row_that_arrives_by_event_finds_the_names_of_every_street_and_category_in_scope(
    scene: Scene,
) -> None:
    # given: an empty board (no row names any street or category yet)
    Incident.objects.all().delete()
    category = CategoryFactory(name_zh="城市内涝")
    # when
    _response, rows, config = page(client_for(scene.operator))
    # then: board.js can name a new report's street and category without a round trip,
    # for every region of 沣东 and no other
    assert rows == []
    in_scope = set(
        Region.objects.filter(path__startswith=scene.tree.fengdong.path).values_list(
            "code", flat=True
        )
    )
    assert set(config["streets"]) == in_scope
    assert config["streets"]["fd-sanqiao"] == "三桥街道"
    assert config["categories"][category.code] == "城市内涝"


def test_the_board_follows_the_top_region_of_each_membership_and_the_stream_heads(
    scene: Scene,
) -> None:
    from apps.realtime.models import StreamCounter

    StreamCounter.objects.create(stream="region.fengdong", last_seq=41)
    assert board_streams(scene.operator) == ["region.fengdong"]
    _response, _rows, config = page(client_for(scene.operator))
    assert config["streams"] == {"region.fengdong": 41}


def test_a_user_without_the_duty_desk_permission_is_refused(scene: Scene) -> None:
    from tests.factories.accounts import UserFactory

    nobody = UserFactory(is_staff=True)
    client = client_for(nobody)
    assert client.get(reverse(BOARD)).status_code == 403
    refused = client.get(reverse(ROWS))
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"


# --- Urgency ---------------------------------------------------------------------------------


def test_breached_rows_come_first_then_supervised_then_by_deadline(scene: Scene) -> None:
    street = scene.street
    later = IncidentFactory(region=street, status=IncidentStatus.ACCEPTED)
    sooner = IncidentFactory(region=street, status=IncidentStatus.ACCEPTED)
    supervised = IncidentFactory(
        region=street, status=IncidentStatus.ACCEPTED, supervised_at=timezone.now()
    )
    breached = IncidentFactory(region=street, status=IncidentStatus.IN_PROGRESS)
    unclocked = scene.incident
    report = ReportFactory(region=street, is_sos=True)
    clock(later, minutes=120)
    clock(sooner, minutes=10)
    clock(supervised, minutes=600)
    clock(breached, minutes=-5, breached_at=timezone.now() - timedelta(minutes=5))
    clock(report, subject_type="report", kind=SlaKind.REPORT_TRIAGE, minutes=30)
    data = board_rows(scene.operator)
    assert keys(data.rows) == [
        f"incident:{breached.pk}",
        f"incident:{supervised.pk}",
        f"incident:{sooner.pk}",
        f"report:{report.pk}",
        f"incident:{later.pk}",
        f"incident:{unclocked.pk}",
    ]
    first = data.rows[0]
    assert first["breached"] is True
    assert data.rows[1]["supervised"] is True
    assert data.rows[3]["sos"] is True


def test_the_nearest_deadline_counts_task_clocks_and_paused_clocks_show_as_paused(
    scene: Scene,
) -> None:
    task = scene.task("dispatched")
    clock(scene.incident, minutes=240)
    task_clock = clock(task, subject_type="task", kind=SlaKind.TASK_ACCEPT, minutes=3)
    paused = IncidentFactory(region=scene.street, status=IncidentStatus.ACCEPTED)
    clock(paused, status=ClockStatus.PAUSED, paused_at=timezone.now(), next_check_at=None)
    rows = {row["id"]: row for row in board_rows(scene.operator).rows}
    mine = rows[scene.incident.pk]
    assert (
        mine["deadline"]
        == task_clock.due_at.astimezone(timezone.get_default_timezone()).isoformat()
    )
    assert mine["clock"] == SlaKind.TASK_ACCEPT
    assert mine["tasks"] == [{"id": task.pk, "team": task.team.name, "status": "dispatched"}]
    assert rows[paused.pk]["paused"] is True
    assert rows[paused.pk]["deadline"] is None


def test_the_countdown_is_drawn_with_its_deadline_and_the_row_classes(scene: Scene) -> None:
    sos = IncidentFactory(
        region=scene.street, status=IncidentStatus.ACCEPTED, priority=Priority.SOS
    )
    c = clock(sos, minutes=-1, breached_at=timezone.now())
    Incident.objects.filter(pk=sos.pk).update(supervised_at=timezone.now())
    response, _rows, _config = page(client_for(scene.operator))
    html = response.content.decode()
    row = html[html.index(f'data-id="{sos.pk}"') - 60 :]
    row = row[: row.index("</tr>")]
    assert 'class="xc-row xc-breached xc-supervised xc-sos"' in row
    assert f'data-deadline="{local_iso(c.due_at)}"' in row


# --- Query counts ------------------------------------------------------------------------------


def _crowd(scene: Scene, count: int) -> None:
    incidents = IncidentFactory.create_batch(
        count, region=scene.street, status=IncidentStatus.ACCEPTED
    )
    for incident in incidents:
        clock(incident, minutes=30)
        DispatchTaskFactory(incident=incident, team=scene.team, status="dispatched")
    for report in ReportFactory.create_batch(count // 2, region=scene.street):
        clock(report, subject_type="report", kind=SlaKind.REPORT_TRIAGE, minutes=10)


@pytest.mark.parametrize("count", [2, 40])
def test_the_board_page_costs_the_same_queries_for_2_or_40_incidents(
    scene: Scene, count: int, django_assert_max_num_queries: Any
) -> None:
    _crowd(scene, count)
    client = client_for(scene.operator)
    client.get(reverse(BOARD))  # warm the session and the sidebar caches
    # 14 + the names of every region in scope and every category (board_names)
    with django_assert_max_num_queries(16) as captured:
        response = client.get(reverse(BOARD))
    assert response.status_code == 200
    html = response.content.decode()
    rows = unpack(json.loads(_json_script(html, "xc-board-rows")))
    assert len(rows) == count + 1 + count // 2  # every row as data for board.js
    assert html.count("<tr data-kind=") == min(len(rows), FIRST_PAINT)  # the first as HTML
    board_queries = [  # the rows' queries; the category names are board_names'
        sql
        for sql in (q["sql"] for q in captured.captured_queries)
        if "incidents_" in sql and 'FROM "incidents_category" ORDER BY' not in sql
    ]
    assert len(board_queries) <= 4, board_queries


@pytest.mark.parametrize("count", [2, 40])
def test_the_selector_is_four_queries_whatever_the_number_of_rows(
    scene: Scene, count: int, django_assert_num_queries: Any
) -> None:
    _crowd(scene, count)
    operator = scene.operator
    board_rows(operator)  # resolves and caches the scope on the user
    with django_assert_num_queries(4):  # incidents, tasks, reports, clocks
        data = board_rows(operator)
    assert len(data.rows) == count + 1 + count // 2


# --- board/rows/ ---------------------------------------------------------------------------------


def test_the_rows_endpoint_returns_asked_rows_and_calls_the_others_gone(scene: Scene) -> None:
    report = ReportFactory(region=scene.street)
    foreign = IncidentFactory(region=scene.tree.diaotai, status=IncidentStatus.ACCEPTED)
    foreign_report = ReportFactory(region=scene.tree.diaotai)
    closed = IncidentFactory(region=scene.street, status=IncidentStatus.CLOSED)
    url = reverse(ROWS)
    query = (
        f"?incident={scene.incident.pk}&incident={foreign.pk}&incident={closed.pk}"
        f"&incident=999999&report={report.pk}&report={foreign_report.pk}"
    )
    body = client_for(scene.operator).get(url + query).json()
    assert sorted(keys(unpack(body))) == sorted(
        [f"incident:{scene.incident.pk}", f"report:{report.pk}"]
    )
    assert body["gone"] == sorted(
        [
            f"incident:{foreign.pk}",
            f"incident:{closed.pk}",
            "incident:999999",
            f"report:{foreign_report.pk}",
        ]
    )
    assert body["complete"] is False
    assert foreign.number not in json.dumps(body, ensure_ascii=False)
    assert "钓台" not in json.dumps(body, ensure_ascii=False)


def test_the_fengxi_operator_gets_nothing_of_fengdong_by_id(scene: Scene) -> None:
    report = ReportFactory(region=scene.street)
    query = f"?incident={scene.incident.pk}&report={report.pk}"
    body = client_for(scene.outsider_operator).get(reverse(ROWS) + query).json()
    assert body["rows"] == []
    assert body["streets"] == {}
    assert body["gone"] == [f"incident:{scene.incident.pk}", f"report:{report.pk}"]


def test_without_ids_the_rows_endpoint_returns_the_whole_board(scene: Scene) -> None:
    report = ReportFactory(region=scene.street)
    body = client_for(scene.operator).get(reverse(ROWS)).json()
    assert body["complete"] is True
    assert sorted(keys(unpack(body))) == sorted(
        [f"incident:{scene.incident.pk}", f"report:{report.pk}"]
    )


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("?incident=abc", "invalid"),
        ("?incident=-1", "invalid"),
        ("?" + "&".join(f"report={n}" for n in range(1, 202)), "too_many_ids"),
    ],
)
def test_bad_ids_are_a_400_with_the_error_envelope(scene: Scene, query: str, code: str) -> None:
    response = client_for(scene.operator).get(reverse(ROWS) + query)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert set(response.json()) == {"code", "message", "extra"}


def test_the_rows_endpoint_costs_the_same_queries_for_1_or_40_ids(
    scene: Scene, django_assert_max_num_queries: Any
) -> None:
    _crowd(scene, 40)
    ids = list(Incident.objects.filter(region=scene.street).values_list("pk", flat=True)[:40])
    client = client_for(scene.operator)
    client.get(reverse(ROWS) + f"?incident={ids[0]}")
    with django_assert_max_num_queries(10):
        body = client.get(reverse(ROWS) + "?" + "&".join(f"incident={pk}" for pk in ids)).json()
    assert len(body["rows"]) == 40
