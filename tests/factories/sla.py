"""factory_boy factories for apps.sla.

``SlaPolicyFactory`` writes a policy row (give ``kind``, ``duration`` and the dimensions);
``LadderStepFactory(policy=..., after=..., notify_street_duty=True)`` a ladder step.
Clocks are started with ``apps.sla.services.clocks.sla_clock_start`` (it snapshots the
ladder and computes the deadlines); ``SlaClockFactory`` writes a row directly, for reads
and admin tests::

    policy = SlaPolicyFactory(kind=SlaKind.TASK_ACCEPT, duration=timedelta(minutes=3))
    LadderStepFactory(policy=policy, notify_team_leader=True, expire_task=True)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.sla.models import (
    Anchor,
    ClockStatus,
    Escalation,
    EscalationKind,
    NextTeam,
    SlaClock,
    SlaKind,
    SlaLadderStep,
    SlaPolicy,
)
from tests.factories.regions import StreetFactory


class SlaPolicyFactory(DjangoModelFactory):
    class Meta:
        model = SlaPolicy
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"policy-{n}")
    name = factory.Sequence(lambda n: f"测试时限{n}")
    kind = SlaKind.INCIDENT_RESOLUTION
    category_code = ""
    severity = ""
    loop = ""
    target = None
    duration = timedelta(hours=4)
    is_active = True
    is_estimate = False


class LadderStepFactory(DjangoModelFactory):
    class Meta:
        model = SlaLadderStep

    policy = factory.SubFactory(SlaPolicyFactory)
    anchor = Anchor.LIMIT
    after = timedelta(0)
    next_team = NextTeam.NONE


class SlaClockFactory(DjangoModelFactory):
    """A running clock row on an arbitrary subject (no handler needed for reads)."""

    class Meta:
        model = SlaClock

    kind = SlaKind.INCIDENT_RESOLUTION
    subject_type = "incident"
    subject_id = factory.Sequence(lambda n: 100_000 + n)
    subject_label = factory.Sequence(lambda n: f"20260101-{n:06d} 测试事件")
    region = factory.SubFactory(StreetFactory)
    status = ClockStatus.RUNNING
    started_at = factory.LazyFunction(timezone.now)
    due_at = factory.LazyAttribute(lambda o: o.started_at + timedelta(hours=4))
    next_check_at = factory.LazyAttribute(
        lambda o: o.due_at if o.status == ClockStatus.RUNNING else None
    )
    ladder: Any = factory.LazyFunction(list)


class EscalationFactory(DjangoModelFactory):
    class Meta:
        model = Escalation

    clock = factory.SubFactory(SlaClockFactory)
    kind = EscalationKind.BREACHED
    step = 0
    scheduled_at = factory.LazyAttribute(lambda o: o.clock.due_at)
    at = factory.LazyAttribute(lambda o: o.clock.due_at + timedelta(seconds=1))
    region = factory.LazyAttribute(lambda o: o.clock.region)
    subject_type = factory.LazyAttribute(lambda o: o.clock.subject_type)
    subject_id = factory.LazyAttribute(lambda o: o.clock.subject_id)
