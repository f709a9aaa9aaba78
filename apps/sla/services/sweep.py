"""The sweeper: every target miss, breach and ladder step runs exactly once (conventions R4).

:func:`sla_sweep` is what the Celery beat entry ``sla-sweep`` runs on a worker every
``SLA_SWEEP_INTERVAL_SECONDS`` (``apps.sla.tasks``); tests and the benchmark call it
directly.

1. Read the ids of running clocks whose ``next_check_at`` has passed, earliest first, from
   the partial index ``sla_clock_sweep_idx`` — no lock, a snapshot to work through.
2. For each clock, in its own transaction:

   a. lock the clock ``FOR UPDATE SKIP LOCKED``, re-checking that it is still running and
      due: a clock another sweeper is working on is skipped, one stopped meanwhile is gone;
   b. lock the subject through its handler *without waiting*. Services lock subject then
      clock; waiting here while holding the clock could deadlock with one of them, so a
      busy subject rolls this clock back for the next sweep (milliseconds later). A
      subject that no longer exists cancels the clock;
   c. take each event now due in time order — the target, the deadline, the next ladder
      step — and *claim* it with a compare-and-swap on the clock row (``target_missed_at
      IS NULL``, ``breached_at IS NULL`` or ``step = n``) before acting on it: recipients,
      actions (督办, loop raised, task expired and the next team proposed or dispatched),
      the :class:`~apps.sla.models.Escalation` row (unique per clock, kind and step: a
      second run cannot insert it), the notifications and the subject's timeline. An
      action that ends the clock (a raised loop restarts the resolution clock; an expired
      task stops its acceptance clock) ends the loop over events.

3. Repeat with the next batch until nothing is due or the time budget is spent.

Why this is exact: the row lock makes a second sweeper skip the clock, the CAS makes a
re-run after commit find nothing due, and the unique escalation row would refuse a third
path. A worker killed mid-sweep dies inside one clock's transaction, which PostgreSQL rolls
back when the connection drops: that clock is still due and the next sweep on any worker
takes it. Only an unexpected error backs a clock off (``failures``, ``last_error``), so one
broken subject cannot stall the rest.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.sla import notify, registry
from apps.sla.models import ClockStatus, Escalation, EscalationKind, SlaClock
from apps.sla.policies import LadderStep
from apps.sla.recipients import recipients_for
from apps.sla.services.clocks import clocks_close, ladder, next_check_at

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300
# Order of simultaneous events: the target before the deadline before a ladder step.
_EVENT_ORDER = {
    EscalationKind.TARGET_MISSED: 0,
    EscalationKind.BREACHED: 1,
    EscalationKind.STEP: 2,
}


@dataclass
class SweepResult:
    """What one sweep did (logged by the task; asserted by tests and the benchmark)."""

    clocks: int = 0  # clocks escalated
    events: int = 0  # escalation rows written
    skipped: int = 0  # locked by another sweeper, or no longer due
    busy: int = 0  # subject locked by a service: retried next sweep
    failed: int = 0
    escalation_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Event:
    kind: str
    at: datetime
    step: LadderStep | None = None

    @property
    def number(self) -> int:
        return self.step.number if self.step is not None else 0


def sla_sweep(
    *,
    batch_size: int | None = None,
    time_budget: float | None = None,
) -> SweepResult:
    """Run everything that is due now (see the module docstring). Safe to run twice and
    on several workers at once."""
    batch_size = batch_size or int(getattr(settings, "SLA_SWEEP_BATCH_SIZE", 200))
    budget = (
        time_budget
        if time_budget is not None
        else float(getattr(settings, "SLA_SWEEP_TIME_BUDGET_SECONDS", 30))
    )
    deadline = time.monotonic() + budget
    result = SweepResult()
    while time.monotonic() < deadline:
        ids = list(
            SlaClock.objects.filter(status=ClockStatus.RUNNING, next_check_at__lte=timezone.now())
            .order_by("next_check_at", "pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        progressed = 0
        for clock_id in ids:
            if time.monotonic() >= deadline:
                break
            progressed += _sweep_one(clock_id, result)
        if progressed == 0 or len(ids) < batch_size:
            # Everything left is locked by someone else (they finish it) or busy (the
            # next sweep retries): looping now would only spin.
            break
    return result


def _sweep_one(clock_id: int, result: SweepResult) -> int:
    """Escalate one clock in its own transaction; 1 if it did something."""
    try:
        with transaction.atomic():
            outcome = _escalate_locked(clock_id, result)
    except Exception as exc:
        logger.exception("sla: escalating clock %s failed", clock_id)
        _back_off(clock_id, exc)
        result.failed += 1
        return 0
    if outcome == "escalated":
        result.clocks += 1
        return 1
    if outcome == "busy":
        result.busy += 1
    else:
        result.skipped += 1
    return 0


def _escalate_locked(clock_id: int, result: SweepResult) -> str:
    now = timezone.now()
    clock = (
        SlaClock.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("region")
        .filter(pk=clock_id, status=ClockStatus.RUNNING, next_check_at__lte=now)
        .first()
    )
    if clock is None:
        return "skipped"
    handler = registry.handler_for(clock.subject_type)
    if handler is None:
        raise LookupError(f"no SLA handler registered for subject type {clock.subject_type!r}")
    lock = handler.lock(clock.subject_id, wait=False)
    if lock == registry.Lock.BUSY:
        transaction.set_rollback(True)
        return "busy"
    if lock == registry.Lock.GONE:
        clocks_close(
            SlaClock.objects.filter(pk=clock.pk),
            status=ClockStatus.CANCELLED,
            reason="subject gone",
            at=now,
        )
        return "skipped"

    escalations: list[Escalation] = []
    while clock.status == ClockStatus.RUNNING:
        event = _next_event(clock, timezone.now())
        if event is None:
            break
        if not _claim(clock, event):
            break  # someone else moved the clock: they own what follows
        escalations.append(_run(clock, event, handler))
        if event.step is not None and (event.step.raise_loop or event.step.expire_task):
            # The action may have ended this clock (restarted, or the task expired).
            clock.status = SlaClock.objects.values_list("status", flat=True).get(pk=clock.pk)
    # Last in the transaction: realtime counters stay locked until commit.
    notify.board_events(clock, escalations)
    result.events += len(escalations)
    result.escalation_ids += [e.pk for e in escalations]
    return "escalated" if escalations else "skipped"


def _next_event(clock: SlaClock, now: datetime) -> _Event | None:
    candidates: list[_Event] = []
    if clock.target_at is not None and clock.target_missed_at is None:
        candidates.append(_Event(EscalationKind.TARGET_MISSED, clock.target_at))
    if clock.breached_at is None:
        candidates.append(_Event(EscalationKind.BREACHED, clock.due_at))
    steps = ladder(clock)
    if clock.step < len(steps):
        step = steps[clock.step]
        candidates.append(
            _Event(
                EscalationKind.STEP, step.due(target_at=clock.target_at, due_at=clock.due_at), step
            )
        )
    if not candidates:
        return None
    first = min(candidates, key=lambda e: (e.at, _EVENT_ORDER[e.kind]))
    return first if first.at <= now else None


def _claim(clock: SlaClock, event: _Event) -> bool:
    """Compare-and-swap the event onto the clock row; True if this call won it."""
    guard = SlaClock.objects.filter(pk=clock.pk, status=ClockStatus.RUNNING)
    if event.kind == EscalationKind.TARGET_MISSED:
        guard = guard.filter(target_missed_at__isnull=True)
        clock.target_missed_at = event.at
        changes: dict[str, Any] = {"target_missed_at": event.at}
    elif event.kind == EscalationKind.BREACHED:
        guard = guard.filter(breached_at__isnull=True)
        clock.breached_at = event.at
        changes = {"breached_at": event.at}
    else:
        guard = guard.filter(step=clock.step)
        clock.step += 1
        changes = {"step": F("step") + 1}
    clock.next_check_at = next_check_at(clock)
    return (
        guard.update(**changes, next_check_at=clock.next_check_at, updated_at=timezone.now()) == 1
    )


def _run(clock: SlaClock, event: _Event, handler: registry.SubjectHandler) -> Escalation:
    step = event.step
    audiences: list[str] = list(step.audiences) if step is not None else []
    by_audience = recipients_for(clock, audiences) if audiences else {}
    recipients = sorted({pk for ids in by_audience.values() for pk in ids})
    actions: dict[str, Any] = {}
    if step is not None:
        actions = _actions(clock, step, handler)
        if step.note:
            actions["note"] = step.note
        unreached = [audience for audience, ids in by_audience.items() if not ids]
        if unreached:
            actions["unreached"] = unreached  # nobody holds that duty: the log shows it
    escalation = Escalation.objects.create(
        clock=clock,
        kind=event.kind,
        step=event.number,
        scheduled_at=event.at,
        at=timezone.now(),
        region=clock.region,
        subject_type=clock.subject_type,
        subject_id=clock.subject_id,
        audiences=audiences,
        recipients=recipients,
        actions=actions,
    )
    if handler.record is not None:
        handler.record(
            registry.RecordEvent(
                kind=event.kind,
                clock=clock,
                escalation=escalation,
                data=escalation_summary(clock, escalation),
            )
        )
    notify.escalation_push(clock=clock, escalation=escalation, recipients=recipients)
    return escalation


def _actions(clock: SlaClock, step: LadderStep, handler: registry.SubjectHandler) -> dict[str, Any]:
    """Run the step's actions, each in a savepoint: a refusal (``ApplicationError``, e.g.
    the task was taken a moment ago) is recorded and the rest of the step goes on."""
    wanted: list[tuple[str, registry.Action | None]] = []
    if step.mark_supervised:
        wanted.append(("supervise", handler.supervise))
    if step.raise_loop:
        wanted.append(("raise_loop", handler.raise_loop))
    if step.expire_task:
        wanted.append(("expire", handler.expire))
    done: dict[str, Any] = {}
    for name, action in wanted:
        if action is None:
            done[name] = {"applied": False, "reason": "not_applicable"}
            continue
        try:
            with transaction.atomic():
                done[name] = action(clock, step)
        except ApplicationError as exc:
            done[name] = {"applied": False, "error": exc.code, "extra": _jsonable(exc.extra)}
    return done


def escalation_summary(clock: SlaClock, escalation: Escalation) -> dict[str, Any]:
    """The self-describing data of a timeline row about an escalation."""
    return {
        "escalation_id": escalation.pk,
        "clock_id": clock.pk,
        "sla_kind": clock.kind,
        "event": escalation.kind,
        "step": escalation.step,
        "due_at": clock.due_at.isoformat(),
        "scheduled_at": escalation.scheduled_at.isoformat(),
        "audiences": escalation.audiences,
        "recipients": len(escalation.recipients),
        "actions": escalation.actions,
    }


def _back_off(clock_id: int, exc: BaseException) -> None:
    """An unexpected error: try this clock again later (doubling, at most 5 min)."""
    try:
        with transaction.atomic():
            clock = (
                SlaClock.objects.select_for_update(of=("self",), skip_locked=True)
                .filter(pk=clock_id, status=ClockStatus.RUNNING)
                .first()
            )
            if clock is None:
                return
            failures = min(clock.failures + 1, 1000)
            delay = timedelta(seconds=min(2**failures, MAX_BACKOFF_SECONDS))
            clock.failures = failures
            clock.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            clock.next_check_at = timezone.now() + delay
            clock.save(update_fields=["failures", "last_error", "next_check_at", "updated_at"])
    except Exception:
        logger.exception("sla: could not back off clock %s", clock_id)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
