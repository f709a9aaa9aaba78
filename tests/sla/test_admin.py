"""The SLA admin: policies with their ladder, the overdue board, the escalation log, and
the incident admin's verification and escalation actions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import ensure_role_groups
from apps.incidents.models import Incident, IncidentEvent, Loop
from apps.sla.models import ClockStatus, PauseReason, SlaClock, SlaKind, SlaPolicy
from tests.factories.accounts import UserFactory
from tests.factories.sla import EscalationFactory, SlaClockFactory
from tests.sla.conftest import Cast

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    ensure_role_groups()  # the role groups carry the admin permissions (apps' ready())
    client = Client()
    client.force_login(User.objects.get(pk=user.pk))
    return client


@pytest.fixture
def superuser() -> User:
    return UserFactory(is_superuser=True, is_staff=True)


def _board(cast: Cast) -> dict[str, SlaClock]:
    now = timezone.now()
    street = cast.tree.sanqiao
    return {
        "late": SlaClockFactory(
            region=street,
            subject_label="晚了的",
            started_at=now - timedelta(hours=5),
            due_at=now - timedelta(hours=1),
            breached_at=now - timedelta(hours=1),
        ),
        "soon": SlaClockFactory(
            region=street, subject_label="快到期", due_at=now + timedelta(minutes=5)
        ),
        "later": SlaClockFactory(
            region=street, subject_label="还早", due_at=now + timedelta(hours=3)
        ),
        "done": SlaClockFactory(
            region=street, subject_label="已完成", status=ClockStatus.STOPPED, stopped_at=now
        ),
        "fengxi": SlaClockFactory(region=cast.tree.diaotai, subject_label="沣西的"),
    }


# --- The overdue board -------------------------------------------------------------------------


def test_the_board_shows_open_clocks_breached_first_then_by_time_left(cast: Cast) -> None:
    clocks = _board(cast)

    response = client_for(cast.street_operator).get(reverse("admin:sla_slaclock_changelist"))

    assert response.status_code == 200
    listed = list(response.context["cl"].result_list)
    assert listed == [clocks["late"], clocks["soon"], clocks["later"]]
    html = response.content.decode()
    assert "min overdue" in html
    assert "沣西的" not in html


def test_the_board_of_another_new_town_shows_nothing_of_this_one(cast: Cast) -> None:
    clocks = _board(cast)
    client = client_for(cast.outsider)

    listed = list(client.get(reverse("admin:sla_slaclock_changelist")).context["cl"].result_list)
    page = client.get(reverse("admin:sla_slaclock_change", args=[clocks["late"].pk]))

    assert listed == [clocks["fengxi"]]
    assert page.status_code in (302, 403, 404)


def test_the_board_can_show_closed_clocks_on_request(cast: Cast) -> None:
    clocks = _board(cast)

    response = client_for(cast.street_operator).get(
        reverse("admin:sla_slaclock_changelist") + "?state=closed"
    )

    assert list(response.context["cl"].result_list) == [clocks["done"]]


def test_a_clock_is_paused_with_an_approved_reason_and_resumed(
    cast: Cast, default_policies: Any
) -> None:
    # given a running resolution clock of a real incident
    from apps.incidents.services import incidents as incident_services

    incident = cast.incident(status="reported")
    incident_services.incident_accept(incident_id=incident.pk, by=cast.street_operator)
    clock = SlaClock.objects.get(kind=SlaKind.INCIDENT_RESOLUTION)
    client = client_for(cast.street_operator)
    url = reverse("admin:sla_slaclock_changelist")

    # when paused without a reason, then with one
    refused = client.post(url, {"action": "pause_selected", "_selected_action": [clock.pk]})
    client.post(
        url,
        {
            "action": "pause_selected",
            "_selected_action": [clock.pk],
            "pause_reason": PauseReason.AWAITING_THIRD_PARTY,
            "note": "等待燃气公司关阀",
        },
    )

    # then
    assert "approved reasons" in " ".join(str(m) for m in get_messages(refused.wsgi_request))
    clock.refresh_from_db()
    assert clock.status == ClockStatus.PAUSED
    assert clock.pauses.get().note == "等待燃气公司关阀"

    # when resumed
    client.post(url, {"action": "resume_selected", "_selected_action": [clock.pk]})
    clock.refresh_from_db()
    assert clock.status == ClockStatus.RUNNING


def test_the_board_adds_and_deletes_nothing(cast: Cast) -> None:
    clock = _board(cast)["late"]
    client = client_for(cast.street_operator)

    assert client.get(reverse("admin:sla_slaclock_add")).status_code == 403
    assert client.get(reverse("admin:sla_slaclock_delete", args=[clock.pk])).status_code == 403


# --- Policies ----------------------------------------------------------------------------------


def _policy_form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": "arrival-n03",
        "name": "山洪到场 40 分钟",
        "kind": SlaKind.TASK_ARRIVAL,
        "is_active": "on",
        "category_code": "",
        "severity": "",
        "loop": "",
        "target": "",
        "duration": "00:40:00",
        "source": "测试",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-anchor": "limit",
        "steps-0-after": "00:10:00",
        "steps-0-notify_street_duty": "on",
        "steps-0-mark_supervised": "on",
        "steps-0-next_team": "none",
    }
    data.update(overrides)
    return data


def test_an_administrator_adds_a_policy_with_its_ladder(cast: Cast, superuser: User) -> None:
    response = client_for(superuser).post(reverse("admin:sla_slapolicy_add"), _policy_form())

    assert response.status_code == 302, response.context["adminform"].errors
    policy = SlaPolicy.objects.get(code="arrival-n03")
    assert policy.duration == timedelta(minutes=40)
    step = policy.steps.get()
    assert (step.after, step.notify_street_duty, step.mark_supervised) == (
        timedelta(minutes=10),
        True,
        True,
    )


def test_a_step_counting_from_a_target_the_policy_lacks_is_refused(
    cast: Cast, superuser: User
) -> None:
    response = client_for(superuser).post(
        reverse("admin:sla_slapolicy_add"), _policy_form(**{"steps-0-anchor": "target"})
    )

    assert response.status_code == 200
    assert not SlaPolicy.objects.filter(code="arrival-n03").exists()
    assert "no target" in response.content.decode()


def test_the_policy_form_offers_the_incident_vocabulary(cast: Cast, superuser: User) -> None:
    response = client_for(superuser).get(reverse("admin:sla_slapolicy_add"))

    form = response.context["adminform"].form
    assert ("A02", "A02 燃气泄漏 / 燃气爆炸") in form.fields["category_code"].choices
    assert "II" in dict(form.fields["severity"].choices)
    assert "medium" in dict(form.fields["loop"].choices)


def test_operators_read_policies_but_do_not_edit_them(cast: Cast, default_policies: Any) -> None:
    client = client_for(cast.street_operator)
    policy = SlaPolicy.objects.get(code="task-accept")

    assert client.get(reverse("admin:sla_slapolicy_changelist")).status_code == 200
    assert (
        client.post(
            reverse("admin:sla_slapolicy_change", args=[policy.pk]), _policy_form(code="x")
        ).status_code
        == 403
    )


# --- The escalation log ------------------------------------------------------------------------


def test_the_escalation_log_is_read_only_and_scoped(cast: Cast) -> None:
    clocks = _board(cast)
    mine = EscalationFactory(clock=clocks["late"])
    EscalationFactory(clock=clocks["fengxi"])
    client = client_for(cast.street_operator)

    listed = list(client.get(reverse("admin:sla_escalation_changelist")).context["cl"].result_list)
    page = client.get(reverse("admin:sla_escalation_change", args=[mine.pk]))
    post = client.post(reverse("admin:sla_escalation_change", args=[mine.pk]), {})

    assert listed == [mine]
    assert page.status_code == 200
    assert post.status_code == 403
    outsider_list = client_for(cast.outsider).get(reverse("admin:sla_escalation_changelist"))
    assert mine not in list(outsider_list.context["cl"].result_list)


# --- Incident admin: verification and escalation by hand --------------------------------------


def _incident_action(cast: Cast, incident: Incident, action: str, reason: str = "") -> Any:
    return client_for(cast.street_operator).post(
        reverse("admin:incidents_incident_changelist"),
        {"action": action, "_selected_action": [incident.pk], "reason": reason},
    )


def test_the_incident_admin_supervises_and_raises_the_loop(cast: Cast) -> None:
    incident = cast.incident()

    _incident_action(cast, incident, "supervise_selected", "请加快处置")
    _incident_action(cast, incident, "raise_loop_selected")

    incident.refresh_from_db()
    assert incident.supervised_at is not None
    assert incident.loop == Loop.MEDIUM
    assert incident.command_region == cast.tree.fengdong
    kinds = set(IncidentEvent.objects.filter(incident=incident).values_list("kind", flat=True))
    assert kinds == {IncidentEvent.Kind.SUPERVISED, IncidentEvent.Kind.LOOP_RAISED}


def test_failed_verification_in_the_admin_needs_the_reason(cast: Cast) -> None:
    incident = cast.incident(status="resolved")

    refused = _incident_action(cast, incident, "reopen_selected")
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert "failed verification" in " ".join(str(m) for m in get_messages(refused.wsgi_request))

    _incident_action(cast, incident, "reopen_selected", "复查不合格")
    incident.refresh_from_db()
    assert incident.status == "in_progress"


def test_confirming_an_open_incidents_closure_is_refused_per_row(cast: Cast) -> None:
    incident = cast.incident(status="in_progress")

    response = _incident_action(cast, incident, "confirm_closure_selected")

    messages = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert "illegal_transition" in messages
