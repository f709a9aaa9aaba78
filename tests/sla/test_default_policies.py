"""Time travel through every default policy and every rung of its ladder.

For each policy of ``fixtures/sla/policies.json`` a clock is started on a subject of the
right type at T0; the expected events (target missed, breach, each ladder step) are
computed from the *fixture* (not from the code under test), and for each event time the
sweep is run one second before (nothing may happen) and at the time (exactly the expected
events, each telling exactly the expected people, once).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from apps.incidents.models import IncidentStatus
from apps.notifications.models import Notification
from apps.sla.models import Escalation, EscalationKind, SlaKind
from apps.sla.services.clocks import sla_clock_start
from apps.sla.services.seed import default_fixture_path
from apps.sla.services.sweep import sla_sweep
from tests.factories.dispatch import DispatchTaskFactory
from tests.factories.incidents import ReportFactory
from tests.sla.conftest import Cast

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 7, 20, 16, 0, tzinfo=SHANGHAI)
POLICIES: list[dict[str, Any]] = json.loads(default_fixture_path().read_text(encoding="utf-8"))[
    "policies"
]
HIDDEN_DANGER_DEADLINE = timedelta(days=10)


def _audience_users(cast: Cast) -> dict[str, set[int]]:
    return {
        "assignee": {cast.leader.pk, cast.member.pk},
        "team_leader": {cast.leader.pk},
        "street_duty": {cast.street_operator.pk},
        "new_town_command": {cast.town_operator.pk, cast.town_commander.pk},
        "new_area_command": {cast.area_commander.pk},
    }


def _expected_events(entry: dict[str, Any]) -> list[tuple[timedelta, str, int, list[str]]]:
    """(offset from T0, kind, step number, audiences), in the order they must run."""
    target = timedelta(minutes=entry["target_minutes"]) if entry["target_minutes"] else None
    duration = (
        timedelta(minutes=entry["duration_minutes"])
        if entry["duration_minutes"] is not None
        else HIDDEN_DANGER_DEADLINE
    )
    events: list[tuple[timedelta, int, str, list[str]]] = []
    if target is not None:
        events.append((target, 0, EscalationKind.TARGET_MISSED, []))
    events.append((duration, 1, EscalationKind.BREACHED, []))
    for step in entry["ladder"]:
        base = target if step.get("anchor") == "target" else duration
        events.append((base + timedelta(minutes=step["after_minutes"]), 2, "step", step["notify"]))
    events.sort(key=lambda e: (e[0], e[1]))
    numbered = []
    step_number = 0
    for offset, _order, kind, audiences in events:
        if kind == "step":
            step_number += 1
        numbered.append((offset, kind, step_number if kind == "step" else 0, audiences))
    return numbered


def _subject(entry: dict[str, Any], cast: Cast, make_probe: Any) -> dict[str, Any]:
    """A real subject for the policy's kind, classified so that this policy applies."""
    severity, category_code = entry["severity"], entry["category"]
    category = {"A02": cast.gas, "A01": cast.fire, "N02": cast.flood}.get(category_code, cast.plain)
    kind = entry["kind"]
    if kind in (SlaKind.WARNING_ACK, SlaKind.HIDDEN_DANGER_RECTIFICATION):
        # The warnings and risks apps are not built yet: a probe stands in for them.
        probe = make_probe("warning_receipt" if kind == SlaKind.WARNING_ACK else "hidden_danger")
        probe.assignees = [cast.leader.pk, cast.member.pk]
        return {"subject_type": probe.subject_type, "subject_id": 1}
    if kind == SlaKind.REPORT_TRIAGE:
        report = ReportFactory(region=cast.tree.sanqiao, category=category)
        return {"subject_type": "report", "subject_id": report.pk}
    status = (
        IncidentStatus.RESOLVED
        if kind == SlaKind.INCIDENT_VERIFICATION
        else IncidentStatus.ACCEPTED
    )
    incident = cast.incident(
        category=category,
        severity=severity if severity in ("I", "II", "III", "IV") else "unclassified",
        loop=entry["loop"] or "small",
        status=status,
    )
    task = DispatchTaskFactory(incident=incident, team=cast.team, status="dispatched")
    if kind in (SlaKind.TASK_ACCEPT, SlaKind.TASK_ARRIVAL):
        return {"subject_type": "task", "subject_id": task.pk}
    return {"subject_type": "incident", "subject_id": incident.pk}


def _sweep_at(moment: datetime) -> list[Escalation]:
    before = set(Escalation.objects.values_list("pk", flat=True))
    with time_machine.travel(moment, tick=False):
        sla_sweep()
    return list(Escalation.objects.exclude(pk__in=before).order_by("pk"))


@pytest.mark.parametrize("entry", POLICIES, ids=[p["code"] for p in POLICIES])
def test_every_default_policy_escalates_each_step_on_time_to_the_right_people(
    entry: dict[str, Any], cast: Cast, default_policies: Any, make_probe: Any
) -> None:
    # given a clock of this policy started at T0
    subject = _subject(entry, cast, make_probe)
    with time_machine.travel(T0, tick=False):
        clock = sla_clock_start(
            kind=entry["kind"],
            region_id=cast.tree.sanqiao.pk,
            category=entry["category"] or cast.plain.code,
            severity=entry["severity"],
            loop=entry["loop"],
            due_at=None if entry["duration_minutes"] else T0 + HIDDEN_DANGER_DEADLINE,
            **subject,
        )
    assert clock is not None
    assert clock.policy is not None
    assert clock.policy.code == entry["code"]
    people = _audience_users(cast)
    expected = _expected_events(entry)

    # when / then: at each distinct time, nothing a second early, exactly the events at it
    for offset in sorted({e[0] for e in expected}):
        assert _sweep_at(T0 + offset - timedelta(seconds=1)) == [], f"early at {offset}"
        ran = _sweep_at(T0 + offset)
        due_now = [e for e in expected if e[0] == offset]
        assert [(e.kind, e.step) for e in ran] == [(kind, n) for _o, kind, n, _a in due_now]
        for escalation, (_offset, _kind, _n, audiences) in zip(ran, due_now, strict=True):
            wanted = set().union(*(people[a] for a in audiences)) if audiences else set()
            assert set(escalation.recipients) == wanted, escalation.audiences
            assert escalation.scheduled_at == T0 + offset
            pushed = Notification.objects.filter(
                dedupe_key__startswith=f"sla:{clock.pk}:{escalation.kind}:{escalation.step}:"
            )
            assert set(pushed.values_list("user_id", flat=True)) == wanted
    assert not Notification.objects.filter(user=cast.outsider).exists()
    # and afterwards nothing more for this clock, however long we wait (an action may have
    # started another: a raised loop's new resolution clock, an expired task's dispatch)
    assert [e for e in _sweep_at(T0 + timedelta(days=60)) if e.clock_id == clock.pk] == []
