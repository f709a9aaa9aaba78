"""The push/SMS outbox and per-user notification preferences.

A :class:`Notification` row is one message to one recipient (a user's devices, or an FCM
topic) over one channel. Rows are written in the caller's transaction, so a rolled-back
change never pushes anything, and delivered by Celery afterwards; the row, not the
broker, is the truth about what still has to go out (``status`` + ``next_attempt_at``),
so a lost broker message or a killed worker only delays a push, never drops it.

Lifecycle::

    pending ─claim─▶ sending ─▶ sent | failed | skipped
       ▲                │
       └──── retry ◀────┘  (429 / 5xx / network: exponential backoff with jitter)
    pending ─▶ cancelled  (the reason for the message went away first)

Messages that need a receipt (tasks) carry ``ack_deadline``: the app acknowledges, or a
sweep sends one SMS fallback (a second row, ``channel=sms``, deduplicated by key).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.core.models import BaseModel


class Channel(models.TextChoices):
    PUSH = "push", _("Push (FCM)")
    SMS = "sms", _("SMS")


class Kind(models.TextChoices):
    TASK = "task", _("Task")
    WARNING = "warning", _("Warning")
    ESCALATION = "escalation", _("Escalation")
    REPORT_UPDATE = "report_update", _("Report update")
    INFO = "info", _("Information")
    SOS = "sos", _("SOS alarm")


class Priority(models.TextChoices):
    HIGH = "high", _("High")
    NORMAL = "normal", _("Normal")


class Status(models.TextChoices):
    PENDING = "pending", pgettext_lazy("notification status", "Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    SKIPPED = "skipped", _("Skipped")


class SkipReason(models.TextChoices):
    MUTED_OFF_DUTY = "muted_off_duty", _("Muted: the recipient is off duty")
    NO_DEVICES = "no_devices", _("The recipient has no active device")
    NO_PHONE = "no_phone", _("The recipient has no phone number")


# Statuses after which a delivery attempt never happens again.
FINAL_STATUSES = (Status.SENT, Status.FAILED, Status.CANCELLED, Status.SKIPPED)


class Notification(BaseModel):
    """One message to one recipient over one channel (the outbox row).

    ``title``/``body`` are rendered in the recipient's ``language`` when the row is
    written; ``template`` keeps the source strings and their arguments, so the admin can
    see what was meant and a later channel (the SMS fallback) can render it again.
    ``data`` holds string values only (FCM data payload).
    """

    Channel = Channel
    Kind = Kind
    Priority = Priority
    Status = Status
    SkipReason = SkipReason

    dedupe_key = models.CharField(_("dedupe key"), max_length=200)
    channel = models.CharField(
        _("channel"), max_length=8, choices=Channel.choices, default=Channel.PUSH
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    priority = models.CharField(
        _("priority"), max_length=8, choices=Priority.choices, default=Priority.NORMAL
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    topic = models.CharField(_("FCM topic"), max_length=100, blank=True)
    # Topic messages: the region they were sent for (admin scoping; users scope by person).
    region = models.ForeignKey(
        "regions.Region",
        verbose_name=_("region"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    language = models.CharField(_("language"), max_length=16)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    template = models.JSONField(_("template"), default=dict, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)

    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    skip_reason = models.CharField(
        _("skip reason"), max_length=16, choices=SkipReason.choices, blank=True
    )
    # Per-device outcome of the last attempt and the provider's message ids.
    result = models.JSONField(_("result"), default=dict, blank=True)

    ack_deadline = models.DateTimeField(_("acknowledge by"), null=True, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    fallback_at = models.DateTimeField(_("SMS fallback queued at"), null=True, blank=True)
    fallback_for = models.ForeignKey(
        "self",
        verbose_name=_("fallback for"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fallbacks",
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="notifications_dedupe_uniq"),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="notifications_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=Kind.values), name="notifications_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(priority__in=Priority.values), name="notifications_priority_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=Status.values), name="notifications_status_valid"
            ),
            # Exactly one target: a user, or a topic (push only).
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(topic=""))
                | (Q(user__isnull=True) & ~Q(topic="") & Q(channel=Channel.PUSH)),
                name="notifications_one_target",
            ),
        ]
        indexes = [
            # Requeue sweep: pending rows whose next attempt is due.
            models.Index(
                fields=["next_attempt_at"],
                name="notif_pending_due_idx",
                condition=Q(status=Status.PENDING),
            ),
            # Stuck sweep: rows claimed by a worker that never reported back.
            models.Index(
                fields=["claimed_at"],
                name="notif_sending_idx",
                condition=Q(status=Status.SENDING),
            ),
            # SMS fallback sweep: receipts due and neither acknowledged nor fallen back.
            models.Index(
                fields=["ack_deadline"],
                name="notif_receipt_due_idx",
                condition=Q(
                    ack_deadline__isnull=False,
                    acknowledged_at__isnull=True,
                    fallback_at__isnull=True,
                ),
            ),
            # A recipient's messages (acknowledgement by key prefix, admin by person).
            models.Index(fields=["user", "-created_at"], name="notif_user_idx"),
            # Prefix lookups of a message's rows (receipts released when a task is
            # answered, cancellation): LIKE 'prefix%' can use only a pattern_ops index
            # unless the database collation is "C"; without it each one read the whole
            # outbox (bench/bench_tasks.py, task acceptance).
            models.Index(
                fields=["dedupe_key"],
                name="notif_dedupe_prefix_idx",
                opclasses=["varchar_pattern_ops"],
            ),
        ]

    def __str__(self) -> str:
        target = f"user {self.user_id}" if self.user_id else f"topic {self.topic}"
        return f"{self.kind} → {target} ({self.status})"


class NotificationPreference(BaseModel):
    """How a person wants to be reached. No row means the defaults (nothing muted).

    ``mute_off_duty``: no pushes while off duty, except tasks, SOS alarms and red and
    orange warnings, which always go through (whether someone is on duty is asked of
    dispatch, see ``duty.py``).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="notification_preference",
    )
    mute_off_duty = models.BooleanField(_("mute when off duty"), default=False)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        ordering = ["user_id"]

    def __str__(self) -> str:
        return str(self.user)
