"""Early warnings (预警): chains of versions, targets, timeline, responsible persons, 叫应.

- :class:`WarningChain`: one logical warning (alert, its updates, its cancel). The chain
  row is the lock every service takes first (conventions R3); ``region`` is the lowest
  region covering every target (the admin's scope).
- :class:`WarningVersion`: one message of the chain — ``msg_type`` alert | update | cancel
  — with its content, targets, CAP-shaped identity (``identifier``, ``sender``, ``sent``,
  ``references``) and its own status. At most one version of a chain is published and at
  most one is open (draft or awaiting approval).
- :class:`WarningTarget`: a target region of a version; a target covers its subtree.
- :class:`WarningTimelineEntry`: the chain's append-only timeline (conventions R11).
- :class:`ResponsiblePerson`: the explicit 责任人 roster of a region, kept in the admin.
- :class:`Acknowledgement`: one 叫应 row per published alert/update version and person,
  timed by a ``warning_ack`` SLA clock.
- :class:`ApprovalRule`: who may approve, by level and the level of the highest target
  (admin data, seeded by a data migration; ``apps.early_warnings.approval``).

``docs/early-warnings.md`` describes the workflow.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.core.models import BaseModel
from apps.core.scoping import restrict
from apps.regions.models import RegionLevel


class WarningType(models.TextChoices):
    """What is warned of: the meteorological types of the national warning signals, then
    the other hazards the new area warns of."""

    RAINSTORM = "rainstorm", _("Rainstorm (暴雨)")
    SNOWSTORM = "snowstorm", _("Snowstorm (暴雪)")
    COLD_WAVE = "cold_wave", _("Cold wave (寒潮)")
    GALE = "gale", _("Gale (大风)")
    SANDSTORM = "sandstorm", _("Sandstorm (沙尘暴)")
    HEAT = "heat", _("Heat (高温)")
    DROUGHT = "drought", _("Drought (干旱)")
    LIGHTNING = "lightning", _("Lightning (雷电)")
    HAIL = "hail", _("Hail (冰雹)")
    FROST = "frost", _("Frost (霜冻)")
    FOG = "fog", _("Fog (大雾)")
    HAZE = "haze", _("Haze (霾)")
    ROAD_ICING = "road_icing", _("Road icing (道路结冰)")
    FLOOD = "flood", _("Flood (洪水)")
    WATERLOGGING = "waterlogging", _("Urban waterlogging (内涝)")
    GEOLOGICAL = "geological", _("Geological hazard (地质灾害)")
    LIFELINE = "lifeline", _("Urban lifeline (城市生命线)")
    PUBLIC_HEALTH = "public_health", _("Public health (公共卫生)")
    PRODUCTION_SAFETY = "production_safety", _("Production safety (安全生产)")
    SENSOR = "sensor", _("Monitoring alarm (监测预警)")
    OTHER = "other", _("Other")


METEOROLOGICAL_TYPES = frozenset(
    {
        WarningType.RAINSTORM,
        WarningType.SNOWSTORM,
        WarningType.COLD_WAVE,
        WarningType.GALE,
        WarningType.SANDSTORM,
        WarningType.HEAT,
        WarningType.DROUGHT,
        WarningType.LIGHTNING,
        WarningType.HAIL,
        WarningType.FROST,
        WarningType.FOG,
        WarningType.HAZE,
        WarningType.ROAD_ICING,
    }
)


class WarningLevel(models.TextChoices):
    """The four levels: blue Ⅳ (四级) is the lowest, red Ⅰ (一级) the highest."""

    BLUE = "blue", _("Blue (level IV, 四级)")
    YELLOW = "yellow", _("Yellow (level III, 三级)")
    ORANGE = "orange", _("Orange (level II, 二级)")
    RED = "red", _("Red (level I, 一级)")


LEVEL_RANK: dict[str, int] = {
    WarningLevel.BLUE: 1,
    WarningLevel.YELLOW: 2,
    WarningLevel.ORANGE: 3,
    WarningLevel.RED: 4,
}
# Levels whose pushes go out with high priority (wake a dozing phone at once).
URGENT_LEVELS = frozenset({WarningLevel.RED, WarningLevel.ORANGE})


class MsgType(models.TextChoices):
    """CAP ``msgType`` of a version."""

    ALERT = "alert", _("Alert")
    UPDATE = "update", _("Update")
    CANCEL = "cancel", _("Cancel")


class WarningStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PENDING_APPROVAL = "pending_approval", _("Awaiting approval")
    PUBLISHED = "published", pgettext_lazy("warning status", "Published")
    SUPERSEDED = "superseded", _("Superseded by an update")
    CANCELLED = "cancelled", pgettext_lazy("warning status", "Cancelled")
    EXPIRED = "expired", _("Expired")


OPEN_STATUSES = (WarningStatus.DRAFT, WarningStatus.PENDING_APPROVAL)
ENDED_STATUSES = (WarningStatus.CANCELLED, WarningStatus.EXPIRED)


class Source(models.TextChoices):
    ISSUED = "issued", _("Issued here")
    UPSTREAM = "upstream", _("Received from upstream")


class WarningChain(BaseModel):
    """One logical warning: its alert, updates and cancel are versions of it.

    ``region`` is the lowest region whose subtree holds every target of the chain's first
    version (the admin's scope). ``versions_count`` numbers the versions (``v1``, ``v2``…).
    """

    region = models.ForeignKey(
        "regions.Region", verbose_name=_("region"), on_delete=models.PROTECT, related_name="+"
    )
    source = models.CharField(
        _("source"), max_length=10, choices=Source.choices, default=Source.ISSUED
    )
    versions_count = models.PositiveIntegerField(_("versions"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("warning")
        verbose_name_plural = _("warnings")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(source__in=Source.values), name="ew_chain_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"EW-{self.pk}"


class WarningVersionQuerySet(models.QuerySet["WarningVersion"]):
    def published(self) -> WarningVersionQuerySet:
        return self.filter(status=WarningStatus.PUBLISHED)

    def in_chain_scope(self, user: object) -> WarningVersionQuerySet:
        """Versions whose chain's region lies in the user's scope (admin)."""
        return restrict(self, user, "chain__region__path")


class WarningVersion(BaseModel):
    """One message of a chain: an alert, an update or a cancel, with its own status.

    ``identifier`` (unique, set at publication): ``CN-XIXIAN-EW-<yyyymmdd>-<chain>-v<n>``,
    the date of ``sent`` in Asia/Shanghai (``apps.early_warnings.services.identifier_for``).
    ``references`` lists the earlier published versions of the chain as
    ``{"sender", "identifier", "sent"}`` (CAP ``references``). A version received from
    upstream keeps the upstream sender, identifier and raw message.
    """

    Type = WarningType
    Level = WarningLevel
    MsgType = MsgType
    Status = WarningStatus
    Source = Source

    chain = models.ForeignKey(
        WarningChain, verbose_name=_("warning"), on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField(_("version"))
    msg_type = models.CharField(
        _("message type"), max_length=8, choices=MsgType.choices, default=MsgType.ALERT
    )
    status = models.CharField(
        _("status"), max_length=20, choices=WarningStatus.choices, default=WarningStatus.DRAFT
    )
    warning_type = models.CharField(_("type"), max_length=20, choices=WarningType.choices)
    level = models.CharField(_("level"), max_length=8, choices=WarningLevel.choices)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"))
    instruction = models.TextField(_("instruction"), blank=True)
    title_en = models.CharField(_("English title"), max_length=200, blank=True)
    description_en = models.TextField(_("English description"), blank=True)
    instruction_en = models.TextField(_("English instruction"), blank=True)
    onset = models.DateTimeField(_("onset"))
    expires = models.DateTimeField(_("expires"))
    regions = models.ManyToManyField(
        "regions.Region",
        through="WarningTarget",
        verbose_name=_("target regions"),
        related_name="+",
    )
    incident = models.ForeignKey(
        "incidents.Incident",
        verbose_name=_("incident"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    sensor_alarm_ref = models.CharField(
        _("sensor alarm"),
        max_length=64,
        blank=True,
        help_text=_("The monitoring alarm this warning comes from (an id, for now)."),
    )
    # CAP identity (set at publication; references: the chain's earlier published versions)
    identifier = models.CharField(
        _("identifier"), max_length=120, null=True, blank=True, unique=True
    )
    sender = models.CharField(_("sender"), max_length=120, blank=True)
    sent = models.DateTimeField(_("sent"), null=True, blank=True)
    references = models.JSONField(_("references"), default=list, blank=True)
    # Received from upstream
    source = models.CharField(
        _("source"), max_length=10, choices=Source.choices, default=Source.ISSUED
    )
    upstream_sender = models.CharField(_("upstream sender"), max_length=200, blank=True)
    upstream_identifier = models.CharField(_("upstream identifier"), max_length=200, blank=True)
    upstream_raw = models.TextField(_("raw upstream message"), blank=True)
    # Workflow
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("author"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    rejection_reason = models.TextField(_("reason for refusal"), blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    objects = WarningVersionQuerySet.as_manager()

    class Meta:
        verbose_name = _("warning version")
        verbose_name_plural = _("warning versions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "number"], name="ew_version_number_uniq"),
            # One live message per warning, and one in the works.
            models.UniqueConstraint(
                fields=["chain"],
                condition=Q(status=WarningStatus.PUBLISHED),
                name="ew_version_one_published",
            ),
            models.UniqueConstraint(
                fields=["chain"],
                condition=Q(status__in=OPEN_STATUSES),
                name="ew_version_one_open",
            ),
            models.CheckConstraint(
                condition=Q(msg_type__in=MsgType.values), name="ew_version_msg_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=WarningStatus.values), name="ew_version_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(warning_type__in=WarningType.values), name="ew_version_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(level__in=WarningLevel.values), name="ew_version_level_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=Source.values), name="ew_version_source_valid"
            ),
            models.CheckConstraint(
                condition=Q(expires__gt=F("onset")), name="ew_version_expires_after_onset"
            ),
            # Whatever left draft has been sent: identity is set with publication.
            models.CheckConstraint(
                condition=Q(status__in=OPEN_STATUSES)
                | (Q(identifier__isnull=False) & Q(sent__isnull=False)),
                name="ew_version_sent_identified",
            ),
        ]
        indexes = [
            # The expiry sweep and the citizen's active list: live versions by expiry.
            models.Index(
                fields=["expires"],
                name="ew_version_live_idx",
                condition=Q(status=WarningStatus.PUBLISHED),
            ),
            # History: ended versions, newest first.
            models.Index(
                fields=["-ended_at"],
                name="ew_version_ended_idx",
                condition=Q(status__in=ENDED_STATUSES),
            ),
            # The importer finds a chain by the upstream identifiers it references.
            models.Index(fields=["upstream_identifier"], name="ew_version_upstream_idx"),
        ]

    def __str__(self) -> str:
        return self.identifier or f"EW-{self.chain_id} v{self.number} ({self.status})"

    @property
    def is_urgent(self) -> bool:
        return self.level in URGENT_LEVELS


class WarningTarget(models.Model):
    """A target region of a version; the warning holds for the region's whole subtree."""

    version = models.ForeignKey(
        WarningVersion, verbose_name=_("version"), on_delete=models.CASCADE, related_name="targets"
    )
    region = models.ForeignKey(
        "regions.Region", verbose_name=_("region"), on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("target region")
        verbose_name_plural = _("target regions")
        ordering = ["version_id", "region__path"]
        constraints = [
            models.UniqueConstraint(fields=["version", "region"], name="ew_target_uniq"),
        ]
        indexes = [
            # Active warnings at a place: targets by region.
            models.Index(fields=["region"], name="ew_target_region_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id} → {self.region_id}"


class TimelineKind(models.TextChoices):
    CREATED = "created", _("Draft created")
    EDITED = "edited", _("Draft edited")
    SUBMITTED = "submitted", _("Submitted for approval")
    APPROVED = "approved", _("Approved and published")
    REJECTED = "rejected", _("Refused, back to draft")
    UPDATED = "updated", _("Update composed")
    CANCEL_REQUESTED = "cancel_requested", _("Cancel composed")
    SUPERSEDED = "superseded", _("Superseded")
    CANCELLED = "cancelled", pgettext_lazy("warning timeline", "Cancelled")
    EXPIRED = "expired", _("Expired")
    RECEIVED = "received", _("Received from upstream")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged (叫应)")
    ACK_ESCALATED = "ack_escalated", _("Acknowledgement overdue")


class WarningTimelineEntry(models.Model):
    """What happened to a chain: who, when, what, why. Append-only (conventions R11)."""

    Kind = TimelineKind

    chain = models.ForeignKey(
        WarningChain, verbose_name=_("warning"), on_delete=models.CASCADE, related_name="timeline"
    )
    version = models.ForeignKey(
        WarningVersion,
        verbose_name=_("version"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    kind = models.CharField(_("kind"), max_length=20, choices=TimelineKind.choices)
    at = models.DateTimeField(_("at"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reason = models.TextField(_("reason"), blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("warning timeline entry")
        verbose_name_plural = _("warning timeline")
        ordering = ["chain_id", "at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=TimelineKind.values), name="ew_timeline_kind_valid"
            ),
        ]
        indexes = [models.Index(fields=["chain", "at"], name="ew_timeline_chain_idx")]

    def __str__(self) -> str:
        return f"{self.chain_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"


class PersonRole(models.TextChoices):
    """The label of a responsible person (责任人) on the roster."""

    DUTY_OFFICER = "duty_officer", _("Duty officer (值班员)")
    LEADER = "leader", _("Leader in charge (分管领导)")
    TEAM_LEADER = "team_leader", _("Team leader (队长)")
    GRID_WORKER = "grid_worker", _("Grid worker (网格员)")
    OTHER = "other", _("Other")


class ResponsiblePersonQuerySet(models.QuerySet["ResponsiblePerson"]):
    def visible_to(self, user: object) -> ResponsiblePersonQuerySet:
        return restrict(self, user, "region__path")


class ResponsiblePerson(BaseModel):
    """A person who must answer (叫应) the warnings of ``region``'s subtree.

    The explicit roster, kept in the admin through the services; by default the active
    duty officers, team leaders and grid workers of a target subtree are asked too
    (``EARLY_WARNINGS_ROLE_HOLDERS_ANSWER``, ``docs/early-warnings.md``).
    """

    Role = PersonRole

    region = models.ForeignKey(
        "regions.Region", verbose_name=_("region"), on_delete=models.PROTECT, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("person"),
        on_delete=models.CASCADE,
        related_name="warning_duties",
    )
    role = models.CharField(
        _("role"), max_length=16, choices=PersonRole.choices, default=PersonRole.DUTY_OFFICER
    )
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    objects = ResponsiblePersonQuerySet.as_manager()

    class Meta:
        verbose_name = _("responsible person")
        verbose_name_plural = _("responsible persons")
        ordering = ["region__path", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["region", "user"], name="ew_person_uniq"),
            models.CheckConstraint(
                condition=Q(role__in=PersonRole.values), name="ew_person_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.region} · {self.get_role_display()} · {self.user}"


class AckChannel(models.TextChoices):
    APP = "app", _("App")
    SMS = "sms", _("SMS reply")
    PHONE = "phone", _("Phone call")
    ADMIN = "admin", _("Recorded by the command centre")


class AcknowledgementQuerySet(models.QuerySet["Acknowledgement"]):
    def pending(self) -> AcknowledgementQuerySet:
        return self.filter(acked_at__isnull=True, version__status=WarningStatus.PUBLISHED)


class Acknowledgement(BaseModel):
    """叫应: ``user`` must answer ``version`` (a published alert or update).

    One row per (version, person): an update starts a new round of answers, a cancel asks
    none. ``region`` and ``role`` are where and as what the person was asked (the roster
    row, or their membership); ``acked_at``/``channel`` say when and how they answered.
    A ``warning_ack`` SLA clock times each row (subject ``warning_ack``, id = this row).
    """

    Channel = AckChannel

    version = models.ForeignKey(
        WarningVersion, verbose_name=_("version"), on_delete=models.CASCADE, related_name="acks"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("person"),
        on_delete=models.CASCADE,
        related_name="warning_acks",
    )
    region = models.ForeignKey(
        "regions.Region", verbose_name=_("region"), on_delete=models.PROTECT, related_name="+"
    )
    role = models.CharField(_("role"), max_length=16, choices=PersonRole.choices)
    acked_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    channel = models.CharField(_("channel"), max_length=8, choices=AckChannel.choices, blank=True)

    objects = AcknowledgementQuerySet.as_manager()

    class Meta:
        verbose_name = _("acknowledgement")
        verbose_name_plural = _("acknowledgements")
        ordering = ["version_id", "region__path", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "user"], name="ew_ack_uniq"),
            models.CheckConstraint(
                condition=Q(role__in=PersonRole.values), name="ew_ack_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel="") | Q(channel__in=AckChannel.values),
                name="ew_ack_channel_valid",
            ),
            models.CheckConstraint(
                condition=(Q(acked_at__isnull=True) & Q(channel=""))
                | (Q(acked_at__isnull=False) & ~Q(channel="")),
                name="ew_ack_channel_iff_acked",
            ),
        ]
        indexes = [
            # My pending acknowledgements.
            models.Index(
                fields=["user"], name="ew_ack_pending_idx", condition=Q(acked_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version_id} · {self.user_id} · {self.acked_at or '—'}"


class ApproverRole(models.TextChoices):
    OPERATOR = "operator", _("Operator / duty officer (or above)")
    COMMANDER = "commander", _("Commander")


class ApprovalRule(BaseModel):
    """Who may approve a warning of ``level`` whose highest target sits at ``target_level``:
    someone holding ``approver_role`` (and the ``warning.approve`` capability) in a region
    at ``approver_level`` or above that covers every target. ``allow_self_approval``: the
    author may approve their own warning. Seeded by a data migration; edited in the admin;
    read by :func:`apps.early_warnings.approval.approver_rule_for` only."""

    level = models.CharField(_("level"), max_length=8, choices=WarningLevel.choices)
    target_level = models.CharField(
        _("level of the highest target"), max_length=16, choices=RegionLevel.choices
    )
    approver_role = models.CharField(
        _("approver role"), max_length=16, choices=ApproverRole.choices
    )
    approver_level = models.CharField(
        _("approver sits at"), max_length=16, choices=RegionLevel.choices
    )
    allow_self_approval = models.BooleanField(_("the author may approve"), default=False)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("approval rule")
        verbose_name_plural = _("approval rules")
        ordering = ["level", "target_level"]
        constraints = [
            models.UniqueConstraint(fields=["level", "target_level"], name="ew_rule_uniq"),
            models.CheckConstraint(
                condition=Q(level__in=WarningLevel.values), name="ew_rule_level_valid"
            ),
            models.CheckConstraint(
                condition=Q(target_level__in=RegionLevel.values), name="ew_rule_target_valid"
            ),
            models.CheckConstraint(
                condition=Q(approver_level__in=RegionLevel.values),
                name="ew_rule_approver_level_valid",
            ),
            models.CheckConstraint(
                condition=Q(approver_role__in=ApproverRole.values), name="ew_rule_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_level_display()} · {self.get_target_level_display()}"
