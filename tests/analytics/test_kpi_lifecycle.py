"""The KPIs read what the services write: one incident driven through its whole life,
reopened once, with the clocks the incident and dispatch services start and stop."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

from apps.dispatch.models import TeamStatus
from apps.dispatch.services import tasks as task_services
from apps.incidents.services import incidents as incident_services
from apps.incidents.services import reports as report_services
from apps.sla.models import SlaKind
from apps.sla.policies import policies_invalidate
from tests.analytics.conftest import at
from tests.factories.accounts import StaffUserFactory
from tests.factories.dispatch import TeamFactory, TeamMemberFactory
from tests.factories.incidents import CategoryFactory, ReportFactory, TwoTowns
from tests.factories.sla import SlaPolicyFactory

pytestmark = pytest.mark.django_db

T0 = at(11, 16, 9, 0)


@pytest.fixture(autouse=True)
def _fresh_policy_cache() -> Iterator[None]:
    """The policies of this test's database, not a cached table of another test's."""
    policies_invalidate()
    yield
    policies_invalidate()


def test_the_kpis_of_a_reopened_incident_follow_its_recorded_transitions() -> None:
    # given: a street, an operator, a team on duty and simple policies
    tree = TwoTowns()
    operator = StaffUserFactory(region=tree.fengdong)
    team = TeamFactory(home_region=tree.sanqiao, status=TeamStatus.AVAILABLE)
    member = TeamMemberFactory(team=team, on_duty=True).user
    gas = CategoryFactory(code="A02", name_zh="燃气泄漏")
    for kind, duration in [
        (SlaKind.DISPATCH, timedelta(minutes=10)),
        (SlaKind.TASK_ACCEPT, timedelta(minutes=3)),
        (SlaKind.TASK_ARRIVAL, timedelta(minutes=20)),
        (SlaKind.INCIDENT_RESOLUTION, timedelta(hours=4)),
        (SlaKind.INCIDENT_VERIFICATION, timedelta(hours=24)),
    ]:
        SlaPolicyFactory(code=f"kpi-{kind}", kind=kind, duration=duration)

    # when: the incident lives its life (minutes after T0 in the comments)
    with time_machine.travel(T0, tick=False) as clock:
        report = ReportFactory(region=tree.sanqiao, category=gas)  # 0: submitted
        clock.shift(timedelta(minutes=3))
        incident = report_services.report_accept(report_id=report.pk, by=operator).incident
        assert incident is not None  # 3: accepted (受理)
        clock.shift(timedelta(minutes=4))
        (task,) = task_services.task_dispatch(
            incident_id=incident.pk, team_ids=[team.pk], by=operator
        )  # 7: dispatched
        clock.shift(timedelta(minutes=2))
        task_services.task_accept(task_id=task.pk, by=member)  # 9: accepted (in time)
        clock.shift(timedelta(minutes=25))
        task_services.task_on_scene(task_id=task.pk, by=member)  # 34: on scene (7 min late)
        clock.shift(timedelta(minutes=30))
        task_services.task_complete(task_id=task.pk, by=member, result="已关阀处置")  # 64
        clock.shift(timedelta(minutes=6))
        incident_services.incident_resolve(
            incident_id=incident.pk, by=operator, resolution="燃气已关闭"
        )  # 70: resolved
        clock.shift(timedelta(minutes=60))
        incident_services.incident_close(incident_id=incident.pk, by=operator)  # 130: closed
        clock.shift(timedelta(minutes=60))
        incident_services.incident_reopen(
            incident_id=incident.pk, by=operator, reason="复查仍有异味"
        )  # 190: verification failed
        clock.shift(timedelta(minutes=30))
        incident_services.incident_resolve(
            incident_id=incident.pk, by=operator, resolution="更换阀门"
        )  # 220: resolved again
        clock.shift(timedelta(minutes=20))
        incident_services.incident_close(incident_id=incident.pk, by=operator)  # 240: closed

        client = APIClient()
        client.force_authenticate(operator)
        response = client.get(
            reverse("v1:analytics-kpis"), {"from": "2026-11-16", "to": "2026-11-16"}
        )

    # then
    assert response.status_code == 200
    total = response.json()["total"]
    assert total["incidents"] == {"total": 1, "rejected": 0, "merged": 0, "reopened": 1}

    def seconds(name: str) -> float:
        stats = total["intervals"][name]
        assert stats["count"] == 1
        return stats["median_s"]  # type: ignore[no-any-return]

    assert seconds("acquire") == 3 * 60  # report 0 → accepted 3
    assert seconds("dispatch") == 4 * 60  # 3 → 7
    assert seconds("respond") == 2 * 60  # 7 → 9
    assert seconds("arrive") == 27 * 60  # 7 → 34
    assert seconds("resolve") == 217 * 60  # 3 → the standing resolution at 220
    assert seconds("verify") == 20 * 60  # 220 → 240
    compliance = {
        row["kind"]: (row["met"], row["breached"], row["pending"]) for row in total["sla"]
    }
    assert compliance == {
        "dispatch": (1, 0, 0),
        "task_accept": (1, 0, 0),
        "task_arrival": (0, 1, 0),  # stopped 7 minutes late: the breach is recorded
        "incident_resolution": (2, 0, 0),  # the first, and the one restarted by the reopen
        "incident_verification": (2, 0, 0),  # both answered in time (one failed)
    }
