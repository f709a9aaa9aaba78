"""Departments, teams and responders; dispatch tasks and their timeline; positions.

DispatchTask (派单, one team on one incident), docs/architecture.md section 3:
dispatched → accepted | declined (reason) | expired → en_route → on_scene → completed →
verified | returned (重办, back to on_scene); cancelled from any live state.
Every transition stores its time and actor: these times are the "first-time" KPIs.

Positions: ``LastPosition`` is one row per responder (upserted, the live map);
``TrackChunk`` holds a responder's points for a time bucket as one compact row, so a day
of 5,000 responders pinging every 5 s is ~1.4 M rows, not 86 M (see ``tracks.py``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.core.models import BaseModel
from apps.core.scoping import restrict

# --- Organisation ------------------------------------------------------------------------


class DepartmentKind(models.TextChoices):
    EMERGENCY = "emergency", _("Emergency management")
    FIRE = "fire", _("Fire and rescue")
    POLICE = "police", _("Police")
    WATER = "water", _("Water affairs")
    GAS = "gas", _("Gas")
    POWER = "power", _("Power supply")
    URBAN = "urban", _("Urban management")
    HEALTH = "health", _("Health")
    HOUSING = "housing", _("Housing and construction")
    TRANSPORT = "transport", _("Transport")
    NATURAL_RESOURCES = "natural_resources", _("Natural resources")
    ENVIRONMENT = "environment", _("Ecology and environment")
    MARKET = "market", _("Market regulation")
    OTHER = "other", _("Other")


class Department(BaseModel):
    """A line department (应急、消防、公安、水务、燃气…) that owns teams and leads categories."""

    Kind = DepartmentKind

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_zh = models.CharField(_("Chinese name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=DepartmentKind.choices)
    region = models.ForeignKey(
        "regions.Region", verbose_name=_("region"), on_delete=models.PROTECT, related_name="+"
    )
    # Categories this department leads (the taxonomy's "lead department" column).
    categories = models.ManyToManyField(
        "incidents.Category", verbose_name=_("led categories"), blank=True, related_name="+"
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name_zh


class TeamKind(models.TextChoices):
    PROFESSIONAL = "professional", _("Professional rescue")
    FIRE = "fire", _("Fire brigade")
    MEDICAL = "medical", _("Medical")
    ENTERPRISE = "enterprise", _("Enterprise")
    VOLUNTEER = "volunteer", _("Social / volunteer")
    GRID = "grid", _("Grid workers")


class TeamStatus(models.TextChoices):
    AVAILABLE = "available", _("Available")
    DISPATCHED = "dispatched", _("Dispatched")
    BUSY = "busy", _("Busy on scene")
    OFF_DUTY = "off_duty", _("Off duty")
    OUT_OF_SERVICE = "out_of_service", _("Out of service")


class TeamQuerySet(models.QuerySet["Team"]):
    def visible_to(self, user: object) -> TeamQuerySet:
        return restrict(self, user, "home_region__path")


class Team(BaseModel):
    """A unit that takes tasks: capabilities are tags, equipment is counted."""

    Kind = TeamKind
    Status = TeamStatus

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    department = models.ForeignKey(
        Department,
        verbose_name=_("department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="teams",
    )
    kind = models.CharField(_("kind"), max_length=16, choices=TeamKind.choices)
    home_region = models.ForeignKey(
        "regions.Region",
        verbose_name=_("home region"),
        on_delete=models.PROTECT,
        related_name="teams",
    )
    # e.g. ["water_rescue", "pumping", "gas", "confined_space", "hazmat", "medical"]
    capabilities = models.JSONField(_("capabilities"), default=list, blank=True)
    # e.g. {"移动泵车": 2, "冲锋舟": 1}
    equipment = models.JSONField(_("equipment"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=TeamStatus.choices, default=TeamStatus.OFF_DUTY
    )
    # Last known position of the team (its leader's or any member's latest fix).
    last_lat = models.FloatField(_("last latitude"), null=True, blank=True)
    last_lng = models.FloatField(_("last longitude"), null=True, blank=True)
    last_position_at = models.DateTimeField(_("last position at"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    objects = TeamQuerySet.as_manager()

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=TeamKind.values), name="dispatch_team_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=TeamStatus.values), name="dispatch_team_status_valid"
            ),
        ]
        indexes = [
            # Recommendation prefilter: dispatchable teams inside a bounding box.
            models.Index(
                fields=["last_lat", "last_lng"],
                name="dispatch_team_position_idx",
                condition=Q(is_active=True),
            ),
            models.Index(fields=["status"], name="dispatch_team_status_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class TeamMember(BaseModel):
    """A responder in a team; ``is_leader`` marks the 队长."""

    team = models.ForeignKey(
        Team, verbose_name=_("team"), on_delete=models.CASCADE, related_name="members"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="team_memberships",
    )
    is_leader = models.BooleanField(_("leader"), default=False)
    on_duty = models.BooleanField(_("on duty"), default=False)
    on_duty_since = models.DateTimeField(_("on duty since"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("team member")
        verbose_name_plural = _("team members")
        ordering = ["team_id", "-is_leader", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="dispatch_member_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.team}"


class Shift(BaseModel):
    """A duty shift of a team, with the handover from the previous leader (交接班)."""

    team = models.ForeignKey(
        Team, verbose_name=_("team"), on_delete=models.CASCADE, related_name="shifts"
    )
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    leader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("shift leader"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    handover_note = models.TextField(_("handover note"), blank=True)
    handed_over_at = models.DateTimeField(_("handed over at"), null=True, blank=True)
    handed_over_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("handed over by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("shift")
        verbose_name_plural = _("shifts")
        ordering = ["team_id", "starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="dispatch_shift_order"
            ),
        ]
        indexes = [models.Index(fields=["team", "starts_at"], name="dispatch_shift_team_idx")]

    def __str__(self) -> str:
        return f"{self.team} {localtime(self.starts_at):%Y-%m-%d %H:%M}"


# --- Dispatch tasks ----------------------------------------------------------------------


class TaskStatus(models.TextChoices):
    DISPATCHED = "dispatched", _("Dispatched")
    # Context: a task is "taken" (接单), an incident "accepted" (受理); one msgid each.
    ACCEPTED = "accepted", pgettext_lazy("task status", "Accepted")
    DECLINED = "declined", _("Declined")
    EXPIRED = "expired", _("Expired")
    EN_ROUTE = "en_route", _("En route")
    ON_SCENE = "on_scene", _("On scene")
    COMPLETED = "completed", _("Completed")
    VERIFIED = "verified", _("Verified")
    RETURNED = "returned", _("Returned for rework")
    CANCELLED = "cancelled", _("Cancelled")


LIVE_TASK_STATUSES = (
    TaskStatus.DISPATCHED,
    TaskStatus.ACCEPTED,
    TaskStatus.EN_ROUTE,
    TaskStatus.ON_SCENE,
    TaskStatus.COMPLETED,
    TaskStatus.RETURNED,
)


class DispatchTaskQuerySet(models.QuerySet["DispatchTask"]):
    def visible_to(self, user: object) -> DispatchTaskQuerySet:
        return restrict(self, user, "incident__region__path")

    def live(self) -> DispatchTaskQuerySet:
        return self.filter(status__in=LIVE_TASK_STATUSES)


class DispatchTask(BaseModel):
    """One team sent to one incident (派单). The unit of response KPIs."""

    Status = TaskStatus

    incident = models.ForeignKey(
        "incidents.Incident",
        verbose_name=_("incident"),
        on_delete=models.PROTECT,
        related_name="tasks",
    )
    team = models.ForeignKey(
        Team, verbose_name=_("team"), on_delete=models.PROTECT, related_name="tasks"
    )
    status = models.CharField(
        _("status"), max_length=16, choices=TaskStatus.choices, default=TaskStatus.DISPATCHED
    )
    instructions = models.TextField(_("instructions"), blank=True)
    cross_department = models.BooleanField(_("cross-department"), default=False)
    dispatched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("dispatched by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The "first-time" KPI timestamps, one per transition.
    dispatched_at = models.DateTimeField(_("dispatched at"))
    delivered_at = models.DateTimeField(_("push delivered at"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("accepted by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    declined_at = models.DateTimeField(_("declined at"), null=True, blank=True)
    decline_reason = models.TextField(_("decline reason"), blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)
    en_route_at = models.DateTimeField(_("en route at"), null=True, blank=True)
    on_scene_at = models.DateTimeField(_("on scene at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    result = models.TextField(_("result"), blank=True)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    returned_at = models.DateTimeField(_("returned at"), null=True, blank=True)
    return_reason = models.TextField(_("return reason"), blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancel_reason = models.TextField(_("cancel reason"), blank=True)

    objects = DispatchTaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("dispatch task")
        verbose_name_plural = _("dispatch tasks")
        ordering = ["-dispatched_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=TaskStatus.values), name="dispatch_task_status_valid"
            ),
            # A team is on an incident at most once at a time.
            models.UniqueConstraint(
                fields=["incident", "team"],
                condition=Q(status__in=LIVE_TASK_STATUSES),
                name="dispatch_task_one_live_per_team",
            ),
        ]
        indexes = [
            # A team's live tasks (responder home screen, team load in recommendation).
            models.Index(
                fields=["team", "status"],
                name="dispatch_task_team_live_idx",
                condition=Q(status__in=LIVE_TASK_STATUSES),
            ),
            models.Index(fields=["incident", "status"], name="dispatch_task_incident_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.team} → {self.incident_id} ({self.status})"


class TaskEvent(models.Model):
    """One line of a task's timeline. Append-only (conventions R11)."""

    task = models.ForeignKey(
        DispatchTask, verbose_name=_("task"), on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(_("kind"), max_length=24)
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

    class Meta:
        verbose_name = _("task event")
        verbose_name_plural = _("task events")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["task", "at"], name="dispatch_taskevent_idx")]

    def __str__(self) -> str:
        return f"{self.task_id} {self.kind}"


# --- Incident room and command post --------------------------------------------------------


class RoomMessage(BaseModel):
    """A message in an incident's room (会商): everyone on the incident and the command post."""

    incident = models.ForeignKey(
        "incidents.Incident",
        verbose_name=_("incident"),
        on_delete=models.CASCADE,
        related_name="room_messages",
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("author"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    text = models.TextField(_("text"), blank=True)
    attachment = models.ForeignKey(
        "incidents.Attachment",
        verbose_name=_("photo"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("room message")
        verbose_name_plural = _("room messages")
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["incident", "created_at"], name="dispatch_room_msg_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id}: {self.text[:30]}"


class CommandPost(BaseModel):
    """An on-site command post (现场指挥部); while open it takes over dispatch."""

    incident = models.OneToOneField(
        "incidents.Incident",
        verbose_name=_("incident"),
        on_delete=models.PROTECT,
        related_name="command_post",
    )
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("commander"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("members"), blank=True, related_name="+"
    )
    lat = models.FloatField(_("latitude"))
    lng = models.FloatField(_("longitude"))
    address = models.CharField(_("address"), max_length=300, blank=True)
    established_at = models.DateTimeField(_("established at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("command post")
        verbose_name_plural = _("command posts")
        ordering = ["-established_at"]

    def __str__(self) -> str:
        return f"{self.incident_id} @ {self.address or (self.lat, self.lng)}"


# --- Positions ---------------------------------------------------------------------------


class LastPosition(models.Model):
    """A responder's latest fix: one row per user, upserted (the live map)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="last_position",
    )
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    lat = models.FloatField(_("latitude"))
    lng = models.FloatField(_("longitude"))
    accuracy_m = models.FloatField(_("accuracy (m)"), null=True, blank=True)
    recorded_at = models.DateTimeField(_("recorded at"))
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("last position")
        verbose_name_plural = _("last positions")
        ordering = ["-recorded_at"]

    def __str__(self) -> str:
        return f"{self.user_id} {self.lat:.5f},{self.lng:.5f}"


class TrackChunk(models.Model):
    """A responder's points for one time bucket, stored as one compact row.

    ``points`` is a JSON list of ``[t_ms_offset, lat_e6, lng_e6, accuracy_dm]`` sorted by
    time, offsets relative to ``bucket_start``; ``tracks.py`` merges late and duplicate
    points in. Retention deletes whole chunks; downsampling rewrites old ones thinner.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    bucket_start = models.DateTimeField(_("bucket start"))
    first_at = models.DateTimeField(_("first point at"))
    last_at = models.DateTimeField(_("last point at"))
    count = models.PositiveIntegerField(_("points"))
    points = models.JSONField(_("points"))
    downsampled = models.BooleanField(_("downsampled"), default=False)

    class Meta:
        verbose_name = _("track chunk")
        verbose_name_plural = _("track chunks")
        ordering = ["user_id", "bucket_start"]
        constraints = [
            models.UniqueConstraint(fields=["user", "bucket_start"], name="dispatch_track_uniq"),
        ]
        indexes = [
            # Replay: a team's chunks overlapping a window.
            models.Index(fields=["team", "bucket_start"], name="dispatch_track_team_idx"),
            # Retention sweep.
            models.Index(fields=["bucket_start"], name="dispatch_track_age_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.bucket_start:%Y-%m-%d %H:%M} ({self.count})"
