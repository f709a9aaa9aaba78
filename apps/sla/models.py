"""SLA policies, clocks, pauses and the escalation log (docs/architecture.md section 4).

- :class:`SlaPolicy` (+ :class:`SlaLadderStep`): admin-editable data. A kind of obligation,
  optionally narrowed to a category, a severity and a loop, gives a duration (and an
  optional earlier *target*) and an escalation ladder.
- :class:`SlaClock`: one row per obligation with its ``due_at``. The sweeper acts on
  ``next_check_at`` (the next moment something is due: target, breach or a ladder step),
  through a partial index on running clocks; the database is the truth.
- :class:`SlaPause`: a paused interval with an approved reason; resuming shifts the
  deadlines by the time paused.
- :class:`Escalation`: the append-only log, one row per target miss, breach and ladder
  step of a clock, unique per (clock, kind, step): a step can run only once.

This app never imports the apps it times: a clock names its subject by type and id and
the owning apps register handlers (``apps.sla.registry``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel
from apps.core.scoping import restrict

# --- Vocabulary ------------------------------------------------------------------------------


class SlaKind(models.TextChoices):
    """The obligations that have clocks (docs/architecture.md section 4)."""

    REPORT_TRIAGE = "report_triage", _("Triage of a citizen report")
    DISPATCH = "dispatch", _("Dispatch of an accepted incident")
    TASK_ACCEPT = "task_accept", _("Acceptance of a dispatched task")
    TASK_ARRIVAL = "task_arrival", _("Arrival on scene")
    INCIDENT_RESOLUTION = "incident_resolution", _("Resolution of an incident")
    INCIDENT_VERIFICATION = "incident_verification", _("Verification before closure")
    WARNING_ACK = "warning_ack", _("Acknowledgement of a warning")
    HIDDEN_DANGER_RECTIFICATION = (
        "hidden_danger_rectification",
        _("Rectification of a hidden danger"),
    )


class Audience(models.TextChoices):
    """Whom a ladder step tells. The last three are found up the region tree of the
    clock; the first two depend on the subject (its owning app registers them)."""

    ASSIGNEE = "assignee", _("Assignee (the team on it)")
    TEAM_LEADER = "team_leader", _("Team leader")
    STREET_DUTY = "street_duty", _("Street duty officer")
    NEW_TOWN_COMMAND = "new_town_command", _("New-town command")
    NEW_AREA_COMMAND = "new_area_command", _("New-area command")


class Anchor(models.TextChoices):
    """What a ladder step's delay counts from."""

    TARGET = "target", _("Target time")
    LIMIT = "limit", _("Deadline (hard limit)")


class NextTeam(models.TextChoices):
    """After a task expires unanswered: who goes next."""

    NONE = "none", _("Nobody (the operator decides)")
    PROPOSE = "propose", _("Propose the next recommended team")
    DISPATCH = "dispatch", _("Dispatch the next recommended team")


class ClockStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    STOPPED = "stopped", _("Stopped")  # the obligation ended: met, late, or failed
    CANCELLED = "cancelled", _("Cancelled")  # the obligation went away (merged, withdrawn)


OPEN_CLOCK_STATUSES = (ClockStatus.RUNNING, ClockStatus.PAUSED)


class PauseReason(models.TextChoices):
    """The approved reasons a clock may stop ticking (anything else is not a pause)."""

    AWAITING_REPORTER = "awaiting_reporter", _("Waiting for the reporter (unreachable, no access)")
    SITE_INACCESSIBLE = "site_inaccessible", _("Site inaccessible (flooded, closed, cordoned off)")
    SAFETY_HOLD = "safety_hold", _("Safety hold ordered by the commander")
    AWAITING_THIRD_PARTY = "awaiting_third_party", _("Waiting for a utility or other third party")
    SEVERE_WEATHER = "severe_weather", _("Severe weather stops the work")


class EscalationKind(models.TextChoices):
    TARGET_MISSED = "target_missed", _("Target missed")
    BREACHED = "breached", _("Deadline breached")
    STEP = "step", _("Ladder step")


# --- Policies ----------------------------------------------------------------------------------


class SlaPolicy(BaseModel):
    """How long an obligation may take, and who is told when it does not happen.

    Blank ``category_code``/``severity``/``loop`` match anything; among the active policies
    of a kind that match, the most specific wins: a category match outranks a severity
    match, which outranks a loop match (``apps.sla.policies.policy_match``). A blank
    ``duration`` means the subject brings its own deadline (hidden-danger rectification).
    ``is_estimate`` flags figures not taken from a rule or plan: verify before relying on
    them.
    """

    Kind = SlaKind

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=32, choices=SlaKind.choices)
    category_code = models.CharField(
        _("category code"), max_length=8, blank=True, help_text=_("Blank: every category.")
    )
    severity = models.CharField(
        _("severity / level"),
        max_length=16,
        blank=True,
        help_text=_("Incident severity (I–IV) or warning level (red, orange…); blank: any."),
    )
    loop = models.CharField(_("loop"), max_length=8, blank=True, help_text=_("Blank: any loop."))
    target = models.DurationField(
        _("target"),
        null=True,
        blank=True,
        help_text=_("Optional earlier goal within the deadline, e.g. 20 min of a 60 min limit."),
    )
    duration = models.DurationField(
        _("deadline"),
        null=True,
        blank=True,
        help_text=_("Time allowed from the start; blank: the subject's own deadline."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_estimate = models.BooleanField(
        _("estimate"), default=False, help_text=_("The figures are estimates: verify them.")
    )
    source = models.TextField(_("source"), blank=True)

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        ordering = ["kind", "category_code", "severity", "loop", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=SlaKind.values), name="sla_slapolicy_kind_valid"
            ),
            # One active rule per combination, so "the most specific" is never a tie.
            models.UniqueConstraint(
                fields=["kind", "category_code", "severity", "loop"],
                condition=Q(is_active=True),
                name="sla_slapolicy_active_uniq",
            ),
            models.CheckConstraint(
                condition=Q(duration__isnull=True) | Q(duration__gt=timedelta(0)),
                name="sla_slapolicy_duration_pos",
            ),
            models.CheckConstraint(
                condition=Q(target__isnull=True)
                | (
                    Q(duration__isnull=False)
                    & Q(target__gt=timedelta(0))
                    & Q(target__lt=F("duration"))
                ),
                name="sla_slapolicy_target_in_limit",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SlaLadderStep(BaseModel):
    """One rung of a policy's escalation ladder: ``after`` past the target or the deadline,
    tell these people and do these things. Steps run in time order, each exactly once."""

    Anchor = Anchor
    NextTeam = NextTeam

    policy = models.ForeignKey(
        SlaPolicy, verbose_name=_("policy"), on_delete=models.CASCADE, related_name="steps"
    )
    anchor = models.CharField(
        _("counted from"), max_length=8, choices=Anchor.choices, default=Anchor.LIMIT
    )
    after = models.DurationField(_("after"), default=timedelta(0))
    notify_assignee = models.BooleanField(_("notify the assignee"), default=False)
    notify_team_leader = models.BooleanField(_("notify the team leader"), default=False)
    notify_street_duty = models.BooleanField(_("notify the street duty officer"), default=False)
    notify_new_town_command = models.BooleanField(_("notify new-town command"), default=False)
    notify_new_area_command = models.BooleanField(_("notify new-area command"), default=False)
    mark_supervised = models.BooleanField(_("mark supervised (督办)"), default=False)
    raise_loop = models.BooleanField(_("raise the loop"), default=False)
    expire_task = models.BooleanField(_("expire the task"), default=False)
    next_team = models.CharField(
        _("next team"), max_length=8, choices=NextTeam.choices, default=NextTeam.NONE
    )
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("ladder step")
        verbose_name_plural = _("ladder steps")
        ordering = ["policy_id", "anchor", "after", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(anchor__in=Anchor.values), name="sla_ladderstep_anchor_valid"
            ),
            models.CheckConstraint(
                condition=Q(next_team__in=NextTeam.values), name="sla_ladderstep_next_valid"
            ),
            models.CheckConstraint(
                condition=Q(after__gte=timedelta(0)), name="sla_ladderstep_after_pos"
            ),
            # Only an expired task has a "next team".
            models.CheckConstraint(
                condition=Q(next_team=NextTeam.NONE) | Q(expire_task=True),
                name="sla_ladderstep_next_needs_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_anchor_display()} + {self.after}"

    @property
    def audiences(self) -> list[str]:
        flags = {
            Audience.ASSIGNEE: self.notify_assignee,
            Audience.TEAM_LEADER: self.notify_team_leader,
            Audience.STREET_DUTY: self.notify_street_duty,
            Audience.NEW_TOWN_COMMAND: self.notify_new_town_command,
            Audience.NEW_AREA_COMMAND: self.notify_new_area_command,
        }
        return [str(audience) for audience, on in flags.items() if on]


# --- Clocks ------------------------------------------------------------------------------------


class SlaClockQuerySet(models.QuerySet["SlaClock"]):
    def visible_to(self, user: object) -> SlaClockQuerySet:
        return restrict(self, user, "region__path")

    def open(self) -> SlaClockQuerySet:
        return self.filter(status__in=OPEN_CLOCK_STATUSES)

    def for_subject(self, subject_type: str, subject_id: int) -> SlaClockQuerySet:
        return self.filter(subject_type=subject_type, subject_id=subject_id)

    def overdue(self, now: datetime) -> SlaClockQuerySet:
        """Open clocks past their deadline (the overdue board's "open and overdue", the
        dashboard's overdue list): breached, or about to be marked so by the sweeper."""
        return self.open().filter(due_at__lt=now)

    def most_urgent_first(self, now: datetime) -> SlaClockQuerySet:
        return self.order_by(*urgency_ordering(now))


def urgency_ordering(now: datetime) -> list[Any]:
    """The overdue board's order: open clocks first, the breached (or overdue) among them
    first, then by deadline."""
    open_first = Case(
        When(status__in=OPEN_CLOCK_STATUSES, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    breached_first = Case(
        When(breached_at__isnull=False, then=Value(0)),
        When(due_at__lt=now, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return [open_first.asc(), breached_first.asc(), "due_at", "id"]


class SlaClock(BaseModel):
    """One obligation with a deadline: ``kind`` on a subject (``subject_type`` + id).

    ``ladder`` is the policy's ladder as it was when the clock started (later edits of the
    policy do not move running clocks); ``step`` counts the ladder steps already run.
    ``next_check_at`` is when the sweeper next has something to do (NULL: nothing, or not
    running). Pauses shift ``target_at``, ``due_at`` and the steps by the time paused.
    ``breached_at`` is the moment the deadline passed (``due_at`` then), set by the sweeper
    or by a late stop; ``stopped_at <= due_at`` is compliance.
    """

    Kind = SlaKind
    Status = ClockStatus

    kind = models.CharField(_("kind"), max_length=32, choices=SlaKind.choices)
    subject_type = models.CharField(_("subject type"), max_length=24)
    subject_id = models.BigIntegerField(_("subject id"))
    subject_label = models.CharField(_("subject"), max_length=200, blank=True)
    region = models.ForeignKey(
        "regions.Region", verbose_name=_("region"), on_delete=models.PROTECT, related_name="+"
    )
    policy = models.ForeignKey(
        SlaPolicy,
        verbose_name=_("policy"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="clocks",
    )
    category_code = models.CharField(_("category code"), max_length=8, blank=True)
    severity = models.CharField(_("severity / level"), max_length=16, blank=True)
    loop = models.CharField(_("loop"), max_length=8, blank=True)
    is_drill = models.BooleanField(_("drill"), default=False)
    status = models.CharField(
        _("status"), max_length=10, choices=ClockStatus.choices, default=ClockStatus.RUNNING
    )
    started_at = models.DateTimeField(_("started at"))
    target_at = models.DateTimeField(_("target"), null=True, blank=True)
    due_at = models.DateTimeField(_("due at"))
    ladder = models.JSONField(_("ladder"), default=list, blank=True)
    step = models.PositiveSmallIntegerField(_("steps run"), default=0)
    next_check_at = models.DateTimeField(_("next check at"), null=True, blank=True)
    paused_at = models.DateTimeField(_("paused since"), null=True, blank=True)
    paused_total = models.DurationField(_("time paused"), default=timedelta(0))
    target_missed_at = models.DateTimeField(_("target missed at"), null=True, blank=True)
    breached_at = models.DateTimeField(_("breached at"), null=True, blank=True)
    stopped_at = models.DateTimeField(_("stopped at"), null=True, blank=True)
    stop_reason = models.CharField(_("stop reason"), max_length=100, blank=True)
    failures = models.PositiveSmallIntegerField(_("failed escalation attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    objects = SlaClockQuerySet.as_manager()

    class Meta:
        verbose_name = _("SLA clock")
        verbose_name_plural = _("SLA clocks")
        ordering = ["due_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=SlaKind.values), name="sla_slaclock_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ClockStatus.values), name="sla_slaclock_status_valid"
            ),
            # One open obligation of a kind per subject: a retried start is a no-op.
            models.UniqueConstraint(
                fields=["kind", "subject_type", "subject_id"],
                condition=Q(status__in=OPEN_CLOCK_STATUSES),
                name="sla_slaclock_one_open",
            ),
            models.CheckConstraint(
                condition=Q(due_at__gte=F("started_at")), name="sla_slaclock_due_after_start"
            ),
            # Paused iff paused_at is set; only running clocks have work for the sweeper.
            models.CheckConstraint(
                condition=(Q(status=ClockStatus.PAUSED) & Q(paused_at__isnull=False))
                | (~Q(status=ClockStatus.PAUSED) & Q(paused_at__isnull=True)),
                name="sla_slaclock_paused_at",
            ),
            models.CheckConstraint(
                condition=Q(status=ClockStatus.RUNNING) | Q(next_check_at__isnull=True),
                name="sla_slaclock_check_if_running",
            ),
        ]
        indexes = [
            # The sweeper: running clocks whose next check is due, earliest first.
            models.Index(
                fields=["next_check_at"],
                name="sla_clock_sweep_idx",
                condition=Q(status=ClockStatus.RUNNING),
            ),
            # The overdue board: open clocks by deadline.
            models.Index(
                fields=["due_at"],
                name="sla_clock_open_due_idx",
                condition=Q(status__in=OPEN_CLOCK_STATUSES),
            ),
            # Stop/cancel by subject, and a subject's clock history.
            models.Index(fields=["subject_type", "subject_id"], name="sla_clock_subject_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.subject_label or self.subject_id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_CLOCK_STATUSES


class SlaPause(BaseModel):
    """A paused interval of a clock, with the approved reason and who paused/resumed it."""

    Reason = PauseReason

    clock = models.ForeignKey(
        SlaClock, verbose_name=_("clock"), on_delete=models.CASCADE, related_name="pauses"
    )
    reason = models.CharField(_("reason"), max_length=24, choices=PauseReason.choices)
    note = models.TextField(_("note"), blank=True)
    paused_at = models.DateTimeField(_("paused at"))
    resumed_at = models.DateTimeField(_("resumed at"), null=True, blank=True)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("paused by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resumed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("resumed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("SLA pause")
        verbose_name_plural = _("SLA pauses")
        ordering = ["clock_id", "paused_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(reason__in=PauseReason.values), name="sla_slapause_reason_valid"
            ),
            models.UniqueConstraint(
                fields=["clock"], condition=Q(resumed_at__isnull=True), name="sla_slapause_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.clock_id} {self.get_reason_display()}"


class Escalation(models.Model):
    """One thing the sweeper did for a clock: a target miss, a breach or a ladder step.

    Append-only (conventions R11). ``scheduled_at`` is when it was due and ``at`` when it ran,
    so lateness is ``at - scheduled_at``. ``recipients`` are the user ids told;
    ``actions`` what was done (supervised, loop raised, task expired, team proposed…).
    Unique per (clock, kind, step): a step that ran once can never run again.
    """

    Kind = EscalationKind

    clock = models.ForeignKey(
        SlaClock, verbose_name=_("clock"), on_delete=models.CASCADE, related_name="escalations"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=EscalationKind.choices)
    step = models.PositiveSmallIntegerField(_("step"), default=0)
    scheduled_at = models.DateTimeField(_("due at"))
    at = models.DateTimeField(_("ran at"), db_index=True)
    region = models.ForeignKey(
        "regions.Region", verbose_name=_("region"), on_delete=models.PROTECT, related_name="+"
    )
    subject_type = models.CharField(_("subject type"), max_length=24)
    subject_id = models.BigIntegerField(_("subject id"))
    audiences = models.JSONField(_("audiences"), default=list, blank=True)
    recipients = models.JSONField(_("recipients"), default=list, blank=True)
    actions = models.JSONField(_("actions"), default=dict, blank=True)

    class Meta:
        verbose_name = _("escalation")
        verbose_name_plural = _("escalations")
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=EscalationKind.values), name="sla_escalation_kind_valid"
            ),
            models.UniqueConstraint(fields=["clock", "kind", "step"], name="sla_escalation_once"),
        ]
        indexes = [
            # A subject's escalations (incident detail, after-action review).
            models.Index(fields=["subject_type", "subject_id"], name="sla_escalation_subject_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.clock_id} {self.kind} {self.step}"

    @property
    def lateness(self) -> timedelta:
        return self.at - self.scheduled_at
