"""Telling people about an escalation: push (notifications outbox) and socket (realtime).

Both are written in the sweeper's transaction and leave the process only after it
commits (the outbox enqueues delivery on commit; realtime publishes on commit), so a
rolled-back escalation tells nobody and a committed one cannot be lost. The timeline row
is the subject handler's (``registry.SubjectHandler.record``).

- Push: one outbox row per recipient, kind ``escalation``, keyed
  ``sla:<clock>:<event>:<step>`` so even a repeated call could not push twice.
- Socket: ``sla.escalated`` on the region stream of the clock's region and every
  ancestor (the operator boards up the tree), for every event including the breach itself;
  all events of one clock's sweep in one reservation (``emit_many``), last in its
  transaction (the realtime ordering rule).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypedDict

from django.apps import apps as django_apps
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.sla.models import Escalation, EscalationKind, SlaClock, SlaKind

logger = logging.getLogger(__name__)

# Short obligations where minutes count: their escalations are pushed as high priority.
URGENT_KINDS = frozenset(
    {
        SlaKind.REPORT_TRIAGE,
        SlaKind.DISPATCH,
        SlaKind.TASK_ACCEPT,
        SlaKind.TASK_ARRIVAL,
        SlaKind.WARNING_ACK,
    }
)
EVENT_KIND = "sla.escalated"

TITLES: dict[str, Any] = {
    EscalationKind.TARGET_MISSED: _("Target missed: %(kind)s"),
    EscalationKind.BREACHED: _("Overdue: %(kind)s"),
    EscalationKind.STEP: _("Escalation: %(kind)s"),
}
BODY = _("%(subject)s — due %(due)s, %(minutes)s min overdue.")


class SlaEscalationPayload(TypedDict):
    """``sla.escalated`` on the region streams (operator boards)."""

    clock_id: int
    escalation_id: int
    sla_kind: str
    event: str
    step: int
    subject_type: str
    subject_id: int
    subject_label: str
    region: str
    due_at: str
    at: str
    recipients: int
    actions: dict[str, Any]


def escalation_push(*, clock: SlaClock, escalation: Escalation, recipients: Sequence[int]) -> None:
    """One push per recipient of a ladder step (nothing without recipients)."""
    if recipients:
        _push(clock, escalation, recipients)


def _push(clock: SlaClock, escalation: Escalation, recipients: Sequence[int]) -> None:
    if not django_apps.is_installed("apps.notifications"):
        logger.warning(
            "sla: notifications app not installed; escalation %s told nobody", escalation.pk
        )
        return
    from apps.notifications.models import Kind, Priority
    from apps.notifications.services import notify_users

    overdue = max(0, int((escalation.at - clock.due_at).total_seconds() // 60))
    notify_users(
        user_ids=recipients,
        kind=Kind.ESCALATION,
        title=TITLES[escalation.kind],
        body=BODY,
        args={
            "kind": SlaKind(clock.kind).label,
            "subject": clock.subject_label or f"{clock.subject_type} {clock.subject_id}",
            "due": f"{timezone.localtime(clock.due_at):%m-%d %H:%M}",
            "minutes": overdue,
        },
        data={
            "clock_id": clock.pk,
            "escalation_id": escalation.pk,
            "sla_kind": clock.kind,
            "event": escalation.kind,
            "step": escalation.step,
            "subject_type": clock.subject_type,
            "subject_id": clock.subject_id,
        },
        dedupe_key_prefix=f"sla:{clock.pk}:{escalation.kind}:{escalation.step}",
        priority=Priority.HIGH if clock.kind in URGENT_KINDS else Priority.NORMAL,
    )


def board_events(clock: SlaClock, escalations: Sequence[Escalation]) -> None:
    """``sla.escalated`` per escalation on the boards of the clock's region and above."""
    if not escalations or not django_apps.is_installed("apps.realtime"):
        return
    from apps.realtime import events, streams

    to = streams.region_and_ancestors(clock.region)
    events.emit_many([(to, EVENT_KIND, _payload(clock, e)) for e in escalations])


def _payload(clock: SlaClock, escalation: Escalation) -> SlaEscalationPayload:
    return {
        "clock_id": clock.pk,
        "escalation_id": escalation.pk,
        "sla_kind": clock.kind,
        "event": escalation.kind,
        "step": escalation.step,
        "subject_type": clock.subject_type,
        "subject_id": clock.subject_id,
        "subject_label": clock.subject_label,
        "region": clock.region.code,
        "due_at": clock.due_at.isoformat(),
        "at": escalation.at.isoformat(),
        "recipients": len(escalation.recipients),
        "actions": escalation.actions,
    }
