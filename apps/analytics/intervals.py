"""The "first-time" intervals and SLA compliance: exactly what each figure measures.

Every interval is the difference of two timestamps that the services stamped when the
transitions happened (``Incident.accepted_at``, ``DispatchTask.on_scene_at``…). An
interval whose end has not happened yet is **not counted**: nothing is ever measured up
to "now" (an open incident does not drag the resolve figure as time passes).

Incident intervals (one value per incident)
-------------------------------------------
``acquire`` (第一时间获取): first known → accepted (受理, ``Incident.accepted_at``).
    *First known* is the earliest of: the submission of the first citizen report linked
    to the incident (accepted or marked as duplicate, ``Report.created_at``), the
    incident's creation (``Incident.created_at``: hotline, sensor, patrol, operator) and
    the acceptance itself. An incident an operator creates already accepted thus counts
    0, unless a citizen report was linked to it that came in earlier.
``dispatch``: accepted → the first task dispatched to the incident
    (``min(DispatchTask.dispatched_at)``), whatever became of that task (declined,
    expired, cancelled, reassigned): it is when a team was first called.
``resolve``: accepted → resolved (办结, ``Incident.resolved_at``). A reopen (verification
    failed, 核查不合格) clears ``resolved_at``: a reopened incident is not counted until it
    is resolved again, and then from its acceptance to the resolution that stands, so
    the rework is part of its figure.
``verify``: resolved → closed (核查销号): the standing ``resolved_at`` → ``closed_at``, i.e.
    the verification that closed the incident. A failed verification shows up in the
    ``reopened`` count (and in the verification clocks' compliance), not here.

Task intervals (one value per dispatch task; the team figures)
--------------------------------------------------------------
``respond`` (第一时间响应): dispatched → accepted by the team (接单):
    ``accepted_at - dispatched_at``. Declined and expired tasks were never accepted: not
    counted (they are in the ``declined``/``expired`` counts). A task cancelled after its
    acceptance still counts: the team did respond. A reassignment (改派) is a new task
    with its own dispatch time.
``arrive`` (第一时间到位): dispatched → on scene: ``on_scene_at - dispatched_at``, the first
    arrival (a task returned for rework, 重办, keeps its first ``on_scene_at``). Counted
    for every task that reached the scene, whether cancelled later or not.

Which rows
----------
- **Merged** incidents (duplicates) are counted in ``merged`` but give no incident
  interval: their emergency is measured on the incident they were merged into, from
  that incident's own reports and tasks (a duplicate does not move its start). Tasks that
  were sent to a duplicate before the merge still count: a team did respond.
- **Rejected** incidents (不予受理) were never accepted: counted in ``rejected``, no
  interval.
- **Drills** (``is_drill``) are left out unless ``include_drills``; a task is a drill
  when its incident is; clocks carry their own flag.
- **Window and periods**: an incident belongs to the day/week/month of its creation, a
  task to that of its dispatch, an SLA clock to that of its start. ``from`` and ``to`` are
  Asia/Shanghai dates (``TIME_ZONE``), both included; weeks start on Monday, and the
  first and last period may be cut short by the window.
- **Region**: an incident's region (its street); a task's region is its incident's; a
  clock has its own (its subject's). Scope and subtree filters use the region's path.

SLA compliance (``apps.sla`` clock rows, per kind)
--------------------------------------------------
- **met**: stopped (the obligation ended) without a breach: ``status = stopped`` and no
  ``breached_at``. A clock stopped exactly at its deadline is met. The sla app sets
  ``breached_at`` on a late stop (net of pauses), so that column is trusted, not
  ``stopped_at`` (a clock stopped while paused has an unshifted ``due_at``). A
  verification clock stopped because the verification *failed* was still answered in
  time: met.
- **breached**: ``breached_at`` set (stopped late, or marked by the sweeper); or still
  running past ``due_at`` (the sweeper has not got to it yet); or paused when it was
  already late.
- **pending**: open (running or paused) within its deadline; counted in neither.
- **cancelled** clocks (the obligation went away: task cancelled, incident merged or
  rejected) are not counted at all.
- **compliance rate** = met / (met + breached); none when nothing was decided.

Statistics per interval: count, mean, median and 90th percentile, in seconds. The
percentiles are continuous (linear interpolation between the two nearest ranks), as
PostgreSQL's ``percentile_cont`` computes them; ``apps.analytics.aggregation`` does it in
the database on PostgreSQL and in Python elsewhere, from the same row expressions below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import (
    Case,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Least
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.dispatch.models import DispatchTask, TaskStatus
from apps.incidents.models import Incident, IncidentEvent, IncidentStatus, Report
from apps.sla.models import OPEN_CLOCK_STATUSES, ClockStatus, SlaClock

# --- Vocabulary ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalDefinition:
    """One interval: its name (the API key), whose it is, and the words for people."""

    name: str
    level: str  # "incident" or "task"
    label: Any
    description: Any


INCIDENT = "incident"
TASK = "task"

INTERVALS: tuple[IntervalDefinition, ...] = (
    IntervalDefinition(
        "acquire",
        INCIDENT,
        pgettext_lazy("kpi interval", "Acquire"),
        _("First report (or creation) → accepted"),
    ),
    IntervalDefinition(
        "dispatch",
        INCIDENT,
        pgettext_lazy("kpi interval", "Dispatch"),
        _("Accepted → first team dispatched"),
    ),
    IntervalDefinition(
        "respond",
        TASK,
        pgettext_lazy("kpi interval", "Respond"),
        _("Task dispatched → accepted by the team"),
    ),
    IntervalDefinition(
        "arrive",
        TASK,
        pgettext_lazy("kpi interval", "Arrive"),
        _("Task dispatched → team on scene"),
    ),
    IntervalDefinition(
        "resolve",
        INCIDENT,
        pgettext_lazy("kpi interval", "Resolve"),
        _("Accepted → resolved (the standing resolution)"),
    ),
    IntervalDefinition(
        "verify",
        INCIDENT,
        pgettext_lazy("kpi interval", "Verify"),
        _("Resolved → closed (verified)"),
    ),
)
INTERVAL_NAMES: tuple[str, ...] = tuple(d.name for d in INTERVALS)
INCIDENT_INTERVALS: tuple[str, ...] = tuple(d.name for d in INTERVALS if d.level == INCIDENT)
TASK_INTERVALS: tuple[str, ...] = tuple(d.name for d in INTERVALS if d.level == TASK)

# Counts that go with the intervals (0/1 flag columns of the row queries, summed).
INCIDENT_FLAGS: tuple[str, ...] = ("rejected", "merged", "reopened")
TASK_FLAGS: tuple[str, ...] = ("declined", "expired", "cancelled")
CLOCK_FLAGS: tuple[str, ...] = ("met", "breached", "pending")

# The grouping column every row query carries (NULL: not attributable to a group).
KEY = "key"
# The SLA kind column of the clock rows.
CLOCK_KIND = "sla_kind"


# --- Expressions -----------------------------------------------------------------------------


def _flag(condition: Q | Exists) -> Case:
    return Case(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField())


def _between(start: Any, end: Any) -> ExpressionWrapper:
    return ExpressionWrapper(end - start, output_field=DurationField())


def _only_when(condition: Q, value: Any) -> Case:
    """``value`` where ``condition`` holds, NULL (not counted) elsewhere."""
    return Case(When(condition, then=value), default=None, output_field=DurationField())


def incident_rows(queryset: QuerySet[Incident], key: Any) -> QuerySet[Any]:
    """One row per incident of ``queryset``: the grouping ``key``, the flags and the four
    incident intervals as durations (NULL where not counted), per the rules above."""
    first_report = Subquery(
        Report.objects.filter(incident_id=OuterRef("pk"))
        .order_by("created_at")
        .values("created_at")[:1]
    )
    first_dispatch = Subquery(
        DispatchTask.objects.filter(incident_id=OuterRef("pk"))
        .order_by("dispatched_at")
        .values("dispatched_at")[:1]
    )
    reopened = Exists(
        IncidentEvent.objects.filter(incident_id=OuterRef("pk"), kind=IncidentEvent.Kind.REOPENED)
    )
    # Least() over non-NULL arguments only (SQLite's MIN() is NULL if any argument is).
    first_known = Least(
        F("created_at"), F("accepted_at"), Coalesce(F("kpi_first_report"), F("created_at"))
    )
    measured = Q(accepted_at__isnull=False) & ~Q(status=IncidentStatus.MERGED)
    return (
        queryset.order_by()
        .alias(kpi_first_report=first_report, kpi_first_dispatch=first_dispatch)
        .values(
            **{
                KEY: key,
                "rejected": _flag(Q(status=IncidentStatus.REJECTED)),
                "merged": _flag(Q(status=IncidentStatus.MERGED)),
                "reopened": _flag(reopened),
                # A difference with a NULL end is NULL: not counted (nothing up to now).
                "acquire": _only_when(measured, _between(first_known, F("accepted_at"))),
                "dispatch": _only_when(
                    measured, _between(F("accepted_at"), F("kpi_first_dispatch"))
                ),
                "resolve": _only_when(measured, _between(F("accepted_at"), F("resolved_at"))),
                "verify": _only_when(measured, _between(F("resolved_at"), F("closed_at"))),
            }
        )
    )


def task_rows(queryset: QuerySet[DispatchTask], key: Any) -> QuerySet[Any]:
    """One row per task of ``queryset``: the grouping ``key``, the flags and the two task
    intervals as durations (NULL where not counted)."""
    return queryset.order_by().values(
        **{
            KEY: key,
            "declined": _flag(Q(status=TaskStatus.DECLINED)),
            "expired": _flag(Q(status=TaskStatus.EXPIRED)),
            "cancelled": _flag(Q(status=TaskStatus.CANCELLED)),
            "respond": _only_when(
                Q(accepted_at__isnull=False),
                _between(F("dispatched_at"), F("accepted_at")),
            ),
            "arrive": _only_when(
                Q(on_scene_at__isnull=False),
                _between(F("dispatched_at"), F("on_scene_at")),
            ),
        }
    )


def clock_breached(now: datetime) -> Q:
    """Breached: marked, or running past its deadline, or paused when already late."""
    return (
        Q(breached_at__isnull=False)
        | Q(status=ClockStatus.RUNNING, due_at__lt=now)
        | Q(status=ClockStatus.PAUSED, due_at__lt=F("paused_at"))
    )


def clock_met() -> Q:
    """Met: stopped without a breach (``breached_at`` accounts for pauses)."""
    return Q(status=ClockStatus.STOPPED, breached_at__isnull=True)


def clock_rows(queryset: QuerySet[SlaClock], key: Any, *, now: datetime) -> QuerySet[Any]:
    """One row per counted clock of ``queryset`` (cancelled ones left out): the grouping
    ``key``, the kind and exactly one of the met/breached/pending flags set."""
    breached = clock_breached(now)
    # A stopped clock is met or breached by its breached_at alone; open ones not yet
    # breached are pending.
    pending = Q(status__in=OPEN_CLOCK_STATUSES) & ~breached
    return (
        queryset.exclude(status=ClockStatus.CANCELLED)
        .order_by()
        .values(
            **{
                KEY: key,
                CLOCK_KIND: F("kind"),
                "met": _flag(clock_met()),
                "breached": _flag(breached),
                "pending": _flag(pending),
            }
        )
    )
