"""Incidents, their category taxonomy and append-only timeline; citizen reports and photos.

State machines (docs/architecture.md section 3):

- Incident: reported → accepted → in_progress → resolved → closed; side exits rejected
  and merged; closed → in_progress on failed verification (reopen).
- Report (citizen): submitted → accepted (linked to an incident) | rejected (reason shown
  to the citizen) | duplicate (linked to the existing incident).

Every transition goes through one service in ``services.py``; models hold no behaviour.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel
from apps.core.scoping import restrict

# --- Taxonomy ----------------------------------------------------------------------------


class IncidentClass(models.TextChoices):
    """The four classes of 《国家突发事件总体应急预案》, plus other."""

    NATURAL = "natural", _("Natural disaster")
    ACCIDENT = "accident", _("Accident and disaster")
    PUBLIC_HEALTH = "public_health", _("Public health event")
    SOCIAL_SECURITY = "social_security", _("Social security event")
    OTHER = "other", _("Other")


class Category(BaseModel):
    """An incident category (app-internal code such as ``N02`` 城市内涝).

    ``extra_fields`` declares the category's own report fields, e.g. waterlogging depth:
    ``[{"name": "waterlogging_depth_cm", "type": "integer", "unit": "cm", "min": 0,
    "max": 1000, "label_zh": "积水深度", "label_en": "Water depth", "required": false}]``.
    ``related_codes`` lists categories whose open incidents count as possible duplicates.
    """

    Class = IncidentClass

    code = models.CharField(_("code"), max_length=8, unique=True)
    incident_class = models.CharField(_("class"), max_length=16, choices=IncidentClass.choices)
    name_zh = models.CharField(_("Chinese name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100)
    lead_department = models.CharField(_("lead department"), max_length=100, blank=True)
    gbt35561_code = models.CharField(
        _("GB/T 35561 code"),
        max_length=16,
        blank=True,
        help_text=_("National classification code; to be filled in when verified."),
    )
    extra_fields = models.JSONField(_("extra fields"), default=list, blank=True)
    related_codes = models.JSONField(_("related categories"), default=list, blank=True)
    citizen_reportable = models.BooleanField(_("citizens may report"), default=True)
    sort_order = models.PositiveSmallIntegerField(_("sort order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["sort_order", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(incident_class__in=IncidentClass.values),
                name="incidents_category_class_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name_zh}"


# --- Incident ----------------------------------------------------------------------------


class IncidentStatus(models.TextChoices):
    REPORTED = "reported", _("Reported")
    ACCEPTED = "accepted", _("Accepted")
    IN_PROGRESS = "in_progress", _("In progress")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")
    REJECTED = "rejected", _("Rejected")
    MERGED = "merged", _("Merged")


OPEN_STATUSES = (
    IncidentStatus.REPORTED,
    IncidentStatus.ACCEPTED,
    IncidentStatus.IN_PROGRESS,
    IncidentStatus.RESOLVED,
)


class Severity(models.TextChoices):
    UNCLASSIFIED = "unclassified", _("Unclassified")
    IV = "IV", _("Ⅳ General")
    III = "III", _("Ⅲ Major")
    II = "II", _("Ⅱ Serious")
    I = "I", _("Ⅰ Especially serious")  # noqa: E741 - the official grade name


class Loop(models.TextChoices):
    SMALL = "small", _("Small loop (within the street)")
    MEDIUM = "medium", _("Medium loop (cross-department)")
    LARGE = "large", _("Large loop (district-wide)")


class Source(models.TextChoices):
    CITIZEN_REPORT = "citizen_report", _("Citizen report")
    HOTLINE = "hotline", _("Hotline transfer")
    SENSOR_ALARM = "sensor_alarm", _("Sensor alarm")
    PATROL = "patrol", _("Patrol")
    OPERATOR = "operator", _("Operator")


class Priority(models.IntegerChoices):
    NORMAL = 0, _("Normal")
    URGENT = 1, _("Urgent")
    SOS = 2, _("SOS")


class IncidentQuerySet(models.QuerySet["Incident"]):
    def visible_to(self, user: object) -> IncidentQuerySet:
        return restrict(self, user, "region__path")

    def open(self) -> IncidentQuerySet:
        return self.filter(status__in=OPEN_STATUSES)


class Incident(BaseModel):
    """An emergency in a street: the unit of command, dispatch and SLA tracking."""

    Status = IncidentStatus
    Severity = Severity
    Loop = Loop
    Source = Source
    Priority = Priority

    number = models.CharField(_("number"), max_length=24, unique=True)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    category = models.ForeignKey(
        Category, verbose_name=_("category"), on_delete=models.PROTECT, related_name="incidents"
    )
    status = models.CharField(
        _("status"), max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.REPORTED
    )
    severity = models.CharField(
        _("severity"), max_length=16, choices=Severity.choices, default=Severity.UNCLASSIFIED
    )
    loop = models.CharField(_("loop"), max_length=8, choices=Loop.choices, default=Loop.SMALL)
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority.choices, default=Priority.NORMAL
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    region = models.ForeignKey(
        "regions.Region",
        verbose_name=_("region"),
        on_delete=models.PROTECT,
        related_name="incidents",
    )
    lat = models.FloatField(_("latitude"))
    lng = models.FloatField(_("longitude"))
    address = models.CharField(_("address"), max_length=300, blank=True)
    reporter_name = models.CharField(_("reporter name"), max_length=100, blank=True)
    reporter_phone = models.CharField(_("reporter phone"), max_length=20, blank=True)
    extra = models.JSONField(_("category fields"), default=dict, blank=True)
    # Latest figures; every revision is also an IncidentEvent(kind=casualties_revised).
    deaths = models.PositiveIntegerField(_("deaths"), default=0)
    injured = models.PositiveIntegerField(_("injured"), default=0)
    missing = models.PositiveIntegerField(_("missing"), default=0)
    trapped = models.PositiveIntegerField(_("trapped"), default=0)
    is_drill = models.BooleanField(_("drill"), default=False)
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="merged_incidents",
    )
    rejection_reason = models.TextField(_("rejection reason"), blank=True)
    resolution = models.TextField(_("resolution"), blank=True)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    in_progress_at = models.DateTimeField(_("in progress since"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # 督办: set by the first supervision (an SLA ladder step or an operator); each one is
    # also an IncidentEvent(kind=supervised).
    supervised_at = models.DateTimeField(_("supervised since (督办)"), null=True, blank=True)
    # Where command sits: NULL = the incident's own street (small loop); raising the loop
    # moves it to the new town (medium) and the new area (large).
    command_region = models.ForeignKey(
        "regions.Region",
        verbose_name=_("command region"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = IncidentQuerySet.as_manager()

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=IncidentStatus.values),
                name="incidents_incident_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(severity__in=Severity.values), name="incidents_incident_sev_valid"
            ),
            models.CheckConstraint(
                condition=Q(loop__in=Loop.values), name="incidents_incident_loop_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=Source.values), name="incidents_incident_source_valid"
            ),
            models.CheckConstraint(
                condition=(Q(status=IncidentStatus.MERGED) & Q(merged_into__isnull=False))
                | (~Q(status=IncidentStatus.MERGED) & Q(merged_into__isnull=True)),
                name="incidents_incident_merged_has_target",
            ),
        ]
        indexes = [
            # Duty board and duplicate search: open incidents, newest first.
            models.Index(
                fields=["-created_at"],
                name="incidents_incident_open_idx",
                condition=Q(status__in=OPEN_STATUSES),
            ),
            # Offline sync: changes since a cursor.
            models.Index(fields=["updated_at", "id"], name="incidents_incident_sync_idx"),
            models.Index(fields=["region", "status"], name="incidents_incident_region_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"


class IncidentEventKind(models.TextChoices):
    CREATED = "created", _("Created")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")
    STARTED = "in_progress", _("Handling started")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed (verified)")
    REOPENED = "reopened", _("Reopened")
    MERGED = "merged", _("Merged into another incident")
    DUPLICATE_MERGED = "duplicate_merged", _("A duplicate was merged in")
    CLASSIFIED = "classified", _("Classified")
    CASUALTIES_REVISED = "casualties_revised", _("Casualty figures revised")
    REPORT_LINKED = "report_linked", _("Citizen report linked")
    NOTE = "note", _("Note")
    RATED = "rated", _("Rated by the reporter")
    REOPEN_REQUESTED = "reopen_requested", _("Reopen requested by the reporter")
    # Dispatch (apps.dispatch writes these; one per task transition, see task_transitions).
    TASK_DISPATCHED = "task_dispatched", _("Team dispatched")
    TASK_ACCEPTED = "task_accepted", _("Task accepted")
    TASK_DECLINED = "task_declined", _("Task declined")
    TASK_EXPIRED = "task_expired", _("Task expired unanswered")
    TASK_EN_ROUTE = "task_en_route", _("Team en route")
    TASK_ON_SCENE = "task_on_scene", _("Team on scene")
    TASK_COMPLETED = "task_completed", _("Task completed")
    TASK_VERIFIED = "task_verified", _("Task verified")
    TASK_RETURNED = "task_returned", _("Task returned for rework")
    TASK_CANCELLED = "task_cancelled", _("Task cancelled")
    TASK_REASSIGNED = "task_reassigned", _("Task reassigned to another team")
    TASK_INSTRUCTIONS = "task_instructions", _("Task instructions added")
    COMMAND_POST_ESTABLISHED = "command_post_established", _("On-site command post set up")
    COMMAND_POST_CLOSED = "command_post_closed", _("On-site command post closed")
    COMMAND_POST_MEMBERS = "command_post_members", _("Command post members changed")
    COMMAND_POST_HANDED_OVER = "command_post_handed_over", _("Command post handed over")
    # SLA (apps.sla escalations, written through apps.incidents.services.sla).
    SUPERVISED = "supervised", _("Marked supervised (督办)")
    LOOP_RAISED = "loop_raised", _("Loop raised, command moved up")
    SLA_TARGET_MISSED = "sla_target_missed", _("Time target missed")
    SLA_BREACHED = "sla_breached", _("Deadline breached")
    SLA_ESCALATED = "sla_escalated", _("Escalated")
    SLA_PAUSED = "sla_paused", _("Clock paused")
    SLA_RESUMED = "sla_resumed", _("Clock resumed")
    VERIFICATION_CONFIRMED = "verification_confirmed", _("Closure confirmed after review")


class IncidentEvent(models.Model):
    """One line of an incident's timeline: who did what, when. Append-only (conventions R11)."""

    Kind = IncidentEventKind

    incident = models.ForeignKey(
        Incident, verbose_name=_("incident"), on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(_("kind"), max_length=24, choices=IncidentEventKind.choices)
    at = models.DateTimeField(_("at"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    data = models.JSONField(_("data"), default=dict, blank=True)
    # Shown to the reporting citizen (status changes, rejection reason), not internal notes.
    public = models.BooleanField(_("public"), default=False)

    class Meta:
        verbose_name = _("incident event")
        verbose_name_plural = _("incident events")
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["incident", "at"], name="incidents_event_timeline_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.kind} @ {localtime(self.at):%Y-%m-%d %H:%M:%S}"


# --- Citizen reports ---------------------------------------------------------------------


class ReportStatus(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")
    DUPLICATE = "duplicate", _("Duplicate")


class PublicStatus(models.TextChoices):
    """What the reporting citizen sees (and Open311's open/closed maps from)."""

    RECEIVED = "received", _("Received")
    IN_PROGRESS = "in_progress", _("In progress")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")
    REJECTED = "rejected", _("Not accepted")


class Channel(models.TextChoices):
    APP = "app", _("Mobile app")
    OPEN311 = "open311", _("Open311")
    HOTLINE = "hotline", _("Hotline")
    WEB = "web", _("Web")


class ReportQuerySet(models.QuerySet["Report"]):
    def visible_to(self, user: object) -> ReportQuerySet:
        return restrict(self, user, "region__path")

    def pending_triage(self) -> ReportQuerySet:
        return self.filter(status=ReportStatus.SUBMITTED)


class Report(BaseModel):
    """A citizen's hazard or emergency report; triage turns it into (part of) an incident.

    ``token`` is the tracking token an anonymous citizen follows the report by; it is
    a capability, so it is long and random and never shown to other citizens.
    """

    Status = ReportStatus
    Channel = Channel

    token = models.CharField(_("tracking token"), max_length=43, unique=True)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reporter"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports",
    )
    phone = models.CharField(_("contact phone"), max_length=20, blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    category = models.ForeignKey(
        Category, verbose_name=_("category"), on_delete=models.PROTECT, related_name="reports"
    )
    text = models.TextField(_("text"), blank=True)
    lat = models.FloatField(_("latitude"))
    lng = models.FloatField(_("longitude"))
    address = models.CharField(_("address"), max_length=300, blank=True)
    region = models.ForeignKey(
        "regions.Region", verbose_name=_("region"), on_delete=models.PROTECT, related_name="+"
    )
    extra = models.JSONField(_("category fields"), default=dict, blank=True)
    is_sos = models.BooleanField(_("SOS"), default=False)
    status = models.CharField(
        _("status"), max_length=10, choices=ReportStatus.choices, default=ReportStatus.SUBMITTED
    )
    incident = models.ForeignKey(
        Incident,
        verbose_name=_("incident"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reports",
    )
    rejection_reason = models.TextField(_("rejection reason"), blank=True)
    triaged_at = models.DateTimeField(_("triaged at"), null=True, blank=True)
    triaged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("triaged by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    rating = models.PositiveSmallIntegerField(_("rating"), null=True, blank=True)
    rating_comment = models.TextField(_("rating comment"), blank=True)
    rated_at = models.DateTimeField(_("rated at"), null=True, blank=True)
    reopen_requested_at = models.DateTimeField(_("reopen requested at"), null=True, blank=True)
    reopen_reason = models.TextField(_("reopen reason"), blank=True)
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    device_id = models.CharField(_("device id"), max_length=64, blank=True)

    objects = ReportQuerySet.as_manager()

    class Meta:
        verbose_name = _("citizen report")
        verbose_name_plural = _("citizen reports")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ReportStatus.values), name="incidents_report_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="incidents_report_rating_range",
            ),
            # accepted and duplicate reports always point at their incident
            models.CheckConstraint(
                condition=Q(status__in=[ReportStatus.SUBMITTED, ReportStatus.REJECTED])
                | Q(incident__isnull=False),
                name="incidents_report_linked",
            ),
        ]
        indexes = [
            # Triage queue: submitted reports, SOS first then oldest first.
            models.Index(
                fields=["-is_sos", "created_at"],
                name="incidents_report_triage_idx",
                condition=Q(status=ReportStatus.SUBMITTED),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category.code} @ {localtime(self.created_at):%Y-%m-%d %H:%M}"


class Attachment(BaseModel):
    """A photo on a report or an incident.

    ``file`` is the sanitised image (re-encoded, all EXIF removed) — the only version
    anyone can fetch; the GPS position found in the original EXIF is kept in
    ``exif_lat``/``exif_lng`` for staff only. ``thumbnail`` is a small JPEG.
    """

    report = models.ForeignKey(
        Report,
        verbose_name=_("report"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="attachments",
    )
    incident = models.ForeignKey(
        Incident,
        verbose_name=_("incident"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="attachments",
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    file = models.FileField(_("file"), upload_to="attachments/%Y/%m/%d/")
    thumbnail = models.FileField(_("thumbnail"), upload_to="attachments/thumbs/%Y/%m/%d/")
    content_type = models.CharField(_("content type"), max_length=40)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    size = models.PositiveIntegerField(_("size in bytes"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    exif_lat = models.FloatField(_("EXIF latitude"), null=True, blank=True)
    exif_lng = models.FloatField(_("EXIF longitude"), null=True, blank=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(report__isnull=False) | Q(incident__isnull=False),
                name="incidents_attachment_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.content_type} {self.width}x{self.height}"
