"""The audit trail (等保 level 3): an append-only row per write through the API or the
admin, and per read of someone's personal data. ``apps.audit`` (package docstring of
``recorder``) says what is recorded and when; ``SECURITY.md`` says why.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEntryImmutable(Exception):
    """An audit entry was about to be changed or deleted other than by pruning."""


class Action(models.TextChoices):
    WRITE = "write", _("Write")
    PERSONAL_READ = "personal_read", _("Personal data read")


class Channel(models.TextChoices):
    API = "api", _("API")
    ADMIN = "admin", _("Admin")


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    """Rows are inserted, read and (past the retention floor) pruned: nothing else."""

    def update(self, **kwargs: object) -> int:
        raise AuditEntryImmutable("audit entries are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditEntryImmutable("audit entries are removed only by prune_audit")

    def prune(self, *, before: datetime) -> int:
        """Delete the entries recorded before ``before`` (``services.audit_prune`` checks
        the retention floor; PostgreSQL's trigger checks it again). Returns the count."""
        doomed = self.filter(at__lt=before)
        return doomed._raw_delete(doomed.db)


class AuditEntry(models.Model):
    """Who did (or read) what, when, from where, and how it ended.

    Not a ``BaseModel``: an entry is never updated, so it has no ``updated_at``; ``at``
    is when the request arrived. ``actor`` keeps the user's id even if the user row goes
    (no database constraint, nothing cascades into the trail) and ``actor_label`` the
    username as it was. The model refuses ``save()`` of an existing row and every
    ``update``/``delete``; on PostgreSQL a trigger refuses UPDATE always and DELETE of
    rows younger than the retention floor, whoever asks (migration 0002).
    """

    Action = Action
    Channel = Channel

    at = models.DateTimeField(_("at"), default=timezone.now)
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(_("actor name"), max_length=150, blank=True)
    method = models.CharField(_("method"), max_length=8)
    path = models.CharField(_("path"), max_length=300)
    view = models.CharField(_("view"), max_length=200, blank=True)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    status = models.PositiveSmallIntegerField(_("status"), null=True, blank=True)
    client_address = models.CharField(_("client address"), max_length=64, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-at", "-id"]
        # Nobody adds, changes or deletes entries, so those permissions do not exist.
        default_permissions = ("view",)
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=Action.values), name="audit_entry_action_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="audit_entry_channel_valid"
            ),
        ]
        indexes = [
            # The admin's newest-first list and pruning by age.
            models.Index(fields=["-at"], name="audit_entry_at_idx"),
            # "What did this person do / read?"
            models.Index(fields=["actor", "-at"], name="audit_entry_actor_idx"),
            # "Who touched or read this object?"
            models.Index(fields=["object_type", "object_id"], name="audit_entry_object_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_label or '-'} {self.method} {self.path}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise AuditEntryImmutable("audit entries are append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AuditEntryImmutable("audit entries are removed only by prune_audit")
