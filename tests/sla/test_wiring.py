"""The clocks follow the incidents, reports and tasks they time, through the services."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.dispatch.services import tasks as task_services
from apps.incidents.models import Incident, IncidentEvent, Loop, Report
from apps.incidents.services import incidents as incident_services
from apps.incidents.services import reports as report_services
from apps.incidents.services.sla import (
    incident_supervise,
    incident_verification_confirm,
    report_triage_clocks_repair,
)
from apps.sla.models import ClockStatus, SlaClock, SlaKind
from tests.factories.incidents import IncidentFactory, ReportFactory
from tests.sla.conftest import Cast

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 7, 20, 8, 0, tzinfo=SHANGHAI)


def _clocks(subject_type: str, subject_id: int) -> dict[str, tuple[str, str]]:
    """{kind: (status, stop reason)} of the latest clock of each kind."""
    found: dict[str, tuple[str, str]] = {}
    for clock in SlaClock.objects.filter(subject_type=subject_type, subject_id=subject_id).order_by(
        "pk"
    ):
        found[clock.kind] = (clock.status, clock.stop_reason)
    return found


def _accepted(cast: Cast, **kwargs: Any) -> Incident:
    incident = cast.incident(status="reported", **kwargs)
    incident_services.incident_accept(incident_id=incident.pk, by=cast.street_operator)
    incident.refresh_from_db()
    return incident


# --- The incident's life -----------------------------------------------------------------------


def test_accepting_starts_the_dispatch_and_resolution_clocks(
    cast: Cast, default_policies: Any
) -> None:
    with time_machine.travel(T0, tick=False):
        incident = _accepted(cast)

    clocks = {c.kind: c for c in SlaClock.objects.filter(subject_id=incident.pk)}
    assert set(clocks) == {SlaKind.DISPATCH, SlaKind.INCIDENT_RESOLUTION}
    assert clocks[SlaKind.DISPATCH].due_at == T0 + timedelta(minutes=10)
    assert clocks[SlaKind.INCIDENT_RESOLUTION].due_at == T0 + timedelta(hours=4)
    assert (
        clocks[SlaKind.INCIDENT_RESOLUTION].subject_label == f"{incident.number} {incident.title}"
    )
    assert clocks[SlaKind.INCIDENT_RESOLUTION].region == cast.tree.sanqiao


def test_an_operator_created_accepted_incident_starts_its_clocks_too(
    cast: Cast, default_policies: Any
) -> None:
    incident = incident_services.incident_create(
        category=cast.fire,
        region=cast.tree.sanqiao,
        lat=34.276,
        lng=108.85,
        source=Incident.Source.OPERATOR,
        title="厂房起火",
        by=cast.street_operator,
        severity="II",
        status=Incident.Status.ACCEPTED,
    )

    dispatch = SlaClock.objects.get(kind=SlaKind.DISPATCH, subject_id=incident.pk)
    assert dispatch.policy is not None
    assert dispatch.policy.code == "dispatch-severity-ii"
    assert dispatch.due_at - dispatch.started_at == timedelta(minutes=5)


def test_the_whole_loop_moves_the_clocks(cast: Cast, default_policies: Any) -> None:
    # given an accepted incident
    incident = _accepted(cast)

    # dispatch: the dispatch clock stops; the task's acceptance and arrival clocks start
    (task,) = task_services.task_dispatch(
        incident_id=incident.pk, team_ids=[cast.team.pk], by=cast.street_operator
    )
    assert _clocks("incident", incident.pk)[SlaKind.DISPATCH] == (ClockStatus.STOPPED, "dispatched")
    assert _clocks("task", task.pk) == {
        SlaKind.TASK_ACCEPT: (ClockStatus.RUNNING, ""),
        SlaKind.TASK_ARRIVAL: (ClockStatus.RUNNING, ""),
    }

    # accept, on scene, complete
    task_services.task_accept(task_id=task.pk, by=cast.member)
    task_services.task_on_scene(task_id=task.pk, by=cast.member)
    task_services.task_complete(task_id=task.pk, by=cast.member, result="已处置")
    assert _clocks("task", task.pk) == {
        SlaKind.TASK_ACCEPT: (ClockStatus.STOPPED, "accepted"),
        SlaKind.TASK_ARRIVAL: (ClockStatus.STOPPED, "on scene"),
    }

    # resolve: resolution stops, verification starts
    incident_services.incident_resolve(
        incident_id=incident.pk, by=cast.street_operator, resolution="已处置"
    )
    clocks = _clocks("incident", incident.pk)
    assert clocks[SlaKind.INCIDENT_RESOLUTION] == (ClockStatus.STOPPED, "resolved")
    assert clocks[SlaKind.INCIDENT_VERIFICATION] == (ClockStatus.RUNNING, "")

    # close (核查销号): verification stops as verified
    incident_services.incident_close(incident_id=incident.pk, by=cast.street_operator)
    assert _clocks("incident", incident.pk)[SlaKind.INCIDENT_VERIFICATION] == (
        ClockStatus.STOPPED,
        "verified",
    )
    assert not SlaClock.objects.open().exists()


def test_failed_verification_reopens_a_resolved_incident_with_its_clocks(
    cast: Cast, default_policies: Any
) -> None:
    # given a resolved incident (verification running)
    incident = cast.incident(status="in_progress")
    incident_services.incident_resolve(
        incident_id=incident.pk, by=cast.street_operator, resolution="已抽排"
    )

    # when the street's check fails (核查不合格)
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
        incident_services.incident_reopen(
            incident_id=incident.pk, by=cast.street_operator, reason="复查仍有积水"
        )
        reopened_at = timezone.now()

    # then it is back in progress, verification failed, and a fresh resolution clock runs
    incident.refresh_from_db()
    assert incident.status == Incident.Status.IN_PROGRESS
    verification = SlaClock.objects.get(kind=SlaKind.INCIDENT_VERIFICATION)
    assert (verification.status, verification.stop_reason) == (
        ClockStatus.STOPPED,
        "verification failed",
    )
    resolution = SlaClock.objects.get(kind=SlaKind.INCIDENT_RESOLUTION, status=ClockStatus.RUNNING)
    assert resolution.started_at == reopened_at
    event = IncidentEvent.objects.get(incident=incident, kind=IncidentEvent.Kind.REOPENED)
    assert event.data["from"] == "resolved"


def test_rejecting_or_merging_cancels_the_clocks(cast: Cast, default_policies: Any) -> None:
    # given two accepted incidents
    duplicate = _accepted(cast)
    target = _accepted(cast)

    # when one is merged into the other
    incident_services.incident_merge(
        incident_id=duplicate.pk, into_id=target.pk, by=cast.street_operator
    )

    # then its clocks are cancelled (no compliance figure), the target's run on
    assert set(_clocks("incident", duplicate.pk).values()) == {(ClockStatus.CANCELLED, "merged")}
    assert SlaClock.objects.filter(subject_id=target.pk, status=ClockStatus.RUNNING).count() == 2


def test_a_loop_change_moves_command_and_retimes_resolution(
    cast: Cast, default_policies: Any
) -> None:
    incident = _accepted(cast)

    incident_services.incident_classify(
        incident_id=incident.pk, by=cast.street_operator, loop=Loop.MEDIUM
    )

    incident.refresh_from_db()
    assert incident.command_region == cast.tree.fengdong
    running = SlaClock.objects.get(kind=SlaKind.INCIDENT_RESOLUTION, status=ClockStatus.RUNNING)
    assert running.loop == "medium"
    assert running.due_at - running.started_at == timedelta(hours=24)
    # one transition, one timeline row: the clocks write none of their own
    assert list(IncidentEvent.objects.filter(incident=incident).values_list("kind", flat=True)) == [
        "accepted",
        "classified",
    ]


def test_a_cross_department_dispatch_raises_to_the_medium_loop_at_the_new_town(
    cast: Cast, default_policies: Any
) -> None:
    from tests.factories.dispatch import DepartmentFactory

    incident = _accepted(cast)
    cast.team.department = DepartmentFactory(code="fire-dept")
    cast.team.save()
    cast.other_team.department = DepartmentFactory(code="gas-dept")
    cast.other_team.save()

    task_services.task_dispatch(
        incident_id=incident.pk,
        team_ids=[cast.team.pk, cast.other_team.pk],
        by=cast.street_operator,
    )

    incident.refresh_from_db()
    assert incident.loop == Loop.MEDIUM
    assert incident.command_region == cast.tree.fengdong


def test_a_declined_task_leaving_nobody_on_the_incident_owes_a_dispatch_again(
    cast: Cast, default_policies: Any
) -> None:
    incident = _accepted(cast)
    (task,) = task_services.task_dispatch(
        incident_id=incident.pk, team_ids=[cast.team.pk], by=cast.street_operator
    )

    task_services.task_decline(task_id=task.pk, by=cast.member, reason="车辆故障")

    assert _clocks("task", task.pk) == {
        SlaKind.TASK_ACCEPT: (ClockStatus.STOPPED, "declined"),
        SlaKind.TASK_ARRIVAL: (ClockStatus.CANCELLED, "task declined"),
    }
    assert _clocks("incident", incident.pk)[SlaKind.DISPATCH] == (ClockStatus.RUNNING, "")


def test_a_cancelled_task_cancels_its_clocks(cast: Cast, default_policies: Any) -> None:
    incident = _accepted(cast)
    (task,) = task_services.task_dispatch(
        incident_id=incident.pk, team_ids=[cast.team.pk], by=cast.street_operator
    )

    task_services.task_cancel(task_id=task.pk, by=cast.street_operator, reason="重复派单")

    assert set(_clocks("task", task.pk).values()) == {(ClockStatus.CANCELLED, "task cancelled")}


# --- 督办 by hand ------------------------------------------------------------------------------


def test_an_operator_can_supervise_an_open_incident(cast: Cast) -> None:
    incident = cast.incident()

    incident_supervise(incident_id=incident.pk, by=cast.town_commander, reason="领导督办")
    incident_supervise(incident_id=incident.pk, by=cast.town_commander)

    incident.refresh_from_db()
    assert incident.supervised_at is not None
    rows = list(
        IncidentEvent.objects.filter(incident=incident, kind=IncidentEvent.Kind.SUPERVISED)
        .order_by("id")
        .values_list("data", flat=True)
    )
    assert [row["first"] for row in rows] == [True, False]
    assert rows[0]["reason"] == "领导督办"


def test_a_closed_incident_is_not_supervised(cast: Cast) -> None:
    incident = cast.incident(status="closed")

    with pytest.raises(ApplicationError) as caught:
        incident_supervise(incident_id=incident.pk, by=cast.town_commander)

    assert (caught.value.code, caught.value.status) == ("illegal_transition", 409)


# --- Citizen reports ---------------------------------------------------------------------------


def test_a_citizen_report_is_triaged_on_a_clock(cast: Cast, default_policies: Any) -> None:
    # given
    with time_machine.travel(T0, tick=False):
        report = report_services.report_submit(
            category_code=cast.flood.code, lat=34.276, lng=108.850, text="路口积水"
        )
    clock = SlaClock.objects.get(kind=SlaKind.REPORT_TRIAGE)
    assert (clock.subject_type, clock.subject_id) == ("report", report.pk)
    assert clock.due_at == T0 + timedelta(minutes=5)

    # when an operator accepts it
    report_services.report_accept(report_id=report.pk, by=cast.street_operator)

    # then triage is done and the new incident's clocks run
    clock.refresh_from_db()
    assert (clock.status, clock.stop_reason) == (ClockStatus.STOPPED, Report.Status.ACCEPTED)
    report.refresh_from_db()
    assert set(_clocks("incident", report.incident_id)) == {
        SlaKind.DISPATCH,
        SlaKind.INCIDENT_RESOLUTION,
    }


def test_reports_written_outside_the_services_get_their_clock_from_the_repair_tool(
    cast: Cast, default_policies: Any
) -> None:
    # given reports inserted directly, bypassing the service (a restore, a manual insert)
    with time_machine.travel(T0, tick=False):
        fresh = ReportFactory(region=cast.tree.sanqiao, category=cast.flood)
    done = ReportFactory(region=cast.tree.sanqiao, category=cast.flood, status="rejected")

    # when the repair tool runs a minute later (twice)
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        started = report_triage_clocks_repair()
        again = report_triage_clocks_repair()

    # then the submitted one is timed from its arrival; the triaged one is left alone
    assert (started, again) == (1, 0)
    clock = SlaClock.objects.get(kind=SlaKind.REPORT_TRIAGE)
    assert clock.subject_id == fresh.pk
    assert clock.started_at == T0
    assert clock.due_at == T0 + timedelta(minutes=5)
    assert not SlaClock.objects.filter(subject_id=done.pk, subject_type="report").exists()


def test_the_repair_tool_finds_nothing_after_reports_taken_by_the_service(
    cast: Cast, default_policies: Any
) -> None:
    # given reports through the one write path, some of them triaged at once
    reports = [
        report_services.report_submit(category_code=cast.flood.code, lat=34.276, lng=108.850)
        for _ in range(3)
    ]
    report_services.report_reject(report_id=reports[0].pk, by=cast.street_operator, reason="重复")

    # when / then: nothing to repair
    assert report_triage_clocks_repair() == 0
    assert SlaClock.objects.filter(kind=SlaKind.REPORT_TRIAGE).count() == 3


# --- The citizen's say in verification ---------------------------------------------------------


def _closed_with_report(cast: Cast) -> tuple[Incident, Report]:
    incident = IncidentFactory(
        region=cast.tree.sanqiao, category=cast.flood, status="closed", closed_at=timezone.now()
    )
    report = ReportFactory(
        region=cast.tree.sanqiao, category=cast.flood, status="accepted", incident=incident
    )
    return incident, report


def test_a_dissatisfied_rating_puts_a_closed_incident_under_verification_again(
    cast: Cast, default_policies: Any
) -> None:
    incident, report = _closed_with_report(cast)

    report_services.report_rate(report=report, rating=1, comment="根本没修")

    clock = SlaClock.objects.get(kind=SlaKind.INCIDENT_VERIFICATION, subject_id=incident.pk)
    assert clock.status == ClockStatus.RUNNING
    assert clock.due_at - clock.started_at == timedelta(hours=24)


def test_a_good_rating_changes_nothing(cast: Cast, default_policies: Any) -> None:
    _incident, report = _closed_with_report(cast)

    report_services.report_rate(report=report, rating=4)

    assert not SlaClock.objects.exists()


def test_a_reopen_request_is_reviewed_and_the_closure_can_be_confirmed(
    cast: Cast, default_policies: Any
) -> None:
    # given a reopen request on a closed incident
    incident, report = _closed_with_report(cast)
    report_services.report_request_reopen(report=report, reason="水又漫上来了")
    assert SlaClock.objects.get(kind=SlaKind.INCIDENT_VERIFICATION).status == ClockStatus.RUNNING

    # when the street reviews and confirms the closure
    incident_verification_confirm(
        incident_id=incident.pk, by=cast.street_operator, note="现场核实已无积水"
    )

    # then the review is done; the timeline says so
    clock = SlaClock.objects.get(kind=SlaKind.INCIDENT_VERIFICATION)
    assert (clock.status, clock.stop_reason) == (ClockStatus.STOPPED, "closure confirmed")
    event = IncidentEvent.objects.get(
        incident=incident, kind=IncidentEvent.Kind.VERIFICATION_CONFIRMED
    )
    assert event.data == {"clock_stopped": True, "note": "现场核实已无积水"}
    assert event.actor == cast.street_operator


def test_only_a_closed_incidents_closure_can_be_confirmed(cast: Cast) -> None:
    incident = cast.incident(status="resolved")

    with pytest.raises(ApplicationError) as caught:
        incident_verification_confirm(incident_id=incident.pk, by=cast.street_operator)

    assert (caught.value.code, caught.value.status) == ("illegal_transition", 409)
