"""Clock writes: start, stop, cancel, restart, pause and resume (conventions R1-R4).

The services of the apps above call these inside their own transactions, with their
subject's row locked (their lock order: subject, then clock), e.g. ``incident_accept``
starts the dispatch and resolution clocks of the incident it has just accepted. Every
write here is one conditional statement or a short locked read-modify-write, so a retried
call changes nothing:

- ``sla_clock_start`` on a subject that already has an open clock of that kind returns
  the open one (the partial unique index ``sla_slaclock_one_open`` decides);
- ``sla_clock_stop``/``sla_clock_cancel`` update only open clocks.

A kind without an active policy has no clock (``sla_clock_start`` returns ``None``):
policies are the switch, so an administrator can turn an obligation off.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, DurationField, ExpressionWrapper, F, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.bulk import rows_insert
from apps.core.errors import ApplicationError
from apps.core.validation import field_error, optional_text
from apps.sla import registry
from apps.sla.errors import SlaErrorCode
from apps.sla.models import (
    OPEN_CLOCK_STATUSES,
    ClockStatus,
    PauseReason,
    SlaClock,
    SlaPause,
)
from apps.sla.policies import LadderStep, PolicyTable, policies_current, policy_match

logger = logging.getLogger(__name__)

NOTE_MAX_LENGTH = 1000


# --- Start ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClockStart:
    """What starting one obligation takes (the arguments of :func:`sla_clock_start`)."""

    kind: str
    subject_type: str
    subject_id: int
    region_id: int
    label: str = ""
    category: str = ""
    severity: str = ""
    loop: str = ""
    is_drill: bool = False
    started_at: datetime | None = None
    due_at: datetime | None = None


def sla_clock_start(
    *,
    kind: str,
    subject_type: str,
    subject_id: int,
    region_id: int,
    label: str = "",
    category: str = "",
    severity: str = "",
    loop: str = "",
    is_drill: bool = False,
    started_at: datetime | None = None,
    due_at: datetime | None = None,
) -> SlaClock | None:
    """Start the obligation ``kind`` on a subject filed in region ``region_id`` (the
    board's scope), timed by the policy that matches ``category``/``severity``/``loop``
    (``apps.sla.policies``); ``None`` if none does.

    ``started_at`` defaults to now (pass the real start when it lies in the past, e.g. the
    dispatch time of a task); ``due_at`` overrides the policy's duration and is required
    when the policy has none (hidden dangers: their rectification deadline) →
    ``sla_deadline_required`` otherwise. An open clock of the same kind on the subject is
    returned unchanged.
    """
    clock = clock_new(
        ClockStart(
            kind=kind,
            subject_type=subject_type,
            subject_id=subject_id,
            region_id=region_id,
            label=label,
            category=category,
            severity=severity,
            loop=loop,
            is_drill=is_drill,
            started_at=started_at,
            due_at=due_at,
        )
    )
    if clock is None:
        return None
    try:
        with transaction.atomic():
            clock.save(force_insert=True)
    except IntegrityError:
        existing = (
            SlaClock.objects.open().for_subject(subject_type, subject_id).filter(kind=kind).first()
        )
        if existing is None:
            raise
        return existing
    return clock


def sla_clocks_start_many(starts: Sequence[ClockStart]) -> list[SlaClock | None]:
    """The batch form of :func:`sla_clock_start` for new subjects (a batch of citizen
    reports): the same policy, deadline and ladder rules, one INSERT for all. A subject
    that already has an open clock of the kind keeps it (the partial unique index
    ``sla_slaclock_one_open`` skips the new row). Returns the clock built for each start
    (``None`` where no policy applies); skipped rows come back without a primary key.
    """
    table = policies_current() if starts else None  # one freshness check for the batch
    built = [clock_new(start, table=table) for start in starts]
    rows = [clock for clock in built if clock is not None]
    # ignore_conflicts: an open clock already there wins, as in sla_clock_start.
    inserted = rows_insert(
        SlaClock,
        rows,
        returning=("subject_type", "subject_id", "kind", "id"),
        ignore_conflicts=True,
    )
    ids = {(subject_type, subject_id, kind): pk for subject_type, subject_id, kind, pk in inserted}
    for clock in rows:
        clock.pk = ids.get((clock.subject_type, clock.subject_id, clock.kind))
        if clock.pk is not None:
            clock._state.adding = False
            clock._state.db = "default"
    return built


def clock_new(start: ClockStart, *, table: PolicyTable | None = None) -> SlaClock | None:
    """The unsaved clock of one start: policy, deadline, target, ladder, first check.

    The one place these rules live (:func:`sla_clock_start` and its batch form insert
    what this builds). ``None`` when no active policy applies.
    """
    rule = policy_match(
        kind=start.kind,
        category=start.category,
        severity=start.severity,
        loop=start.loop,
        table=table,
    )
    if rule is None:
        return None
    begin = start.started_at or timezone.now()
    due_at = start.due_at
    if due_at is None:
        if rule.duration is None:
            raise ApplicationError(
                SlaErrorCode.DEADLINE_REQUIRED,
                _("This obligation is due by the subject's own deadline; give it."),
                extra={"kind": str(start.kind), "policy": rule.code},
            )
        due_at = begin + rule.duration
    if due_at < begin:
        raise field_error("due_at", _("The deadline lies before the start."))
    target_at = begin + rule.target if rule.target is not None else None
    if target_at is not None and target_at > due_at:
        target_at = None  # an explicit deadline earlier than the target: the deadline rules
    clock = SlaClock(
        kind=start.kind,
        subject_type=start.subject_type,
        subject_id=start.subject_id,
        subject_label=(start.label or "")[:200],
        region_id=start.region_id,
        policy_id=rule.pk,
        category_code=start.category or "",
        severity=start.severity or "",
        loop=start.loop or "",
        is_drill=start.is_drill,
        status=ClockStatus.RUNNING,
        started_at=begin,
        target_at=target_at,
        due_at=due_at,
        ladder=rule.ladder_json(),
    )
    clock.next_check_at = next_check_at(clock)
    return clock


# --- Stop, cancel, restart -------------------------------------------------------------------


def sla_clock_stop(
    *,
    kind: str,
    subject_type: str,
    subject_id: int,
    reason: str = "",
    at: datetime | None = None,
) -> int:
    """The obligation ended (met, late or failed: ``reason`` says which): stop the open
    clock of ``kind`` on the subject. Returns how many clocks stopped (0 or 1)."""
    return clocks_close(
        SlaClock.objects.open().for_subject(subject_type, subject_id).filter(kind=kind),
        status=ClockStatus.STOPPED,
        reason=reason,
        at=at,
    )


def sla_clock_cancel(
    *,
    subject_type: str,
    subject_id: int,
    kind: str | None = None,
    reason: str = "",
    at: datetime | None = None,
) -> int:
    """The obligation went away (incident merged or rejected, task cancelled): cancel the
    subject's open clocks (of ``kind`` only, if given). Cancelled clocks count for no
    compliance figure. Returns how many were cancelled."""
    queryset = SlaClock.objects.open().for_subject(subject_type, subject_id)
    if kind is not None:
        queryset = queryset.filter(kind=kind)
    return clocks_close(queryset, status=ClockStatus.CANCELLED, reason=reason, at=at)


def sla_clock_restart(
    *,
    kind: str,
    subject_type: str,
    subject_id: int,
    region_id: int,
    reason: str,
    label: str = "",
    category: str = "",
    severity: str = "",
    loop: str = "",
    is_drill: bool = False,
) -> SlaClock | None:
    """Stop the open clock of ``kind`` (``reason``) and start a fresh one from now, timed
    by the policy for the new classification (e.g. the loop was raised: the medium loop
    gets its own 24 h; an incident reopened after failed verification)."""
    sla_clock_stop(kind=kind, subject_type=subject_type, subject_id=subject_id, reason=reason)
    return sla_clock_start(
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        region_id=region_id,
        label=label,
        category=category,
        severity=severity,
        loop=loop,
        is_drill=is_drill,
    )


def clocks_close(queryset: Any, *, status: str, reason: str, at: datetime | None) -> int:
    """Close open clocks with one conditional UPDATE (and close their open pause).

    A clock closed after its deadline without the sweeper having seen it gets its breach
    recorded here (``breached_at = due_at``), so compliance never depends on sweep timing.
    For a paused clock the deadline is shifted by the running pause: it was breached iff
    it was already late when paused (``due_at < paused_at``).
    """
    now = at or timezone.now()
    pausing = ExpressionWrapper(Value(now) - F("paused_at"), output_field=DurationField())
    rows = list(queryset.values_list("pk", "status"))
    if not rows:
        return 0  # the usual case for a kind without a policy: one indexed read
    ids = [pk for pk, _status in rows]
    if any(status == ClockStatus.PAUSED for _pk, status in rows):
        SlaPause.objects.filter(clock_id__in=ids, resumed_at__isnull=True).update(
            resumed_at=now, updated_at=now
        )
    return SlaClock.objects.filter(pk__in=ids, status__in=OPEN_CLOCK_STATUSES).update(
        status=status,
        stopped_at=now,
        stop_reason=(reason or "")[:100],
        next_check_at=None,
        breached_at=Case(
            When(breached_at__isnull=False, then=F("breached_at")),
            When(paused_at__isnull=True, due_at__lt=now, then=F("due_at")),
            When(paused_at__isnull=False, due_at__lt=F("paused_at"), then=F("due_at")),
            default=None,
        ),
        target_missed_at=Case(
            When(target_missed_at__isnull=False, then=F("target_missed_at")),
            When(paused_at__isnull=True, target_at__lt=now, then=F("target_at")),
            When(paused_at__isnull=False, target_at__lt=F("paused_at"), then=F("target_at")),
            default=None,
        ),
        paused_total=Case(
            When(paused_at__isnull=False, then=F("paused_total") + pausing),
            default=F("paused_total"),
        ),
        paused_at=None,
        updated_at=now,
    )


# --- Pause and resume ------------------------------------------------------------------------


@transaction.atomic
def sla_clock_pause(*, clock_id: int, reason: str, by: Any, note: str = "") -> SlaClock:
    """Stop a running clock ticking for an approved ``reason`` (``PauseReason``).

    Refusals: unknown reason → 400 ``invalid`` (field ``reason``); not running → 409
    ``sla_clock_not_running``. The subject is locked first (its app's order), then the
    clock; the subject's timeline records the pause.
    """
    if reason not in PauseReason.values:
        raise field_error("reason", _("Not one of the approved reasons."), code="invalid_choice")
    note = optional_text("note", note, max_length=NOTE_MAX_LENGTH)
    clock = _locked_clock_with_subject(clock_id)
    if clock.status != ClockStatus.RUNNING:
        raise ApplicationError(
            SlaErrorCode.CLOCK_NOT_RUNNING,
            _("Only a running clock can be paused."),
            extra={"status": clock.status},
            status=409,
        )
    now = timezone.now()
    actor = by if getattr(by, "is_authenticated", False) else None
    clock.status = ClockStatus.PAUSED
    clock.paused_at = now
    clock.next_check_at = None
    clock.save(update_fields=["status", "paused_at", "next_check_at", "updated_at"])
    SlaPause.objects.create(clock=clock, reason=reason, note=note, paused_at=now, paused_by=actor)
    _record(clock, "paused", {"reason": reason, "note": note, "by": getattr(actor, "pk", None)})
    return clock


@transaction.atomic
def sla_clock_resume(*, clock_id: int, by: Any) -> SlaClock:
    """Start a paused clock ticking again: its target, deadline and remaining ladder move
    later by the time paused. Not paused → 409 ``sla_clock_not_paused``."""
    clock = _locked_clock_with_subject(clock_id)
    if clock.status != ClockStatus.PAUSED or clock.paused_at is None:
        raise ApplicationError(
            SlaErrorCode.CLOCK_NOT_PAUSED,
            _("Only a paused clock can be resumed."),
            extra={"status": clock.status},
            status=409,
        )
    now = timezone.now()
    actor = by if getattr(by, "is_authenticated", False) else None
    paused_for = max(now - clock.paused_at, timedelta(0))
    clock.due_at += paused_for
    if clock.target_at is not None:
        clock.target_at += paused_for
    clock.paused_total += paused_for
    clock.paused_at = None
    clock.status = ClockStatus.RUNNING
    clock.next_check_at = next_check_at(clock)
    clock.save(
        update_fields=[
            "due_at",
            "target_at",
            "paused_total",
            "paused_at",
            "status",
            "next_check_at",
            "updated_at",
        ]
    )
    SlaPause.objects.filter(clock=clock, resumed_at__isnull=True).update(
        resumed_at=now, resumed_by=actor, updated_at=now
    )
    _record(
        clock,
        "resumed",
        {
            "paused_seconds": int(paused_for.total_seconds()),
            "due_at": clock.due_at.isoformat(),
            "by": getattr(actor, "pk", None),
        },
    )
    return clock


def _locked_clock_with_subject(clock_id: int) -> SlaClock:
    """Lock the clock's subject (waiting, in its app's order), then the clock."""
    found = SlaClock.objects.filter(pk=clock_id).values_list("subject_type", "subject_id").first()
    if found is None:
        raise ApplicationError(SlaErrorCode.CLOCK_NOT_FOUND, _("Clock not found."), status=404)
    handler = registry.handler_for(found[0])
    if handler is not None:
        handler.lock(found[1], wait=True)
    return (
        SlaClock.objects.select_for_update(of=("self",)).select_related("region").get(pk=clock_id)
    )


def _record(clock: SlaClock, kind: str, data: dict[str, Any]) -> None:
    handler = registry.handler_for(clock.subject_type)
    if handler is not None and handler.record is not None:
        handler.record(registry.RecordEvent(kind=kind, clock=clock, data=data))


# --- Timing ----------------------------------------------------------------------------------


def ladder(clock: SlaClock) -> list[LadderStep]:
    return [LadderStep.from_json(item) for item in clock.ladder or []]


def next_check_at(clock: SlaClock) -> datetime | None:
    """The next moment the sweeper has something to do for a running clock: the target,
    the deadline, or the next ladder step, whichever comes first (``None``: nothing)."""
    if clock.status != ClockStatus.RUNNING:
        return None
    moments = []
    if clock.target_at is not None and clock.target_missed_at is None:
        moments.append(clock.target_at)
    if clock.breached_at is None:
        moments.append(clock.due_at)
    steps = ladder(clock)
    if clock.step < len(steps):
        moments.append(steps[clock.step].due(target_at=clock.target_at, due_at=clock.due_at))
    return min(moments) if moments else None
